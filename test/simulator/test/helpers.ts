import { expect } from 'vitest';
import { parseScenario, type Scenario, type ScenarioInput } from '../src/scenario.js';

/** 2030-01-01T00:00:00Z: a multiple of every interval and window the tests use. */
export const T0 = Date.UTC(2030, 0, 1);

export function scenario(partial: Partial<ScenarioInput> & Pick<ScenarioInput, 'nodes'>): Scenario {
  return parseScenario({ clusterId: 'c1', startMs: T0, ...partial });
}

/** Equal to 1e-12 relative (floating sums of shares); exact for integers. */
export function expectClose(actual: number | undefined, expected: number): void {
  expect(actual).toBeDefined();
  const scale = Math.max(1, Math.abs(expected));
  expect(Math.abs(actual! - expected) / scale).toBeLessThan(1e-12);
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
