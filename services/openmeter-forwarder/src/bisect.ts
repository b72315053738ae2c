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

/**
 * Sends `items`; when a request is rejected for its content, splits it in halves and sends each, down to
 * single items, so the bad events are found in O(bad · log n) requests while every good one is delivered.
 * Returns the single items the endpoint rejected, with its answer. Throws DeliveryRetryError as soon as a
 * request must be retried: the caller resends the whole batch later, which is safe because the endpoint
 * dedupes on event id.
 */
export async function deliverBisecting<T>(
  items: readonly T[],
  send: (items: readonly T[]) => Promise<PostOutcome>,
): Promise<Array<Rejection<T>>> {
  const rejected: Array<Rejection<T>> = [];
  const stack: Array<[number, number]> = items.length > 0 ? [[0, items.length]] : [];
  while (stack.length > 0) {
    const [start, end] = stack.pop()!;
    const outcome = await send(items.slice(start, end));
    if (outcome.kind === 'retry') throw new DeliveryRetryError(outcome);
    if (outcome.kind === 'delivered') continue;
    if (end - start === 1) {
      rejected.push({ item: items[start]!, status: outcome.status, body: outcome.body });
      continue;
    }
    // Right half pushed first so the left is sent first: requests follow the batch order.
    const [left, right] = splitRange(start, end);
    stack.push(right!, left!);
  }
  return rejected;
}
