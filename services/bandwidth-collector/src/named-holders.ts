import { trackedSpan } from '@gpu-meter/kit/runai';
import type { PodIndex } from './attribution.js';
import type { PodRef } from './dcgm.js';

/**
 * The pods the exporter named for each device, remembered across scrapes. A scrape names only the holder at
 * its own instant, SAMPLE_DELAY_MS after the grid point: a pod that ended in the first moments of an interval
 * (before that scrape) is named neither by the scrape opening the interval nor by the one closing it, only
 * by an earlier one. So a name is kept until its pod's span can no longer reach into an interval.
 */
export class NamedHolders {
  private readonly byDevice = new Map<string, PodRef[]>();

  /**
   * The pods that may have held device `key` during [intervalStartMs, t): named at this scrape or at an
   * earlier one, and not known to have ended by intervalStartMs. Records `current`.
   */
  at(key: string, current: PodRef | undefined, index: PodIndex, intervalStartMs: number): PodRef[] {
    const named = (this.byDevice.get(key) ?? []).filter((ref) => mayHoldAfter(ref, index, intervalStartMs));
    if (current && !named.some((ref) => ref.namespace === current.namespace && ref.name === current.name))
      named.push(current);
    this.byDevice.set(key, named);
    return named;
  }

  clear(): void {
    this.byDevice.clear();
  }
}

/** Some pod of that name is still in the cache and has not started, still runs, or ended after `ms`. */
function mayHoldAfter(ref: PodRef, index: PodIndex, ms: number): boolean {
  return index.named(ref).some((entry) => {
    const span = trackedSpan(entry);
    return span === undefined || span.endMs === null || span.endMs > ms;
  });
}
