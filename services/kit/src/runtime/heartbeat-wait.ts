/**
 * kafkajs's heartbeat interval for a session timeout: a third of it (Kafka's advice), at most 3 s (its
 * default). Handlers that wait heartbeat at the same interval.
 */
export function heartbeatIntervalFor(sessionTimeoutMs: number): number {
  return Math.min(3_000, Math.floor(sessionTimeoutMs / 3));
}

/**
 * Waits for `work` while calling `heartbeat` every `intervalMs`. Inside kafkajs's eachBatch the member
 * heartbeats only when the handler does, so a handler that waits on back-pressure (a transaction commit
 * held by a slow broker, a busy worker, a sink write) must keep heartbeating, or it is evicted at the
 * session timeout and the group rebalances, again and again while the broker stays slow. kafkajs's
 * heartbeat() itself skips the request when the last one is younger than the consumer's heartbeatInterval,
 * so calling it at that interval costs nothing more.
 *
 * A heartbeat that throws (REBALANCE_IN_PROGRESS, an unknown member) ends the wait with its error, which
 * the handler lets out of eachBatch so that kafkajs rejoins; `work` goes on by itself. Answers what `work`
 * answers, or its error; a `work` already settled is answered without a heartbeat.
 */
export async function waitWhileHeartbeating<T>(
  work: Promise<T>,
  heartbeat: () => Promise<void>,
  intervalMs: number,
): Promise<T> {
  const TICK = Symbol('tick');
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const tick = new Promise<typeof TICK>((resolve) => (timer = setTimeout(resolve, intervalMs, TICK)));
      // `work` first: one that has settled wins over a tick that fired at the same time.
      const outcome = await Promise.race([work, tick]);
      if (outcome !== TICK) return outcome as T;
      await heartbeat();
    }
  } finally {
    clearTimeout(timer);
  }
}
