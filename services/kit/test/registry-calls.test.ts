import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, createSchemaRegistry, REGISTRY_TIMEOUT_MS, TopicSerde } from '@gpu-meter/kit';

type Answer = { status: number; body: unknown } | 'never';
const CONFIG_OK: Answer = {
  status: 200,
  body: { compatibilityLevel: 'BACKWARD', compatibility: 'BACKWARD' },
};

/**
 * A stand-in registry: `answer` decides the fate of each request, told its method and whether it is a
 * subject-config request (`/config/...`) or a registration; requests are recorded as "METHOD /path".
 */
async function fakeRegistry(answer: (method: string, isConfig: boolean) => Answer) {
  const seen: string[] = [];
  const server: Server = createServer((request, response) => {
    const isConfig = request.url!.startsWith('/config/');
    seen.push(`${request.method} ${isConfig ? 'config' : 'versions'}`);
    request.resume();
    const outcome = answer(request.method!, isConfig);
    if (outcome === 'never') return;
    response.writeHead(outcome.status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(outcome.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const settings = { schemaRegistryUrl: `http://127.0.0.1:${port}` };
  const serde = new TopicSerde(createSchemaRegistry(settings), settings, 't', 'usageEvent');
  return { serde, seen, close: () => (server.closeAllConnections(), server.close()) };
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

  it('a subject rule created concurrently by another service (PUT 409) is set again, not a failure', async () => {
    let puts = 0;
    const registry = await fakeRegistry((method, isConfig) =>
      isConfig && method === 'PUT' && ++puts === 1
        ? { status: 409, body: { message: "A rule named 'COMPATIBILITY' already exists.", error_code: 409 } }
        : isConfig || method !== 'POST'
          ? CONFIG_OK
          : { status: 200, body: { id: 3 } },
    );
    close = registry.close;
    await expect(registry.serde.register()).resolves.toBe(3);
    expect(registry.seen.filter((r) => r === 'PUT config')).toHaveLength(2);
  });
});
