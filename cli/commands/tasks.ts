// `knobos tasks <get|list|cancel>`: a scheduler shard's tasks from the command line, read and
// cancelled as the API does it (SchedulerQueries.listTasks, SchedulerClient.cancel).
import { userInfo } from 'node:os';
import { SchedulerClient } from '../../controlplane/scheduler/client.ts';
import {
  LISTED_STATES,
  SchedulerQueries,
  type ListedState,
} from '../../controlplane/scheduler/queries.ts';
import { schedulerShardNames } from '../../controlplane/run/scheduler-stack.ts';
import { SchedShard } from '../../controlplane/scheduler/shard.ts';
import { KnobosError } from '../../controlplane/store/errors.ts';
import { commandFailed, emitResult, writeErrorLine } from '../../experiments/report.ts';
import { numberFlag, UsageError } from '../args.ts';
import { connectCli, keysFromEnv } from '../context.ts';
import { parseSubcommand, type SubcommandSpec } from '../subcommands.ts';

const USAGE = `usage: knobos tasks <command> [options]
  get ID                                  one task's row
  list --state S [--tenant T] [--limit N] tasks in a state: ${LISTED_STATES.join(', ')}
                                          (runnable and delayed oldest first, leased by lease
                                          expiry, the others newest first; dead: dead letters)
  cancel ID --reason R                    cancel a task that has not ended: it leaves its queue,
                                          or its running copies are stopped; its dependents fail
options: --redis URL, --shard NAME (default: the first of the shards \`knobos start\` runs: s0 on
         one Redis), --actor NAME (default: cli:<your user name>), --json
`;

type Cmd = 'get' | 'list' | 'cancel';
type Flag = 'state' | 'tenant' | 'limit' | 'reason';

const SPEC: SubcommandSpec<Cmd, Flag> = {
  group: 'tasks',
  takes: {
    get: { args: ['ID'], flags: [] },
    list: { args: [], flags: ['state', 'tenant', 'limit'] },
    cancel: { args: ['ID'], flags: ['reason'] },
  },
  required: ['state', 'reason'],
  global: ['redis', 'actor', 'shard'],
};

function fmt(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A row as `name value` lines, times as ISO dates. */
function lines(row: object): string {
  return Object.entries(row)
    .map(([k, v]) => {
      const time = /_at$/.test(k) && typeof v === 'number' && Number.isFinite(v);
      return `${k.padEnd(16)} ${time ? new Date(v).toISOString() : fmt(v)}`;
    })
    .join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let p: ReturnType<typeof parseSubcommand<Cmd, Flag>>;
  let limit: number;
  try {
    p = parseSubcommand(argv, SPEC);
    if (p === 'help' || p === 'usage') {
      (p === 'help' ? process.stdout : process.stderr).write(USAGE);
      return p === 'help' ? 0 : 2;
    }
    const state = p.values['state'];
    if (typeof state === 'string' && !(LISTED_STATES as readonly string[]).includes(state))
      throw new UsageError(
        `tasks list: --state must be one of ${LISTED_STATES.join(', ')}, got '${state}'`,
      );
    limit = numberFlag(
      'limit',
      p.values['limit'] as string | undefined,
      { integer: true, min: 1, max: 500 },
      20,
    );
  } catch (err) {
    const msg = err instanceof UsageError ? err.message : `tasks: ${(err as Error).message}`;
    return commandFailed(`knobos ${msg}`, err, argv, USAGE);
  }
  const v = p.values as Partial<Record<Flag | 'redis' | 'actor' | 'shard', string>> & {
    json?: boolean;
  };
  const json = v.json ?? false;
  const redis = connectCli(v.redis);
  try {
    const stack = await schedulerShardNames(redis);
    const shard = new SchedShard(redis, keysFromEnv(), v.shard ?? (stack[0] as string));
    const client = new SchedulerClient({ shard });
    // A shard name nothing was ever written under reads as empty: say so, naming the stack's.
    const k = shard.k;
    if ((await redis.exists(k.workers(), k.runnable(), k.done(), k.dead(), k.leases())) === 0)
      process.stderr.write(
        `knobos: shard ${shard.shard} holds no tasks or workers (the shards knobos start runs here: ${stack.join(', ')})\n`,
      );
    let result: object;
    let human: string;
    const id = p.args[0] ?? '';
    switch (p.cmd) {
      case 'get': {
        const row = await client.mustGet(id);
        result = row;
        human = lines(row);
        break;
      }
      case 'list': {
        const state = v.state as ListedState;
        const tenant = v.tenant ?? null;
        const r = await new SchedulerQueries(shard).listTasks(state, { tenant, limit });
        result = { state, tenant, ...r };
        human = r.tasks
          .map((t) => {
            const at = 'finished_at' in t ? t.finished_at : 'dead_at' in t ? t.dead_at : undefined;
            const when = typeof at === 'number' ? new Date(at).toISOString() : '';
            const error = 'error' in t && t.error ? `  ${t.error}` : '';
            return `${t.id}  ${t.type}  ${t.tenant}  ${when}${error}`;
          })
          .concat(r.truncated ? ['(the scan stopped at its bound: more may exist)'] : [])
          .join('\n');
        break;
      }
      case 'cancel': {
        const r = await client.cancel(id, {
          actor: v.actor ?? `cli:${userInfo().username}`,
          reason: v.reason ?? '',
        });
        result = r;
        human = r.changed
          ? `${id} cancelled${r.dependents > 0 ? ` (${r.dependents} dependents upstream_failed)` : ''}`
          : `${id} was already cancelled`;
        break;
      }
    }
    emitResult(human, result, json);
    return 0;
  } catch (err) {
    if (!(err instanceof KnobosError)) throw err;
    if (json) writeErrorLine(err);
    else process.stderr.write(`knobos: ${err.message}\n`);
    return 1;
  } finally {
    redis.disconnect();
  }
}
