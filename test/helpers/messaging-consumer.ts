// A consumer process for crash tests: forked with IPC, it runs an exactly-once Consumer whose
// handler marks each message seen (a counter per message and a total, through the output
// API), taking a little time per message so a SIGKILL lands mid-batch. It tells the parent
// when it is ready and after each batch; on 'finish' it stops and reports its counts.
import { KnobClient } from '../../controlplane/knobs/client.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { Consumer } from '../../controlplane/messaging/consumer.ts';
import { MessagingKeys } from '../../controlplane/messaging/keys.ts';
import { connect, type RedisTarget } from '../../controlplane/redis/connect.ts';
import { Keys } from '../../controlplane/store/keys.ts';

export interface CrashConsumerConfig {
  target: RedisTarget;
  prefix: string;
  topic: string;
  group: string;
  visibilityMs: number;
  /** Handler time per message, ms. */
  workMs: number;
}

export type CrashConsumerMessage =
  | { type: 'ready' }
  | { type: 'batch'; applied: number; duplicates: number; stale: number }
  | { type: 'report'; applied: number; duplicates: number; stale: number };

const send = (m: CrashConsumerMessage) => process.send?.(m);
const cfg = JSON.parse(process.argv[2] ?? '{}') as CrashConsumerConfig;
const redis = connect(cfg.target, { name: 'crash-consumer' });
redis.on('error', () => {});
const keys = new Keys(cfg.prefix);
const knobs = await KnobClient.start({
  table: new KnobTable(redis, { keys }),
  names: ['messaging.batch_size', 'messaging.linger_ms', 'messaging.partitions'],
  resyncIntervalMs: 0,
});
const totals = { applied: 0, duplicates: 0, stale: 0 };
const consumer = await Consumer.start({
  redis,
  keys: new MessagingKeys(keys),
  knobs,
  topic: cfg.topic,
  group: cfg.group,
  visibilityMs: cfg.visibilityMs,
  blockMs: 200,
  handler: async (m, out) => {
    await new Promise((r) => setTimeout(r, cfg.workMs));
    out.hincr('seen', m.data);
    out.incr('total');
  },
});
consumer.on('batch', (e) => {
  totals.applied += e.applied;
  totals.duplicates += e.duplicates;
  totals.stale += e.stale;
  send({ type: 'batch', applied: e.applied, duplicates: e.duplicates, stale: e.stale });
});
process.on('message', (m: { type: string }) => {
  if (m.type !== 'finish') return;
  void (async () => {
    await consumer.stop();
    await knobs.close();
    send({ type: 'report', ...totals });
    redis.disconnect();
    process.disconnect?.();
  })();
});
send({ type: 'ready' });
