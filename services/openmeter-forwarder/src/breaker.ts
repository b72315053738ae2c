/** When a batch counts as mostly rejected, and when that is an outage rather than bad events. */
export interface BreakerOptions {
  /** More than this percentage of a batch's events rejected (400/413) = mostly rejected. */
  readonly rejectPercent: number;
  /** A batch of at least this many events mostly rejected is an outage at once. */
  readonly minEvents: number;
  /** This many consecutive mostly-rejected batches (of any size) are an outage. */
  readonly consecutiveBatches: number;
}

/**
 * The forwarder's circuit breaker on rejections. OpenMeter refusing one event for its content is that
 * event's fault (dead-letter it); OpenMeter or a proxy refusing most of what it is sent is an outage (a
 * broken deployment, a schema change, a proxy answering 400 to everything): nothing is dead-lettered, the
 * batch is kept and retried with backoff. Rejections are dead-lettered only from a batch in which OpenMeter
 * took other events (the proof it is taking events at all), so an outage on a trickle of small batches is
 * held too. Pure: the caller says what happened, the breaker says what it means.
 */
export class RejectionBreaker {
  private run = 0;
  private why: string | undefined;

  constructor(readonly options: BreakerOptions) {}

  /** Open: not ready, alerting (a large batch mostly rejected, or `consecutiveBatches` held in a row). */
  get open(): boolean {
    return this.why !== undefined;
  }

  /** Why the breaker is open (for /readyz and logs); undefined when closed. */
  get reason(): string | undefined {
    return this.why;
  }

  /** Whether `rejected` events of a batch of `total` already make it an outage (bisection may stop). */
  exceeded(rejected: number, total: number): boolean {
    return total >= this.options.minEvents && this.mostly(rejected, total);
  }

  /**
   * Judges a batch once sent: `rejected` of the `total` events sent were refused, and OpenMeter took
   * `accepted` events of the batch (this attempt or an earlier one). `hold`: keep the batch and retry,
   * dead-letter nothing; otherwise the rejected events are bad events. `changed`: `open` flipped.
   */
  judge(
    rejected: number,
    total: number,
    accepted: number,
    status: number | undefined,
  ): { hold: boolean; changed: boolean } {
    const wasOpen = this.open;
    const mostly = rejected > 0 && this.mostly(rejected, total);
    const unproven = rejected > 0 && accepted === 0;
    this.run = mostly || unproven ? this.run + 1 : 0;
    const open = this.exceeded(rejected, total) || this.run >= this.options.consecutiveBatches;
    this.why = open
      ? `OpenMeter rejected ${rejected} of ${total} events of a batch${status ? ` (HTTP ${status})` : ''}` +
        (this.run > 1 ? `, ${this.run} batches in a row` : '') +
        ': treated as an outage, nothing dead-lettered, retrying'
      : undefined;
    return { hold: open || unproven, changed: wasOpen !== this.open };
  }

  private mostly(rejected: number, total: number): boolean {
    return total > 0 && rejected * 100 > this.options.rejectPercent * total;
  }
}
