// One benchmark client process: follows the bench knobs through a KnobClient and records,
// for every version it sees, the monotonic time it saw it (CLOCK_MONOTONIC is system-wide on
// Linux, so the parent's timestamps compare with ours). Two raw channels serve the peer: the
// latency channel, and the throughput channel, subscribed here too so the peer's throughput
// writes are fanned out to the same client processes as the knobs table's promotions.
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { benchCatalog } from './knobs-catalog.ts';

const [url, prefix, rawChannel, rawTpChannel] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
];
const seen: [string, number, string][] = [];
const now = () => process.hrtime.bigint().toString();

const table = new KnobTable(new Redis(url), { keys: new Keys(prefix), catalog: benchCatalog });
const client = await KnobClient.start({ table, resyncIntervalMs: 0 });
client.on('change', (e) => seen.push([e.name, e.version, now()]));

// The peer: the same publish-to-visibility path with no knobs table around it.
const raw = new Redis(url);
// Recorded like the knobs' change events (one entry per message), so both sides cost the same.
raw.on('message', (c: string, m: string) =>
  seen.push([c === rawChannel ? 'raw' : 'raw.tp', Number(m), now()]),
);
await raw.subscribe(rawChannel, rawTpChannel);

process.on('message', (m: { type: string }) => {
  if (m.type !== 'finish') return;
  process.send?.({ type: 'report', report: seen }, () => {
    void client.close();
    raw.disconnect();
    table.redis.disconnect();
    process.exit(0);
  });
});
process.send?.({ type: 'ready' });
