import { execFileSync } from 'node:child_process';
import { REPO_ROOT } from '../support/stack-env.js';

/** Runs the aggregator's memory probe in a fresh process (with --expose-gc) so nothing else skews it. */
export async function measureMemory(): Promise<{
  heapBytesPer100kDedupeIds: number;
  rssBytesPer100kDedupeIds: number;
  heapBytesPer10kGroups: number;
  rssBytesPer10kGroups: number;
}> {
  const output = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'services/usage-aggregator/bench/memory.ts'],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  return JSON.parse(output.trim().split('\n').at(-1)!);
}
