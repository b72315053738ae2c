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
 * broken deployment, a proxy answering 400 to everything): nothing is dead-lettered, the batch is kept and
 * retried with backoff. An event is taken for bad only when it was rejected again after OpenMeter accepted
 * something since its first rejection (the proof OpenMeter takes events): a storm that starts or ends in
 * the middle of a bisection, or that hits a trickle of small batches, dead-letters nothing. Pure: the
 * caller says what happened, the breaker says what it means.
 */
export class RejectionBreaker<T extends object> {
  private run = 0;
  private why: string | undefined;
  /** Requests OpenMeter accepted so far (a clock of proofs that it takes events). */
  private acceptedRequests = 0;
  /** Per rejected event, `acceptedRequests` at its first rejection. */
  private readonly suspects = new WeakMap<T, number>();

  constructor(readonly options: BreakerOptions) {}

  /** Open: not ready, alerting (a large batch mostly rejected, or `consecutiveBatches` held in a row). */
  get open(): boolean {
    return this.why !== undefined;
  }

  /** Why the breaker is open (for /readyz and logs); undefined when closed. */
  get reason(): string | undefined {
    return this.why;
  }

  /** OpenMeter accepted a request. */
  accepted(): void {
    this.acceptedRequests += 1;
  }

  /**
   * A single event was rejected just now: true when that is confirmed (it was rejected before, and OpenMeter
   * accepted a request since); the first rejection only marks it.
   */
  confirmRejection(item: T): boolean {
    const at = this.suspects.get(item);
    if (at !== undefined && this.acceptedRequests > at) return true;
    if (at === undefined) this.suspects.set(item, this.acceptedRequests);
    return false;
  }

  /** Whether `rejected` events of a batch of `total` already make it an outage (bisection may stop). */
  exceeded(rejected: number, total: number): boolean {
    return total >= this.options.minEvents && rejected * 100 > this.options.rejectPercent * total;
  }

  /**
   * Judges a batch once sent: `rejected` of the `total` events sent were refused, `unconfirmed` of them not
   * yet proven bad. `hold`: keep the batch and retry, dead-letter nothing; otherwise the rejected events
   * are bad events. `changed`: `open` flipped.
   */
  judge(
    rejected: number,
    total: number,
    unconfirmed: number,
    status: number | undefined,
  ): { hold: boolean; changed: boolean } {
    const wasOpen = this.open;
    const exceeded = this.exceeded(rejected, total);
    const hold = exceeded || unconfirmed > 0;
    this.run = hold ? this.run + 1 : 0;
    const open = exceeded || this.run >= this.options.consecutiveBatches;
    this.why = open
      ? `OpenMeter rejected ${rejected} of ${total} events of a batch${status ? ` (HTTP ${status})` : ''}` +
        (this.run > 1 ? `, ${this.run} attempts in a row` : '') +
        ': treated as an outage, nothing dead-lettered, retrying'
      : undefined;
    return { hold, changed: wasOpen !== this.open };
  }
}
