import { createHash } from 'node:crypto';

/**
 * Deterministic ids: hex SHA-256 over the parts joined by a separator no part contains. Two replicas, a
 * restart or a replay that see the same facts produce the same id, which is what lets every stage dedupe.
 */
export function deterministicId(...parts: ReadonlyArray<string | number>): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(part));
    hash.update('\u001f');
  }
  return hash.digest('hex');
}
