import { Writable } from 'node:stream';
import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildOpsServer, createLogger, createMetricsRegistry, Shutdown } from '@gpu-meter/kit/runtime';

function capturedLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger('test', 'debug', sink), lines };
}

describe('ops server', () => {
  it('answers /healthz, and /readyz only while every dependency is connected', async () => {
    let kafkaConnected = false;
    const app = buildOpsServer({
      logger: createLogger('test', 'silent'),
      metrics: createMetricsRegistry('test'),
      readiness: { kafka: () => kafkaConnected, registry: async () => true },
    });
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    const notReady = await app.inject('/readyz');
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: 'not ready', checks: { kafka: false, registry: true } });
    kafkaConnected = true;
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    await app.close();
  });

  it('treats a throwing readiness check as not ready', async () => {
    const app = buildOpsServer({
      logger: createLogger('test', 'silent'),
      metrics: createMetricsRegistry('test'),
      readiness: {
        clickhouse: () => {
          throw new Error('down');
        },
      },
    });
    expect((await app.inject('/readyz')).statusCode).toBe(503);
  });

  it('serves service metrics in Prometheus text format', async () => {
    const metrics = createMetricsRegistry('kit-test');
    const published = new Counter({
      name: 'gpumeter_samples_published_total',
      help: 'samples',
      registers: [metrics],
    });
    published.inc(3);
    const app = buildOpsServer({ logger: createLogger('test', 'silent'), metrics, readiness: {} });
    const response = await app.inject('/metrics');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toContain('gpumeter_samples_published_total{service="kit-test"} 3');
    expect(response.body).toContain('process_resident_memory_bytes');
  });
});

describe('logger', () => {
  it('redacts secrets wherever a config or client options object is logged', () => {
    const { logger, lines } = capturedLogger();
    logger.info(
      {
        config: {
          kafkaSaslPassword: 'p@ss-1',
          clickhousePassword: 'p@ss-2',
          openmeterToken: 'tok-3',
          kafkaBrokers: ['b:1'],
        },
        sasl: { mechanism: 'plain', username: 'u', password: 'p@ss-4' },
        request: { headers: { authorization: 'Bearer tok-5' } },
      },
      'starting',
    );
    const output = lines.join('');
    for (const secret of ['p@ss-1', 'p@ss-2', 'tok-3', 'p@ss-4', 'tok-5'])
      expect(output).not.toContain(secret);
    expect(output).toContain('b:1');
    expect(output).toContain('[redacted]');
  });
});

describe('Shutdown', () => {
  it('closes in reverse order of registration, once, even when a closer fails', async () => {
    const { logger } = capturedLogger();
    const order: string[] = [];
    const shutdown = new Shutdown(logger);
    shutdown.register('producer', () => {
      order.push('producer');
    });
    shutdown.register('consumer', () => {
      order.push('consumer');
      throw new Error('boom');
    });
    shutdown.register('ops', async () => {
      order.push('ops');
    });
    await expect(shutdown.run()).rejects.toThrow(/closers failed/);
    await expect(shutdown.run()).rejects.toThrow(/closers failed/);
    expect(order).toEqual(['ops', 'consumer', 'producer']);
  });
});
