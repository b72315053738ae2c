import { ConfigError } from '../contracts/errors.js';
import type { Logger } from './logger.js';

export type Closer = () => Promise<void> | void;

/**
 * Graceful shutdown. Closers run in reverse order of registration (stop consuming before disconnecting the
 * producer it feeds). SIGTERM/SIGINT start it once; a second signal or the deadline exits at once: in-flight
 * Kafka transactions are then abandoned, which is safe because they abort and their input is re-read.
 */
export class Shutdown {
  private readonly closers: Array<{ name: string; close: Closer }> = [];
  private started: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs = 30_000,
  ) {}

  register(name: string, close: Closer): void {
    this.closers.push({ name, close });
  }

  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.started) {
        this.logger.warn({ signal }, 'second signal: exiting without waiting');
        exit(1);
        return;
      }
      this.logger.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        this.logger.error({ deadlineMs: this.deadlineMs }, 'shutdown deadline passed: exiting');
        exit(1);
      }, this.deadlineMs);
      timer.unref();
      void this.run().then(
        () => exit(0),
        () => exit(1),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  /** Runs every closer once, even if some fail; safe to call more than once. */
  run(): Promise<void> {
    this.started ??= (async () => {
      let failed = false;
      for (const { name, close } of [...this.closers].reverse()) {
        try {
          await close();
          this.logger.debug({ closer: name }, 'closed');
        } catch (error) {
          failed = true;
          this.logger.error({ err: error, closer: name }, 'close failed');
        }
      }
      if (failed) throw new Error('one or more closers failed');
    })();
    return this.started;
  }
}

/** Logs a fatal start-up error (bad configuration names its variable) and exits non-zero. */
export function exitOnStartupError(logger: Logger | undefined, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  if (logger) logger.fatal({ err: error }, message);
  else process.stderr.write(`${message}\n`);
  process.exit(1);
}

/**
 * Reads a process's configuration at start-up: a ConfigError (a variable missing or malformed) exits
 * non-zero naming it, before any logger exists; anything else is a bug and is thrown.
 */
export function loadConfigOrExit<C>(loadConfig: () => C): C {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitOnStartupError(undefined, error);
    throw error;
  }
}
