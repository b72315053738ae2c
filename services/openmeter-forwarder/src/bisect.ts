import { DeliveryRetryError, type PostOutcome } from './outcome.js';

export interface Rejection<T> {
  item: T;
  status: number;
  body: string;
}

/** Splits a rejected range in two halves (the left one the larger); a single item is not split. */
export function splitRange(start: number, end: number): Array<[number, number]> {
  if (end - start <= 1) return [];
  const middle = start + Math.ceil((end - start) / 2);
  return [
    [start, middle],
    [middle, end],
  ];
}

export interface BisectOptions<T> {
  /** Told of every part the endpoint accepted, so a retry of the batch can leave them out. */
  onDelivered?(part: readonly T[]): void;
  /** Told of each single item rejected, when it is (before what the bisection sends next). */
  onRejected?(item: T): void;
  /** Stops bisecting once this many single items were rejected is enough to judge (an outage). */
  stopWhen?(rejected: number): boolean;
}

/**
 * Sends `items`; when a request is rejected for its content, splits it in halves and sends each, down to
 * single items, so the bad events are found in O(bad · log n) requests while every good one is delivered.
 * Returns the single items the endpoint rejected, with its answer (only those found so far when `stopWhen`
 * stopped it). Throws DeliveryRetryError as soon as a request must be retried: the caller resends the
 * batch later, without the parts `onDelivered` named (the endpoint may not dedupe).
 */
export async function deliverBisecting<T>(
  items: readonly T[],
  send: (items: readonly T[]) => Promise<PostOutcome>,
  options: BisectOptions<T> = {},
): Promise<Array<Rejection<T>>> {
  const rejected: Array<Rejection<T>> = [];
  const stack: Array<[number, number]> = items.length > 0 ? [[0, items.length]] : [];
  while (stack.length > 0) {
    const [start, end] = stack.pop()!;
    const part = items.slice(start, end);
    const outcome = await send(part);
    if (outcome.kind === 'retry') throw new DeliveryRetryError(outcome);
    if (outcome.kind === 'delivered') {
      options.onDelivered?.(part);
      continue;
    }
    if (end - start === 1) {
      rejected.push({ item: items[start]!, status: outcome.status, body: outcome.body });
      options.onRejected?.(items[start]!);
      if (options.stopWhen?.(rejected.length)) return rejected;
      continue;
    }
    // Right half pushed first so the left is sent first: requests follow the batch order.
    const [left, right] = splitRange(start, end);
    stack.push(right!, left!);
  }
  return rejected;
}
