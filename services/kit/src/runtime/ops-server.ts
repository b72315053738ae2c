import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { errorMessage } from '../contracts/errors.js';
import type { Logger } from './logger.js';

/** A check's answer: a boolean, or not ready with what it waits for (shown by /readyz). */
export type Readiness = boolean | { readonly ready: boolean; readonly reason?: string };

/** A dependency the service needs; /readyz is 200 only while every check passes. */
export type ReadinessCheck = () => Readiness | Promise<Readiness>;

/**
 * The ops HTTP surface: /healthz (the process is alive), /readyz (its dependencies are connected) and
 * /metrics (Prometheus text). An app factory with no I/O, so tests use `inject` without a port.
 */
export function buildOpsServer(options: {
  logger: Logger;
  metrics: Registry;
  readiness: Record<string, ReadinessCheck>;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'ops' }) as FastifyBaseLogger,
    disableRequestLogging: true,
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const results: Record<string, boolean> = {};
    // Why each failing check fails, where it says (or throws): the body then tells what the service waits for.
    const waitingFor: Record<string, string> = {};
    for (const [name, check] of Object.entries(options.readiness)) {
      try {
        const answer = await check();
        results[name] = typeof answer === 'boolean' ? answer : answer.ready;
        if (typeof answer !== 'boolean' && !answer.ready && answer.reason) waitingFor[name] = answer.reason;
      } catch (error) {
        results[name] = false;
        waitingFor[name] = errorMessage(error);
      }
    }
    const ready = Object.values(results).every(Boolean);
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      checks: results,
      ...(Object.keys(waitingFor).length > 0 ? { waitingFor } : {}),
    });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await options.metrics.metrics();
    return reply.header('content-type', options.metrics.contentType).send(body);
  });

  return app;
}

export async function startOpsServer(app: FastifyInstance, port: number, host: string): Promise<string> {
  return app.listen({ port, host });
}
