// A learner process for the fault test: writes proposals as fast as it can until killed.
import { Redis } from 'ioredis';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { ProposalTable } from '../../controlplane/loop/proposals.ts';
import { Keys } from '../../controlplane/store/keys.ts';

const [url, prefix] = process.argv.slice(2) as [string, string];
const knobs = new KnobTable(new Redis(url), { keys: new Keys(prefix) });
const proposals = new ProposalTable(knobs);
process.send?.({ type: 'ready' });
for (let i = 0; ; i++) {
  await proposals.create({
    learner: 'doomed',
    reason: `proposal ${i}`,
    evidence: { blob: 'x'.repeat(2000), i },
    changes: [
      // Never 3, the catalog default: a change to the current value is refused.
      { name: 'scheduler.retry_limit', value: [1, 2, 4, 5, 6][i % 5] as number, baseVersion: 1 },
      { name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 },
      { name: 'messaging.linger_ms', value: 10, baseVersion: 1 },
    ],
  });
}
