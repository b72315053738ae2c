import { backoffCeiling, RECONNECT_BACKOFF, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import { ConfigError, errorMessage, GpuMeterError, isRetriable } from '../contracts/errors.js';
import type { Logger } from './logger.js';
import type { ReadinessCheck } from './ops-server.js';

/** A start-up step failed in a way no retry can fix; the message names what it was doing. */
export class StartupError extends GpuMeterError {
  constructor(
    readonly what: string,
    cause: unknown,
  ) {
    super('STARTUP_FAILED', `${what}: ${detail(cause)}`, { cause });
    this.name = 'StartupError';
  }
}

/** The message, with each error of an aggregate ("Topic creation errors" alone says nothing). */
function detail(error: unknown): string {
  const { errors } = (error ?? {}) as { errors?: unknown };
  if (!Array.isArray(errors) || errors.length === 0) return errorMessage(error);
  return `${errorMessage(error)}: ${errors.map((each) => errorMessage(each)).join('; ')}`;
}

export interface RetryOptions {
  readonly logger: Logger;
  readonly policy?: BackoffPolicy;
  /** Stops retrying (shutdown): the last error is thrown. */
  readonly signal?: AbortSignal;
  /** Told before each wait, e.g. to show the reason on /readyz. */
  readonly onRetry?: (error: unknown, attempt: number, retryInMs: number) => void;
  /** Defaults to `isRetriable`; a caller may know more (e.g. HTTP 409 from the registry). */
  readonly retriable?: (error: unknown) => boolean;
}

/**
 * The one retry policy for I/O a service cannot run without (topics, registry, ClickHouse migrations,
 * consumer join): `work` is tried until it succeeds while its errors are retriable, waiting
 * `backoffCeiling(n, RECONNECT_BACKOFF)` between tries (250 ms doubling up to 10 s), forever: a dependency
 * that is still starting must not turn into a crash loop. A non-retriable error is thrown at once, as a
 * StartupError naming `what` (a ConfigError as it is: it already names its variable).
 */
export async function retryWhileRetriable<T>(
  what: string,
  work: () => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const policy = options.policy ?? RECONNECT_BACKOFF;
  const retriable = options.retriable ?? isRetriable;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ConfigError || error instanceof StartupError) throw error;
      if (!retriable(error) || options.signal?.aborted) throw new StartupError(what, error);
      const retryInMs = backoffCeiling(attempt, policy);
      options.logger.warn(
        { waitingFor: what, err: errorMessage(error), attempt, retryInMs },
        `waiting for ${what}; retrying`,
      );
      options.onRetry?.(error, attempt, retryInMs);
      await sleepUnlessAborted(retryInMs, options.signal);
    }
  }
}

/**
 * A service's start-up as /readyz sees it: not ready until `finish`, and meanwhile naming the step it is
 * on and, while that step is retried, the last error ("waiting for dead-letter topic x: This server does
 * not host this topic-partition (attempt 3)"), so an operator sees what it waits for without reading logs.
 */
export class StartupProgress {
  private waitingFor = 'start-up';
  private finished = false;

  constructor(
    private readonly logger: Logger,
    private readonly options: Omit<RetryOptions, 'logger' | 'onRetry'> = {},
  ) {}

  /** The `startup` readiness check: true once finished, else what it waits for. */
  readonly check: ReadinessCheck = () => (this.finished ? true : { ready: false, reason: this.waitingFor });

  get done(): boolean {
    return this.finished;
  }

  /** Runs one step through `retryWhileRetriable`, shown on /readyz while it runs. */
  step<T>(what: string, work: () => Promise<T>, retriable?: (error: unknown) => boolean): Promise<T> {
    this.waitingFor = what;
    return retryWhileRetriable(what, work, {
      ...this.options,
      logger: this.logger,
      ...(retriable ? { retriable } : {}),
      onRetry: (error, attempt) => {
        this.waitingFor = `${what}: ${errorMessage(error)} (attempt ${attempt + 1})`;
      },
    });
  }

  finish(): void {
    this.finished = true;
  }
}
