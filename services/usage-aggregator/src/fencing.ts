/**
 * Whether a transactional producer error means another producer with the same transactional id took over
 * (or the coordinator aborted our transaction): INVALID_PRODUCER_EPOCH (47), PRODUCER_FENCED (90, which
 * kafkajs does not name) or TRANSACTION_COORDINATOR_FENCED (52), on the error or along its causes.
 */
export function isFencedError(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { type, code, cause, originalError } = e as {
      type?: unknown;
      code?: unknown;
      cause?: unknown;
      originalError?: unknown;
    };
    if (type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED') return true;
    if (type === 'TRANSACTION_COORDINATOR_FENCED') return true;
    if (code === 47 || code === 52 || code === 90) return true;
    e = cause === e ? undefined : (cause ?? originalError);
  }
  return false;
}
