import { createServer, connect, type Server, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FakeOpenMeter } from '../../../test/support/fake-openmeter.js';
import { createTopics, stackEnv, testAdmin, uniqueName, waitFor } from '../../../test/support/kafka.js';
import { freePort, readyz } from '../../../test/support/ops.js';
import { startService } from '../../../test/support/processes.js';
import { aggregatorEnv, uniqueTopics } from '../../usage-aggregator/test/int-support.js';

/**
 * A TCP forwarder to `target` opened on `port` only when told: until then the service sees its dependency
 * down (connection refused), as when it starts before Kafka or ClickHouse does.
 */
function lateProxy(port: number, target: string) {
  const [host, targetPort] = [new URL(`tcp://${target}`).hostname, Number(new URL(`tcp://${target}`).port)];
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise((resolve) => server!.close(resolve));
  });
  return {
    open: () =>
      new Promise<void>((resolve) => {
        server = createServer((client) => {
          const upstream = connect(targetPort, host);
          for (const socket of [client, upstream]) {
            sockets.add(socket);
            socket.on('error', () => undefined);
            socket.on('close', () => sockets.delete(socket));
          }
          client.pipe(upstream).pipe(client);
        });
        server.listen(port, '127.0.0.1', resolve);
      }),
  };
}

describe('service start-up with a dependency not up yet', () => {
  it('a usage-events sink started before Kafka and its topic exist waits, not ready and saying why, then runs', async () => {
    const stack = stackEnv();
    const kafkaPort = await freePort();
    const opsPort = await freePort();
    const kafka = lateProxy(kafkaPort, stack.KAFKA_BROKERS!.split(',')[0]!);
    const fake = new FakeOpenMeter({ token: 'startup-token' });
    const url = await fake.start();
    onTestFinished(() => fake.stop());
    const deadLetters = uniqueName('om-dlq');
    const usageTopic = uniqueName('usage');
    const forwarder = startService('openmeter-forwarder', {
      KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      USAGE_EVENTS_TOPIC: usageTopic,
      DEAD_LETTER_TOPIC: deadLetters,
      CONSUMER_GROUP_ID: uniqueName('forwarder'),
      OPENMETER_URL: url,
      OPENMETER_TOKEN: 'startup-token',
      OPS_PORT: String(opsPort),
      SESSION_TIMEOUT_MS: '6000',
    });

    const waiting = await waitFor(
      '/readyz answering 503',
      () => readyz(opsPort).catch(() => undefined),
      60_000,
    );
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ status: 'not ready', checks: { startup: false } });
    expect(String((waiting.body.waitingFor as Record<string, string>).startup)).toContain(deadLetters);
    // Longer than kafkajs's own connection retries (8, up to 10 s apart) take to give up.
    await forwarder.waitForLog(
      new RegExp(`"msg":"waiting for dead-letter topic ${deadLetters}; retrying"`),
      90_000,
    );
    expect(forwarder.running).toBe(true);

    // Kafka up, but the topic to read (the aggregator's to create) is not there yet.
    await kafka.open();
    const noTopic = await waitFor(
      '/readyz naming the missing topic',
      async () => {
        const { status, body } = await readyz(opsPort);
        const reason = (body.waitingFor as Record<string, string> | undefined)?.startup ?? '';
        return status === 503 &&
          reason.includes(`consumer of ${usageTopic}`) &&
          reason.includes('topic-partition')
          ? reason
          : undefined;
      },
      90_000,
    );
    expect(noTopic).toMatch(/This server does not host this topic-partition \(attempt \d+\)$/);

    await createTopics(await testAdmin(), [usageTopic], 2);
    await forwarder.waitForLog(/openmeter-forwarder started/, 60_000);
    await waitFor('/readyz answering 200', async () => (await readyz(opsPort)).status === 200, 60_000);
    expect(forwarder.output.filter((line) => /"level":60/.test(line))).toEqual([]);
  });

  it('a non-retriable error at start-up exits non-zero, naming the variable', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('startup-tasks');
    await createTopics(admin, [topics.pods, topics.bandwidth], 2);
    await createTopics(admin, [topics.events, topics.late, topics.dead], 1);
    // Three tasks cannot share two partitions: a configuration no retry can fix.
    const aggregator = startService('usage-aggregator', aggregatorEnv(topics, { TASKS: '3' }));
    expect(await aggregator.waitForExit(90_000)).toBe(1);
    const fatal = aggregator.output.filter((line) => line.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    // Which rule it breaks is the aggregator's business; that the fatal line names the variable is ours.
    const { msg, err } = JSON.parse(fatal[0]!) as { msg: string; err: { code: string; variable: string } };
    expect(err.code).toBe('GPUM_CONFIG_INVALID');
    expect(msg).toContain(`Invalid configuration: ${err.variable}:`);
  });

  it('a sink whose dead-letter topic the broker refuses exits non-zero, naming the topic', async () => {
    const stack = stackEnv();
    const forwarder = startService('openmeter-forwarder', {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      USAGE_EVENTS_TOPIC: uniqueName('usage'),
      DEAD_LETTER_TOPIC: 'not a topic name!',
      CONSUMER_GROUP_ID: uniqueName('forwarder'),
      OPENMETER_URL: 'http://127.0.0.1:9',
      OPENMETER_TOKEN: 'startup-token',
      OPS_PORT: '0',
    });
    expect(await forwarder.waitForExit(90_000)).toBe(1);
    const fatal = forwarder.output.filter((line) => line.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    const { msg, err } = JSON.parse(fatal[0]!) as { msg: string; err: { code: string } };
    expect(err.code).toBe('GPUM_STARTUP_FAILED');
    expect(msg).toMatch(/^dead-letter topic not a topic name!: Topic creation errors: .*invalid topic/i);
  });
});
