import type { Logger } from './logger.js';

/**
 * Calls `onTick(t)` for each epoch-aligned grid point t, `delayMs` after t (so that what happened up to t
 * has arrived: watch events, status updates, exporter refreshes). Ticks never overlap and run in order.
 * After a stall of more than one interval it jumps to the latest due point and passes how many it skipped;
 * the callback decides whether it can fill them in.
 */
export class GridTicker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private current: Promise<void> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly delayMs: number,
    private readonly onTick: (t: number, skipped: number) => Promise<void>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(intervalMs) || intervalMs <= 0) throw new RangeError(`bad interval ${intervalMs}`);
    if (delayMs < 0 || delayMs >= intervalMs)
      throw new RangeError(`delay must be in [0, interval), got ${delayMs}`);
  }

  /** Starts with the grid point after `lastDoneT` (default: the latest point already due). */
  start(lastDoneT?: number): void {
    this.running = true;
    const latestDue = Math.floor((this.now() - this.delayMs) / this.intervalMs) * this.intervalMs;
    this.schedule(lastDoneT ?? latestDue);
  }

  private schedule(lastT: number): void {
    if (!this.running) return;
    let next = lastT + this.intervalMs;
    const latestDue = Math.floor((this.now() - this.delayMs) / this.intervalMs) * this.intervalMs;
    let skipped = 0;
    if (latestDue > next) {
      skipped = (latestDue - next) / this.intervalMs;
      next = latestDue;
    }
    const wait = Math.max(0, next + this.delayMs - this.now());
    this.timer = setTimeout(() => {
      this.current = this.onTick(next, skipped)
        .catch((error: unknown) => this.logger.error({ err: error, t: next }, 'grid tick failed'))
        .finally(() => {
          this.current = undefined;
          this.schedule(next);
        });
    }, wait);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.current;
  }
}
