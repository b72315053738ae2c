import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { onTestFinished } from 'vitest';
import { REPO_ROOT } from './stack-env.js';

/**
 * A service started as a real OS process (`node --import tsx <its workspace>/src/main.ts`), so tests can
 * SIGKILL it at any moment and restart it. Output is kept for assertions (e.g. no secret in any log line).
 */
export class ServiceProcess {
  readonly output: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(
    readonly service: string,
    /** Public so a trial can start another replica, or the same one again, with the same environment. */
    readonly env: Record<string, string>,
  ) {}

  /**
   * Every service logs its first line within a second or two of starting (within ~5 s on a loaded CI
   * machine); silence means the launch itself hung before any service code ran.
   */
  static readonly SILENT_LAUNCH_MS = 30_000;
  /** Output chunks the current child has printed, and when it was spawned. */
  private childChunks = 0;
  private startedAt = 0;

  start(): this {
    this.launch(2);
    return this;
  }

  /**
   * A launch that prints nothing at all is killed and replaced at once (`relaunches` times at most),
   * loudly; to callers it is the same process, still starting. Seen about once in five CI runs and never in
   * 765 looped starts: a restarted aggregator silent for 120 s, hung before its first log line (module
   * loading under Node 20's loader-hooks thread, which tsx uses).
   */
  private launch(relaunches: number): void {
    const child = this.spawnChild();
    const watchdog = setInterval(() => {
      if (this.child !== child || !this.running || this.childChunks > 0) return clearInterval(watchdog);
      if (Date.now() - this.startedAt < ServiceProcess.SILENT_LAUNCH_MS || relaunches === 0) return;
      clearInterval(watchdog);
      const note = `[harness] ${this.service} pid ${child.pid} printed nothing in ${ServiceProcess.SILENT_LAUNCH_MS} ms; killed and launched again`;
      console.warn(note);
      this.output.push(note);
      child.kill('SIGKILL');
      this.launch(relaunches - 1);
    }, 1_000);
    watchdog.unref();
  }

  private spawnChild(): ChildProcess {
    this.startedAt = Date.now();
    this.childChunks = 0;
    const child = spawn(process.execPath, ['--import', 'tsx', mainOf(this.service)], {
      cwd: REPO_ROOT,
      // SERVICE_LOG_LEVEL=debug for diagnosis; a caller's own LOG_LEVEL (the pipeline's) wins.
      env: { ...process.env, LOG_LEVEL: process.env.SERVICE_LOG_LEVEL ?? 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // SERVICE_LOG_DIR keeps every line on disk too, for diagnosing a long run (e.g. `npm run faults`).
    const logDir = process.env.SERVICE_LOG_DIR;
    const logFile = logDir ? `${logDir}/${this.service}-${child.pid}.log` : undefined;
    if (logDir) mkdirSync(logDir, { recursive: true });
    const keep = (chunk: Buffer) => {
      this.childChunks += 1;
      for (const line of String(chunk).split('\n')) if (line.trim()) this.output.push(line);
      if (logFile) appendFileSync(logFile, chunk);
      if (this.output.length > 20_000) this.output.splice(0, this.output.length - 20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.child = child;
    return child;
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

  /** Signals the running process without waiting (SIGSTOP/SIGCONT pause and resume it); no-op once exited. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
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

/**
 * Where a process's main module is: through its workspace link (node_modules/@gpu-meter/<name>), so a
 * service under services/ and the simulator under test/ are found alike (Node runs the link's real path).
 */
function mainOf(service: string): string {
  return `node_modules/@gpu-meter/${service}/src/main.ts`;
}

/** Starts a service process that is SIGKILLed when the test ends, whatever happens. */
export function startService(service: string, env: Record<string, string>): ServiceProcess {
  const process = new ServiceProcess(service, env).start();
  onTestFinished(() => process.kill());
  return process;
}
