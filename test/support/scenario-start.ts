import type { Simulator } from '@gpu-meter/simulator';

/** The services must be up this long before the scenario starts: the first grid point is sampled right after it. */
const READY_BEFORE_START_MS = 1_000;
/** A postponed start lies at least this far ahead (then on an `alignMs` boundary). */
const POSTPONE_LEAD_MS = 5_000;

/**
 * Waits for `ready` (the services under test starting) and keeps the simulated scenario from beginning before
 * it: whenever `ready` has not settled READY_BEFORE_START_MS before the start, the start moves to the next
 * `alignMs` boundary at least POSTPONE_LEAD_MS ahead. Other work on the machine can make start-up longer than
 * any fixed lead (61 s was seen beside CPU hogs and a Go build), and a scenario that began before its
 * collectors were ready bills less than its truth for the rig's reasons, not the pipeline's. A rejection of
 * `ready` (a service that never started) is thrown. Returns the start, epoch ms.
 */
export async function postponeUntilReady(
  simulator: Simulator,
  ready: Promise<unknown>,
  alignMs: number,
  say: (line: string) => void = () => undefined,
): Promise<number> {
  let settled = false;
  const done = ready.then(() => {
    settled = true;
  });
  // Handled here too, so a failure after a postponement failed is not an unhandled rejection.
  done.catch(() => undefined);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, simulator.startMs - READY_BEFORE_START_MS - Date.now()));
    });
    try {
      await Promise.race([done, deadline]);
    } finally {
      clearTimeout(timer);
    }
    if (settled) return simulator.startMs;
    const laterMs = Math.ceil((Date.now() + POSTPONE_LEAD_MS) / alignMs) * alignMs;
    simulator.postpone(laterMs);
    say(
      `services not ready ${READY_BEFORE_START_MS} ms before the start: scenario postponed to ${new Date(laterMs).toISOString()}`,
    );
  }
}
