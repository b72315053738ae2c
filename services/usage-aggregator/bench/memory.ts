/**
 * Memory per open dedupe id and per open group, measured on the pure task (no Kafka), in its own process
 * started with --expose-gc: `node --expose-gc --import tsx services/usage-aggregator/bench/memory.ts`.
 * Prints one JSON object.
 */
import { emptyOutput, Task, type TaskSettings } from '../src/task.js';
import { fromPodAllocation, type Sample } from '../src/samples.js';
import { podAllocationFixture } from '../../../test/support/fixtures.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const settings: TaskSettings = {
  tasks: 1,
  windowMs: 3_600_000,
  graceMs: 30_000,
  idleAdvanceMs: 3_600_000,
  latePolicy: 'correction',
  dedupeRetentionMs: 86_400_000,
};
const inputs = [
  { topic: 'pods', partition: 0 },
  { topic: 'bandwidth', partition: 0 },
];
const baseMs = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 7 * 24 * 3_600_000;

function sample(i: number, groups: number): Sample {
  const group = i % groups;
  const t = baseMs + 15_000 + (i % 200) * 15;
  return fromPodAllocation(
    podAllocationFixture({
      id: `${i.toString(16).padStart(8, '0')}${'0'.repeat(56)}`,
      observedAtMs: t,
      spanStartMs: t - 15,
      spanEndMs: t,
      subject: `customer-${group}`,
      project: `project-${group}`,
    }),
  );
}

function measure(count: number, groups: number) {
  gc!();
  const before = process.memoryUsage();
  const task = new Task(settings, 0, inputs, Date.now());
  const out = emptyOutput();
  for (let i = 0; i < count; i += 1)
    task.process(0, { kind: 'sample', offset: i, sample: sample(i, groups) }, Date.now(), out);
  gc!();
  const after = process.memoryUsage();
  if (task.dedupeSize !== count) throw new Error(`expected ${count} dedupe ids, got ${task.dedupeSize}`);
  return {
    // The dedupe fingerprints live in typed arrays, outside the JS heap: count their buffers too.
    heap: after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers),
    rss: after.rss - before.rss,
    groups: task.openGroups,
    task,
  };
}

// 100k ids in one group: the dedupe cost. 10k groups (one id each): the group cost minus one id each.
const ids = measure(100_000, 1);
const perId = ids.heap / 100_000;
const groups = measure(10_000, 10_000);
const groupHeap = groups.heap - perId * 10_000;
process.stdout.write(
  `${JSON.stringify({
    heapBytesPer100kDedupeIds: Math.round(ids.heap),
    rssBytesPer100kDedupeIds: Math.round(ids.rss),
    heapBytesPer10kGroups: Math.round(groupHeap),
    rssBytesPer10kGroups: Math.round(groups.rss),
    openGroups: groups.groups,
  })}\n`,
);
