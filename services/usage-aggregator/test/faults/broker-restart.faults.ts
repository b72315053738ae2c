import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../../test/support/stack-env.js';
import { startService } from '../../../../test/support/processes.js';
import { sleep, testAdmin } from '../../../../test/support/kafka.js';
import {
  aggregatorEnv,
  createAll,
  expectedTotals,
  expectSameAsFaultFree,
  grid,
  readEvents,
  sampleProducer,
  uniqueTopics,
} from '../int-support.js';

/**
 * Part of `npm run faults`, not of `npm test`: it restarts the shared broker. The aggregator works through
 * a backlog in small transactions (1 KiB fetches) when the broker goes away, so transactions fail mid-flight
 * and tasks are restored from their committed offsets; the events must equal a fault-free run's.
 */
const SUBJECTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
const TIMING = {
  WINDOW_MS: '1000',
  GRACE_MS: '1500',
  MAX_BYTES_PER_PARTITION: '1024',
  // The samples are dated an hour ahead on purpose (see base), which the clock check would dead-letter: it
  // did, every sample, since 08a797f (kill.int and rebalance.int got this setting then, this test did not).
  MAX_CLOCK_AHEAD_MS: '7200000',
};

describe('aggregator under a broker restart', () => {
  it('restarted mid-backlog yields the fault-free run', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-broker');
    await createAll(admin, topics, 4);
    const producer = await sampleProducer(topics);
    // Event time in the future: only data closes windows, never the wall clock.
    const base = Math.ceil((Date.now() + 3_600_000) / 1000) * 1000;
    const samples = grid(SUBJECTS, base, base + 400_000);
    await producer.send(samples);
    await producer.send(grid(SUBJECTS, base + 410_000, base + 410_250)); // closes every data window
    const expected = expectedTotals(samples, 1000);

    const faulty = startService('usage-aggregator', aggregatorEnv(topics, TIMING));
    await faulty.waitForLog(/aggregator ready/, 120_000);
    await sleep(300);
    const restart = spawn('bash', ['test/stack/kafka.sh', 'restart'], { cwd: REPO_ROOT, stdio: 'inherit' });
    const [code] = (await once(restart, 'exit')) as [number | null];
    expect(code).toBe(0);
    const faultyEvents = await readEvents(topics, expected.size, 300_000);
    const restores = faulty.output.filter((line) => line.includes('task failed; restoring it')).length;
    process.stdout.write(`aggregator tasks restored after a failed transaction: ${restores}\n`);

    await expectSameAsFaultFree(admin, topics, faultyEvents, expected, TIMING);
  }, 900_000);
});
