// `knobos tasks <get|list|cancel|cancel-job>`: a scheduler shard's tasks from the command line,
// read and cancelled as the API does it (SchedulerQueries.listTasks, SchedulerClient.cancel and
// cancelJob).
import { userInfo } from 'node:os';
import { checkCancelInput, SchedulerClient } from '../../controlplane/scheduler/client.ts';
import { SchedulerInputError } from '../../controlplane/scheduler/errors.ts';
import {
  LISTED_STATES,
  SchedulerQueries,
  type ListedState,
} from '../../controlplane/scheduler/queries.ts';
import { schedulerShardNames } from '../../controlplane/run/stack-shards.ts';
import { SchedShard } from '../../controlplane/scheduler/shard.ts';
import { checkName } from '../../controlplane/scheduler/tasks.ts';
import { assertKeyPart } from '../../controlplane/store/keys.ts';
import { KnobosError } from '../../controlplane/store/errors.ts';
import { commandFailed, emitResult, writeErrorLine } from '../../experiments/report.ts';
import { numberFlag, UsageError } from '../args.ts';
import { connectCli, keysFromEnv } from '../context.ts';
import { parseSubcommand, type SubcommandSpec } from '../subcommands.ts';

const USAGE = `usage: knobos tasks <command> [options]
  get ID                                  one task's row
  list --state S [--tenant T] [--limit N] tasks in a state: ${LISTED_STATES.join(', ')}
                                          (runnable and delayed oldest first, leased by lease
                                          expiry, the others newest first; dead: dead letters);
                                          N in 1..500, default 20
  cancel ID --reason R                    cancel a task that has not ended: it leaves its queue,
                                          or its running copies are stopped; its dependents fail
  cancel-job JOB --reason R               cancel every task of a job that has not ended
options: --redis URL, --shard NAME (default: the first of the shards \`knobos start\` runs: s0 on
         one Redis), --actor NAME (default: cli:<your user name>), --json
`;

type Cmd = 'get' | 'list' | 'cancel' | 'cancel-job';
type Flag = 'state' | 'tenant' | 'limit' | 'reason';

const SPEC: SubcommandSpec<Cmd, Flag> = {
  group: 'tasks',
  takes: {
    get: { args: ['ID'], flags: [] },
    list: { args: [], flags: ['state', 'tenant', 'limit'] },
    cancel: { args: ['ID'], flags: ['reason'] },
    'cancel-job': { args: ['JOB'], flags: ['reason'] },
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
  let actor: string;
  try {
    p = parseSubcommand(argv, SPEC);
    if (p === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (p === 'usage') throw new UsageError('tasks: a command is required');
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
    // Every input the commands send, checked before connecting, as their callees check it.
    const { shard, tenant, reason } = p.values;
    if (typeof shard === 'string') assertKeyPart('--shard', shard);
    if (p.args[0] !== undefined)
      checkName(p.args[0], SPEC.takes[p.cmd].args[0] ?? 'ID', `tasks ${p.cmd}`);
    if (typeof tenant === 'string') checkName(tenant, '--tenant', 'tasks list');
    actor =
      typeof p.values['actor'] === 'string' ? p.values['actor'] : `cli:${userInfo().username}`;
    if (p.cmd === 'cancel' || p.cmd === 'cancel-job') checkCancelInput({ actor, reason });
  } catch (err) {
    // UsageError and SchedulerInputError messages name their command or field already.
    const named = err instanceof UsageError || err instanceof SchedulerInputError;
    const msg = named ? err.message : `tasks: ${(err as Error).message}`;
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
    const indexes = [k.workers(), k.runnable(), k.delayed(), k.leases(), k.done(), k.dead()];
    if ((await redis.exists(...indexes)) === 0)
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
        // The time that orders the state: ended, leased or ready at.
        const timeOf = (t: (typeof r.tasks)[number]) =>
          'dead_at' in t
            ? t.dead_at
            : (t.finished_at ?? ('leased_at' in t ? t.leased_at : undefined) ?? t.ready_at);
        human = r.tasks
          .map((t) => {
            const at = timeOf(t);
            const cells = [t.id, t.type, t.tenant];
            if (typeof at === 'number') cells.push(new Date(at).toISOString());
            if ('worker' in t && t.worker && state === 'leased') cells.push(`on ${t.worker}`);
            if (t.error) cells.push(t.error);
            return cells.join('  ');
          })
          .concat(r.tasks.length === 0 ? ['(no tasks)'] : [])
          .concat(r.truncated ? ['(the scan stopped at its bound: more may exist)'] : [])
          .join('\n');
        break;
      }
      case 'cancel': {
        const r = await client.cancel(id, { actor, reason: v.reason ?? '' });
        result = r;
        human = r.changed
          ? `${id} cancelled${r.dependents > 0 ? ` (${r.dependents} dependents upstream_failed)` : ''}`
          : `${id} was already cancelled`;
        break;
      }
      case 'cancel-job': {
        const r = await client.cancelJob(id, { actor, reason: v.reason ?? '' });
        result = r;
        const deps = r.dependents > 0 ? `, ${r.dependents} dependents upstream_failed` : '';
        human = `job ${id}: ${r.cancelled.length} tasks cancelled, ${r.ended} had ended${deps}`;
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
