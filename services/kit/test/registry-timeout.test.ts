import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, createSchemaRegistry, REGISTRY_TIMEOUT_MS, TopicSerde } from '@gpu-meter/kit';

type Answer = { status: number; body: unknown } | 'never';
const config: Answer = { status: 200, body: { compatibilityLevel: 'BACKWARD', compatibility: 'BACKWARD' } };

/**
 * A stand-in registry: subject config reads and writes succeed (unless `answer` says otherwise for every
 * request), `answer` decides each registration (POST); requests are recorded by method.
 */
async function fakeRegistry(answer: (method: string) => Answer) {
  const seen: string[] = [];
  const server: Server = createServer((request, response) => {
    seen.push(request.method!);
    request.resume();
    const outcome =
      request.url!.startsWith('/config/') && answer('CONFIG') !== 'never' ? config : answer(request.method!);
    if (outcome === 'never') return;
    response.writeHead(outcome.status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(outcome.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const settings = { schemaRegistryUrl: `http://127.0.0.1:${port}` };
  const serde = new TopicSerde(createSchemaRegistry(settings), settings, 't', 'usageEvent');
  return { serde, seen, close: () => server.closeAllConnections() ?? server.close() };
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
    const registry = await fakeRegistry((method) =>
      method !== 'POST'
        ? config
        : ++posts === 1
          ? { status: 503, body: { error_code: 50301, message: 'unavailable' } }
          : { status: 200, body: { id: 7 } },
    );
    close = registry.close;
    await expect(registry.serde.registerRetrying(logger)).resolves.toBe(7);
    expect(posts).toBe(2);
  });

  it('registerRetrying does not retry an incompatible schema (409)', async () => {
    const registry = await fakeRegistry((method) =>
      method !== 'POST' ? config : { status: 409, body: { error_code: 409, message: 'incompatible' } },
    );
    close = registry.close;
    await expect(registry.serde.registerRetrying(logger)).rejects.toThrow();
    expect(registry.seen.filter((m) => m === 'POST')).toHaveLength(1);
  });
});
