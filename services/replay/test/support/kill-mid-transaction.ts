/**
 * A replay that dies by SIGKILL inside its transaction: after the records were sent, before the offsets
 * and the commit. `node --import tsx kill-mid-transaction.ts TOPIC` with KAFKA_BROKERS set; used by
 * replay.int.test.ts to show that the next run still delivers each record exactly once.
 */
import { createLogger } from '@gpu-meter/kit/runtime';
import { createKafka } from '@gpu-meter/kit/kafka';
import { loadConfig } from '../../src/config.js';
import { parseReplayArgs } from '../../src/options.js';
import { runReplay } from '../../src/replay.js';

const command = parseReplayArgs(['--topic', process.argv[2]!]);
if (command === 'help') throw new Error('a topic is needed');
const logger = createLogger('replay-kill', 'silent');
await runReplay(createKafka(loadConfig(), 'replay-kill', logger), command, logger, {
  beforeCommit: async () => {
    process.stdout.write('sent, killing\n');
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => undefined);
  },
});
