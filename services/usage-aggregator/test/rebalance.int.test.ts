import { describe, expect, it } from 'vitest';
import { startService } from '../../../test/support/processes.js';
import { sleep, testAdmin } from '../../../test/support/kafka.js';
import {
  aggregatorEnv,
  createAll,
  expectedTotals,
  expectSameAsFaultFree,
  grid,
  readEvents,
  sampleProducer,
  uniqueTopics,
} from './int-support.js';

const SUBJECTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
// Grace covers a one-second chunk plus a span: producing one topic a moment before the other is harmless.
const TIMING = {
  WINDOW_MS: '1000',
  GRACE_MS: '1500',
  MAX_BYTES_PER_PARTITION: '1024',
  // The samples are dated an hour ahead on purpose (see base), which the clock check would dead-letter.
  MAX_CLOCK_AHEAD_MS: '7200000',
};

describe('two instances sharing the partitions', () => {
  it('(d) one killed mid-run: the survivor takes its tasks and the events equal the fault-free run', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-two');
    await createAll(admin, topics, 4);
    const producer = await sampleProducer(topics);
    const base = Math.ceil((Date.now() + 3_600_000) / 1000) * 1000;
    const chunks = Array.from({ length: 12 }, (_, k) =>
      grid(SUBJECTS, base + k * 1000, base + (k + 1) * 1000),
    );
    const samples = chunks.flat();
    const expected = expectedTotals(samples, 1000);
    for (const c of chunks.slice(0, 6)) await producer.send(c);

    const env = aggregatorEnv(topics, TIMING);
    const first = startService('usage-aggregator', env);
    await first.waitForLog(/aggregator ready/);
    const second = startService('usage-aggregator', env);
    await second.waitForLog(/aggregator ready/);
    await sleep(Math.floor(Math.random() * 1500));
    const [victim, survivor] = Math.random() < 0.5 ? [first, second] : [second, first];
    await victim.kill('SIGKILL');
    // The second half arrives after the kill: the victim's partitions can only be finished by the survivor.
    for (const c of chunks.slice(6)) await producer.send(c);
    // A flush sample per subject closes every data window by watermark; its own window stays open.
    await producer.send(grid(SUBJECTS, base + 20_000, base + 20_250));
    const shared = await readEvents(topics, expected.size, 120_000);
    expect(survivor.running).toBe(true);
    const restored = survivor.output.filter((line) => /task restored/.test(line)).length;
    expect(restored).toBeGreaterThan(2); // its own tasks at start, then all four after the victim's death

    await expectSameAsFaultFree(admin, topics, shared, expected, TIMING);
  });
});
