import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { onTestFinished } from 'vitest';
import { REPO_ROOT } from './stack-env.js';

/**
 * A service started as a real OS process (`node --import tsx services/<name>/src/main.ts`), so tests can
 * SIGKILL it at any moment and restart it. Output is kept for assertions (e.g. no secret in any log line).
 */
export class ServiceProcess {
  readonly output: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(
    readonly service: string,
    private readonly env: Record<string, string>,
  ) {}

  start(): this {
    const child = spawn(process.execPath, ['--import', 'tsx', `services/${this.service}/src/main.ts`], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // SERVICE_LOG_DIR keeps every line on disk too, for diagnosing a long run (e.g. `npm run faults`).
    const logDir = process.env.SERVICE_LOG_DIR;
    const logFile = logDir ? `${logDir}/${this.service}-${child.pid}.log` : undefined;
    if (logDir) mkdirSync(logDir, { recursive: true });
    const keep = (chunk: Buffer) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) this.output.push(line);
      if (logFile) appendFileSync(logFile, chunk);
      if (this.output.length > 20_000) this.output.splice(0, this.output.length - 20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.child = child;
    return this;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the process exits; rejects after timeoutMs. */
  async waitForExit(timeoutMs = 30_000): Promise<number | null> {
    if (!this.exited) throw new Error(`${this.service} was never started`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.service} did not exit in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    await this.waitForExit();
  }

  /** Waits until a log line matches, failing fast (with the tail of the log) if the process dies. */
  async waitForLog(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output.find((candidate) => pattern.test(candidate));
      if (line) return line;
      if (!this.running) throw new Error(`${this.service} exited before logging ${pattern}:\n${this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`${this.service} did not log ${pattern} in ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  tail(lines = 40): string {
    return this.output.slice(-lines).join('\n');
  }
}

/** Starts a service process that is SIGKILLed when the test ends, whatever happens. */
export function startService(service: string, env: Record<string, string>): ServiceProcess {
  const process = new ServiceProcess(service, env).start();
  onTestFinished(() => process.kill());
  return process;
}
