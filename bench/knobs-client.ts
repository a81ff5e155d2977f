// One benchmark client process: follows the bench knobs through a KnobClient and records,
// for every version it sees, the monotonic time it saw it (CLOCK_MONOTONIC is system-wide on
// Linux, so the parent's timestamps compare with ours). A `raw` channel measures the peer.
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { benchCatalog } from './knobs-catalog.ts';

const [url, prefix, rawChannel] = process.argv.slice(2) as [string, string, string];
const seen: [string, number, string][] = [];
const now = () => process.hrtime.bigint().toString();

const table = new KnobTable(new Redis(url), { keys: new Keys(prefix), catalog: benchCatalog });
const client = await KnobClient.start({ table, resyncIntervalMs: 0 });
client.on('change', (e) => seen.push([e.name, e.version, now()]));

// The peer: the same publish-to-visibility path with no knobs table around it.
const raw = new Redis(url);
raw.on('message', (_c: string, m: string) => seen.push(['raw', Number(m), now()]));
await raw.subscribe(rawChannel);

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
