import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PoisonRecordError } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import {
  CONTROL_LOOKUP_TTL_MS,
  createSchemaRegistry,
  REGISTRY_TIMEOUT_MS,
  TopicSerde,
  type RegistrySettings,
} from '@gpu-meter/kit/kafka';

type Answer = { status: number; body: unknown } | 'never';
const CONFIG_OK: Answer = {
  status: 200,
  body: { compatibilityLevel: 'BACKWARD', compatibility: 'BACKWARD' },
};

/**
 * A stand-in registry: `answer` decides the fate of each request, told its method, whether it is a
 * subject-config request (`/config/...`) and its path; requests are recorded in `seen` as "METHOD config"
 * or "METHOD versions", and in `paths` as "METHOD /path".
 */
async function fakeRegistry(
  answer: (method: string, isConfig: boolean, path: string) => Answer,
  settingsBeyondUrl: Omit<RegistrySettings, 'schemaRegistryUrl'> = {},
) {
  const seen: string[] = [];
  const paths: string[] = [];
  /** The bodies of config writes (PUT /config/...), parsed. */
  const configWrites: unknown[] = [];
  const server: Server = createServer((request, response) => {
    const isConfig = request.url!.startsWith('/config/');
    seen.push(`${request.method} ${isConfig ? 'config' : 'versions'}`);
    paths.push(`${request.method} ${request.url}`);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (isConfig && request.method === 'PUT')
        configWrites.push(JSON.parse(Buffer.concat(chunks).toString()));
      const outcome = answer(request.method!, isConfig, request.url!);
      if (outcome === 'never') return;
      response.writeHead(outcome.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(outcome.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const settings = { ...settingsBeyondUrl, schemaRegistryUrl: `http://127.0.0.1:${port}` };
  const serde = new TopicSerde(createSchemaRegistry(settings), settings, 't', 'usageEvent');
  return {
    serde,
    seen,
    paths,
    configWrites,
    close: () => (server.closeAllConnections(), server.close()),
  };
}

const logger = createLogger('test', 'silent');
let close: (() => void) | undefined;
afterEach(() => {
  vi.useRealTimers();
  close?.();
});

describe('schema registry calls', () => {
  it('give up on a registry that never answers, with a retriable error', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const registry = await fakeRegistry(() => 'never');
    close = registry.close;
    const registering = registry.serde.register();
    const outcome = expect(registering).rejects.toMatchObject({ retriable: true });
    await vi.advanceTimersByTimeAsync(REGISTRY_TIMEOUT_MS);
    await outcome;
    await expect(registering).rejects.toThrow(/no answer within/);
  });

  it('registerRetrying retries a 5xx and returns the id once the registry answers', async () => {
    let posts = 0;
    const registry = await fakeRegistry((method, isConfig) =>
      isConfig || method !== 'POST'
        ? CONFIG_OK
        : ++posts === 1
          ? { status: 503, body: { error_code: 50301, message: 'unavailable' } }
          : { status: 200, body: { id: 7 } },
    );
    close = registry.close;
    await expect(registry.serde.registerRetrying(logger)).resolves.toBe(7);
    expect(posts).toBe(2);
  });

  it('registerRetrying does not retry an incompatible schema (409)', async () => {
    const registry = await fakeRegistry((method, isConfig) =>
      isConfig || method !== 'POST'
        ? CONFIG_OK
        : { status: 409, body: { error_code: 409, message: 'incompatible' } },
    );
    close = registry.close;
    await expect(registry.serde.registerRetrying(logger)).rejects.toThrow();
    expect(registry.seen.filter((r) => r === 'POST versions')).toHaveLength(1);
  });
});

const SUBJECT_HAS_NO_RULE: Answer = {
  status: 404,
  body: { error_code: 40401, message: "Subject 't-value' not found." },
};

/** A registry whose GET /config/t-value answers `config`, PUT /config succeeds and registration gives id 5. */
function registryWithConfig(config: Answer) {
  return (method: string, isConfig: boolean): Answer =>
    !isConfig
      ? { status: 200, body: { id: 5 } }
      : method === 'GET'
        ? config
        : { status: 200, body: { compatibility: 'BACKWARD' } };
}

describe('compatibility rule at registration: only for a new subject, never a downgrade', () => {
  it("leaves the subject's existing rule alone (an operator's FULL_TRANSITIVE): no config write", async () => {
    const registry = await fakeRegistry(
      registryWithConfig({ status: 200, body: { compatibilityLevel: 'FULL_TRANSITIVE' } }),
    );
    close = registry.close;
    await expect(registry.serde.register()).resolves.toBe(5);
    expect(registry.seen).toEqual(['GET config', 'POST versions']);
  });

  it.each<[string, Answer]>([
    ['Apicurio: subject not found, 40401', SUBJECT_HAS_NO_RULE],
    [
      'Confluent: no subject-level config, 40408',
      { status: 404, body: { error_code: 40408, message: 'Subject does not have subject-level config' } },
    ],
  ])('gives a subject without a rule of its own (%s) the configured level', async (_label, config) => {
    const registry = await fakeRegistry(registryWithConfig(config));
    close = registry.close;
    await expect(registry.serde.register()).resolves.toBe(5);
    expect(registry.seen).toEqual(['GET config', 'PUT config', 'POST versions']);
    expect(registry.configWrites).toEqual([{ compatibility: 'BACKWARD' }]);
  });

  it('writes the level SCHEMA_COMPATIBILITY names', async () => {
    const registry = await fakeRegistry(registryWithConfig(SUBJECT_HAS_NO_RULE), {
      schemaCompatibility: 'FULL_TRANSITIVE',
    });
    close = registry.close;
    await registry.serde.register();
    expect(registry.configWrites).toEqual([{ compatibility: 'FULL_TRANSITIVE' }]);
  });

  it('with SCHEMA_COMPATIBILITY=none neither reads nor writes any rule', async () => {
    const registry = await fakeRegistry(registryWithConfig(SUBJECT_HAS_NO_RULE), {
      schemaCompatibility: 'none',
    });
    close = registry.close;
    await expect(registry.serde.register()).resolves.toBe(5);
    expect(registry.seen).toEqual(['POST versions']);
  });

  it('a rule created meanwhile by a service starting beside us (PUT 409) is kept, not a failure', async () => {
    const registry = await fakeRegistry((method, isConfig) =>
      !isConfig
        ? { status: 200, body: { id: 3 } }
        : method === 'GET'
          ? SUBJECT_HAS_NO_RULE
          : {
              status: 409,
              body: { message: "A rule named 'COMPATIBILITY' already exists.", error_code: 409 },
            },
    );
    close = registry.close;
    await expect(registry.serde.register()).resolves.toBe(3);
    // Not written a second time: the rule that exists now is never replaced.
    expect(registry.seen).toEqual(['GET config', 'PUT config', 'POST versions']);
  });

  it('a config read the service may not make (403) stops the start-up, not retried', async () => {
    const registry = await fakeRegistry(
      registryWithConfig({ status: 403, body: { error_code: 40301, message: 'forbidden' } }),
    );
    close = registry.close;
    await expect(registry.serde.registerRetrying(logger)).rejects.toThrow(/GET .*\/config\/t-value.*403/);
    expect(registry.seen).toEqual(['GET config']);
  });
});

/** A Confluent wire-format message naming writer schema `id` (the body does not matter here). */
function wireMessage(id: number): Buffer {
  const message = Buffer.from([0, 0, 0, 0, 0, 2, 2]);
  message.writeUInt32BE(id, 1);
  return message;
}

const SCHEMA_NOT_FOUND: Answer = {
  status: 404,
  body: { error_code: 40403, message: 'Schema 99 not found.' },
};
const SUBJECT_NOT_FOUND: Answer = {
  status: 404,
  body: { error_code: 40401, message: "Subject 't-value' not found." },
};
const SUBJECT_LATEST: Answer = {
  status: 200,
  body: { subject: 't-value', version: 3, id: 7, schema: '{"type":"string"}' },
};

describe('a writer schema id the registry answers "not found" for', () => {
  it('is poison when the control look-up of our own subject succeeds: the id is really unknown', async () => {
    const registry = await fakeRegistry((_method, _isConfig, path) =>
      path === '/subjects/t-value/versions/latest' ? SUBJECT_LATEST : SCHEMA_NOT_FOUND,
    );
    close = registry.close;
    const decoding = registry.serde.decode(wireMessage(99));
    await expect(decoding).rejects.toBeInstanceOf(PoisonRecordError);
    await expect(decoding).rejects.toThrow(/unknown schema id 99.*t-value/);
    expect(registry.paths).toEqual(['GET /schemas/ids/99', 'GET /subjects/t-value/versions/latest']);
  });

  it.each<[string, Answer]>([
    ['not found either (lost storage, an empty registry)', SUBJECT_NOT_FOUND],
    ['answered 503', { status: 503, body: { error_code: 50301, message: 'unavailable' } }],
    ['answered 422', { status: 422, body: { error_code: 42202, message: 'invalid' } }],
  ])('is a retriable outage, not poison, when the control look-up is %s', async (_label, control) => {
    const registry = await fakeRegistry((_method, _isConfig, path) =>
      path === '/subjects/t-value/versions/latest' ? control : SCHEMA_NOT_FOUND,
    );
    close = registry.close;
    const decoding = registry.serde.decode(wireMessage(99));
    await expect(decoding).rejects.toMatchObject({ code: 'GPUM_SCHEMA_REGISTRY', retriable: true });
    await expect(decoding).rejects.not.toBeInstanceOf(PoisonRecordError);
    await expect(decoding).rejects.toThrow(/schema id 99.*control look-up/);
  });

  it('is a retriable outage when the control look-up gets no answer in time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const registry = await fakeRegistry((_method, _isConfig, path) =>
      path === '/subjects/t-value/versions/latest' ? 'never' : SCHEMA_NOT_FOUND,
    );
    close = registry.close;
    const decoding = registry.serde.decode(wireMessage(99));
    const outcome = expect(decoding).rejects.toMatchObject({ retriable: true });
    // The writer look-up is answered (404) at once; only then is the clock moved past the timeout, which
    // the control look-up, never answered, runs into.
    await vi.waitUntil(() => registry.paths.includes('GET /subjects/t-value/versions/latest'));
    await vi.advanceTimersByTimeAsync(REGISTRY_TIMEOUT_MS);
    await outcome;
    await expect(decoding).rejects.toThrow(/control look-up/);
  });

  it('asks the registry once per id and control period, not once per record, during a flood', async () => {
    const registry = await fakeRegistry((_method, _isConfig, path) =>
      path === '/subjects/t-value/versions/latest' ? SUBJECT_LATEST : SCHEMA_NOT_FOUND,
    );
    close = registry.close;
    for (let i = 0; i < 20; i++) {
      await expect(registry.serde.decode(wireMessage(99))).rejects.toBeInstanceOf(PoisonRecordError);
      await expect(registry.serde.decode(wireMessage(100 + (i % 2)))).rejects.toBeInstanceOf(
        PoisonRecordError,
      );
    }
    expect(registry.paths.filter((p) => p.startsWith('GET /schemas/ids/')).sort()).toEqual([
      'GET /schemas/ids/100',
      'GET /schemas/ids/101',
      'GET /schemas/ids/99',
    ]);
    expect(registry.paths.filter((p) => p === 'GET /subjects/t-value/versions/latest')).toHaveLength(1);
  });

  it('is looked up again once the cached verdict is older than the control period', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let controlAnswer: Answer = SUBJECT_NOT_FOUND;
    const registry = await fakeRegistry((_method, _isConfig, path) =>
      path === '/subjects/t-value/versions/latest' ? controlAnswer : SCHEMA_NOT_FOUND,
    );
    close = registry.close;
    await expect(registry.serde.decode(wireMessage(99))).rejects.toMatchObject({ retriable: true });
    controlAnswer = SUBJECT_LATEST; // the registry has its data back
    await expect(registry.serde.decode(wireMessage(99))).rejects.toMatchObject({ retriable: true });
    vi.setSystemTime(Date.now() + CONTROL_LOOKUP_TTL_MS + 1);
    await expect(registry.serde.decode(wireMessage(99))).rejects.toBeInstanceOf(PoisonRecordError);
  });
});
