import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PoisonRecordError, type UsageEvent } from '@gpu-meter/kit/contracts';
import { createSchemaRegistry, TopicSerde, type RegistrySettings } from '@gpu-meter/kit/kafka';
import { stackEnv, uniqueName } from '../../../../test/support/kafka.js';

const registryUrl = () => stackEnv().SCHEMA_REGISTRY_URL!;

/** An id far above any the test registry hands out (ids count up from 1). */
const UNKNOWN_ID = 2_000_000_000;

function wireMessage(id: number): Buffer {
  const message = Buffer.from([0, 0, 0, 0, 0, 2, 2]);
  message.writeUInt32BE(id, 1);
  return message;
}

function serdeFor(settings: RegistrySettings, topic = uniqueName('kit-registry')): TopicSerde<UsageEvent> {
  return new TopicSerde<UsageEvent>(createSchemaRegistry(settings), settings, topic, 'usageEvent');
}

/** A port nothing listens on: bound once by us, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('writer schema ids the real registry (Apicurio) does not know', () => {
  it('are poison, with a reason saying so, when the registry still knows our subject', async () => {
    const serde = serdeFor({ schemaRegistryUrl: registryUrl() });
    await serde.register();
    const decoding = serde.decode(wireMessage(UNKNOWN_ID));
    await expect(decoding).rejects.toBeInstanceOf(PoisonRecordError);
    await expect(decoding).rejects.toThrow(
      new RegExp(`unknown schema id ${UNKNOWN_ID}.*${serde.subject.replace(/\./g, '\\.')}`),
    );
  });

  it('are a retriable outage when the registry does not know our subject either (it lost our data)', async () => {
    // Never registered: to this serde the registry looks like one whose storage was lost or swapped.
    const serde = serdeFor({ schemaRegistryUrl: registryUrl() });
    const decoding = serde.decode(wireMessage(UNKNOWN_ID));
    await expect(decoding).rejects.toMatchObject({ code: 'GPUM_SCHEMA_REGISTRY', retriable: true });
    await expect(decoding).rejects.not.toBeInstanceOf(PoisonRecordError);
  });

  it('are a retriable outage when the registry is unreachable', async () => {
    const serde = serdeFor({ schemaRegistryUrl: `http://127.0.0.1:${await deadPort()}/apis/ccompat/v7` });
    await expect(serde.decode(wireMessage(UNKNOWN_ID))).rejects.toMatchObject({ retriable: true });
  });
});

/** The subject's compatibility as the ccompat API answers it (Apicurio: the global default when it has none). */
async function compatibilityOf(subject: string): Promise<string> {
  const response = await fetch(`${registryUrl()}/config/${encodeURIComponent(subject)}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { compatibilityLevel: string }).compatibilityLevel;
}

/**
 * The rules the subject has of its own, from Apicurio's native API (ccompat cannot tell a subject's own
 * rule from the global default: both answer 200, see test/stack/apicurio.sh). ccompat subjects live in
 * the group `default`.
 */
async function ownRulesOf(subject: string): Promise<string[]> {
  const native = registryUrl().replace(/\/apis\/ccompat\/v7\/?$/, '/apis/registry/v3');
  const response = await fetch(`${native}/groups/default/artifacts/${encodeURIComponent(subject)}/rules`);
  expect(response.status).toBe(200);
  return (await response.json()) as string[];
}

describe('compatibility rule against the real registry (Apicurio)', () => {
  it("keeps an operator's FULL_TRANSITIVE rule on the subject", async () => {
    const serde = serdeFor({ schemaRegistryUrl: registryUrl() });
    const put = await fetch(`${registryUrl()}/config/${encodeURIComponent(serde.subject)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'FULL_TRANSITIVE' }),
    });
    expect(put.status).toBe(200);
    await serde.register();
    expect(await compatibilityOf(serde.subject)).toBe('FULL_TRANSITIVE');
    // A second start (the subject exists now) leaves it too.
    await serdeFor({ schemaRegistryUrl: registryUrl() }, serde.topic).register();
    expect(await compatibilityOf(serde.subject)).toBe('FULL_TRANSITIVE');
  });

  it('gives a new subject the configured level as its own rule (BACKWARD by default, or as set)', async () => {
    const byDefault = serdeFor({ schemaRegistryUrl: registryUrl() });
    await byDefault.register();
    expect(await ownRulesOf(byDefault.subject)).toEqual(['COMPATIBILITY']);
    expect(await compatibilityOf(byDefault.subject)).toBe('BACKWARD');

    const forward = serdeFor({ schemaRegistryUrl: registryUrl(), schemaCompatibility: 'FORWARD' });
    await forward.register();
    expect(await compatibilityOf(forward.subject)).toBe('FORWARD');
  });

  it('with SCHEMA_COMPATIBILITY=none writes no rule', async () => {
    const serde = serdeFor({ schemaRegistryUrl: registryUrl(), schemaCompatibility: 'none' });
    await serde.register();
    expect(await ownRulesOf(serde.subject)).toEqual([]);
  });
});
