// `knobos knobs <list|get|history|audit|set|rollback|pin|unpin|freeze|unfreeze>`: the knobs
// table from the command line. Every write names an actor and a reason, and is audited.
import { userInfo } from 'node:os';
import type { KnobValue } from '../../knobs/index.ts';
import { readAudit } from '../../controlplane/api/audit-read.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { KnobRow } from '../../controlplane/knobs/row.ts';
import {
  checkDirectKnobChange,
  checkDirectRollback,
} from '../../controlplane/registry/promotion.ts';
import { KnobosError } from '../../controlplane/store/errors.ts';
import { commandFailed, emitResult, writeErrorLine } from '../../experiments/report.ts';
import { numberFlag, UsageError } from '../args.ts';
import { connectCli, keysFromEnv } from '../context.ts';
import { parseSubcommand, type SubcommandSpec } from '../subcommands.ts';

const USAGE = `usage: knobos knobs <command> [options]
  list                                   every knob: value, version, last change
  get NAME                               one knob's row
  history NAME [--limit N]               its changes, newest first
  audit [--limit N] [--target NAME] [--before CURSOR]
                                         control-plane actions, newest first; a page that
                                         ends early prints the cursor of the next one
  set NAME VALUE --base V --reason R     promote a value (VALUE is JSON: 8, "sjf", true, {"t1":2})
  rollback NAME --to V --reason R        restore the value of version V as a new version
  pin NAME --reason R | unpin NAME --reason R
  freeze --reason R | unfreeze --reason R   the kill switch for all automation
options: --redis URL, --actor NAME (default: cli:<your user name>), --json
An argument or a flag the command does not take is refused; numbers are decimal digits.
`;

type Cmd =
  | 'list'
  | 'get'
  | 'history'
  | 'audit'
  | 'set'
  | 'rollback'
  | 'pin'
  | 'unpin'
  | 'freeze'
  | 'unfreeze';

type Flag = 'reason' | 'base' | 'to' | 'limit' | 'target' | 'before';

/** Each command's positional arguments, and the flags that apply to it besides the global ones. */
const SPEC: SubcommandSpec<Cmd, Flag> = {
  group: 'knobs',
  takes: {
    list: { args: [], flags: [] },
    get: { args: ['NAME'], flags: [] },
    history: { args: ['NAME'], flags: ['limit'] },
    audit: { args: [], flags: ['limit', 'target', 'before'] },
    set: { args: ['NAME', 'VALUE'], flags: ['base', 'reason'] },
    rollback: { args: ['NAME'], flags: ['to', 'reason'] },
    pin: { args: ['NAME'], flags: ['reason'] },
    unpin: { args: ['NAME'], flags: ['reason'] },
    freeze: { args: [], flags: ['reason'] },
    unfreeze: { args: [], flags: ['reason'] },
  },
  // Where they apply, these are required; --limit and --target are not.
  required: ['reason', 'base', 'to'],
  global: ['redis', 'actor'],
};

interface KnobsArgs {
  cmd: Cmd;
  /** NAME, where the command takes one. */
  name: string;
  /** VALUE of `set`, parsed. */
  value: KnobValue;
  base: number;
  to: number;
  reason: string;
  limit: number;
  target: string | undefined;
  /** The audit page cursor (`next` of the previous page). */
  before: string | undefined;
  actor: string;
  redis: string | undefined;
  json: boolean;
}

/**
 * Every check that needs no Redis, before the connection (parseSubcommand), and the numbers.
 * Throws a UsageError or a FlagError.
 */
function parse(argv: string[]): KnobsArgs | 'help' | 'usage' {
  const p = parseSubcommand(argv, SPEC);
  if (p === 'help' || p === 'usage') return p;
  const { cmd, args } = p;
  const o = p.values as Partial<Record<Flag | 'redis' | 'actor', string>> & { json?: boolean };
  const version = { integer: true, min: 1 };
  return {
    cmd: cmd as Cmd,
    name: args[0] ?? '',
    value: parseValue(args[1] ?? ''),
    base: numberFlag('base', o.base, version, 0),
    to: numberFlag('to', o.to, version, 0),
    reason: o.reason ?? '',
    limit: numberFlag('limit', o.limit, { integer: true, min: 1 }, 20),
    target: o.target,
    before: auditCursor(o.before),
    actor: o.actor ?? `cli:${userInfo().username}`,
    redis: o.redis,
    json: o.json ?? false,
  };
}

/** `<entry id>:knobs` as a page's `next` gives it, or a plain entry id (only older entries). */
function auditCursor(raw: string | undefined): string | undefined {
  if (raw !== undefined && !/^\d+-\d+(:knobs)?$/.test(raw))
    throw new UsageError(
      `knobs audit: --before must be a cursor '<ms>-<seq>:knobs' or an entry id '<ms>-<seq>', got '${raw}'`,
    );
  return raw;
}

function parseValue(raw: string): KnobValue {
  try {
    return JSON.parse(raw) as KnobValue;
  } catch {
    return raw; // a bare word is a string: `set scheduler.policy sjf`
  }
}

function fmt(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function table(rows: KnobRow[]): string {
  const head = ['knob', 'value', 'default', 'v', 'updated by', 'reason'];
  const body = rows.map((r) => [
    r.name + (r.pinned ? ' (pinned)' : ''),
    fmt(r.value),
    fmt(r.default),
    String(r.version),
    r.updatedBy,
    r.reason,
  ]);
  const widths = head.map((h, i) =>
    Math.min(40, Math.max(h.length, ...body.map((b) => (b[i] as string).length))),
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => c.slice(0, widths[i]).padEnd(widths[i] as number)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let a: KnobsArgs | 'help' | 'usage';
  try {
    a = parse(argv);
  } catch (err) {
    // A UsageError names its command; parseArgs' and the number parser's errors do not.
    const msg = err instanceof UsageError ? err.message : `knobs: ${(err as Error).message}`;
    return commandFailed(`knobos ${msg}`, err, argv, USAGE);
  }
  if (a === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (a === 'usage') {
    const err = new UsageError('knobs: a command is required');
    return commandFailed(`knobos ${err.message}`, err, argv, USAGE);
  }
  const { cmd, name, actor, reason, limit } = a;
  const failed = (err: KnobosError): number => {
    if (a.json) writeErrorLine(err);
    else process.stderr.write(`knobos: ${err.message}\n`);
    return 1;
  };
  if (cmd === 'set') {
    try {
      checkDirectKnobChange(name, a.value);
    } catch (err) {
      if (err instanceof KnobosError) return failed(err);
      throw err;
    }
  }
  // An error thrown once the client is open must pass the finally below, or the open client
  // keeps the process alive.
  const redis = connectCli(a.redis);
  const knobs = new KnobTable(redis, { keys: keysFromEnv() });
  try {
    let result: unknown;
    let human: string;
    switch (cmd) {
      case 'list': {
        const rows = await knobs.list();
        const frozen = await knobs.frozen();
        result = { knobs: rows, frozen };
        human =
          table(rows) + (frozen ? `\n\nAUTOMATION FROZEN by ${frozen.by}: ${frozen.reason}` : '');
        break;
      }
      case 'get': {
        const row = await knobs.get(name);
        result = row;
        human = Object.entries(row)
          .map(
            ([k, v]) =>
              `${k.padEnd(11)} ${k === 'updatedAt' && Number.isFinite(v) ? new Date(v as number).toISOString() : fmt(v)}`,
          )
          .join('\n');
        break;
      }
      case 'history': {
        const h = await knobs.history(name, { limit });
        result = { history: h };
        human = h
          .map(
            (e) =>
              `v${e.version}  ${new Date(e.at).toISOString()}  ${fmt(e.old)} -> ${fmt(e.new)}  ${e.kind} by ${e.actor}: ${e.reason}`,
          )
          .join('\n');
        break;
      }
      case 'audit': {
        // The API's reader: a target filter scans a bounded number of pages per call, and a
        // page it ends early carries the cursor to go on from (never a silently short answer).
        const { entries, next } = await readAudit(
          redis,
          [{ name: 'knobs', key: knobs.keys.knobAudit() }],
          {
            limit,
            visible: () => true,
            ...(a.target ? { target: a.target } : {}),
            ...(a.before ? { before: a.before } : {}),
          },
        );
        const audit = entries.map(({ source: _source, ...e }) => e);
        result = { audit, next };
        human = audit
          .map(
            (e) =>
              `${new Date(e.at).toISOString()}  ${e.action.padEnd(19)} ${e.target.padEnd(30)} ${e.actor}  ${JSON.stringify(e.detail)}`,
          )
          .concat(next ? [`(more: --before ${next})`] : [])
          .join('\n');
        break;
      }
      case 'set': {
        const r = await knobs.promote({
          name,
          value: a.value,
          baseVersion: a.base,
          actor,
          reason,
        });
        result = r;
        human = `${r.name} = ${fmt(r.value)} (version ${r.version})`;
        break;
      }
      case 'rollback': {
        await checkDirectRollback(knobs, name, a.to, 'to');
        const r = await knobs.rollback({
          name,
          toVersion: a.to,
          actor,
          reason,
        });
        result = r;
        human = `${r.name} = ${fmt(r.value)} (version ${r.version}, restored from version ${a.to})`;
        break;
      }
      case 'pin':
      case 'unpin': {
        const changed = await knobs[cmd](name, actor, reason);
        result = { name, pinned: cmd === 'pin', changed };
        human = changed
          ? `${name} ${cmd}ned`
          : cmd === 'pin'
            ? `${name} was already pinned by ${actor} for this reason`
            : `${name} was not pinned`;
        break;
      }
      case 'freeze':
      case 'unfreeze': {
        const changed = await knobs[cmd](actor, reason);
        result = { frozen: cmd === 'freeze', changed };
        human = changed
          ? `automation ${cmd === 'freeze' ? 'frozen' : 'unfrozen'}`
          : `automation was already ${cmd === 'freeze' ? 'frozen' : 'running'}`;
        break;
      }
      default:
        throw new Error(`knobs: unhandled command '${cmd satisfies never}'`);
    }
    emitResult(human, result as object, a.json);
    return 0;
  } catch (err) {
    if (err instanceof KnobosError) return failed(err);
    throw err;
  } finally {
    redis.disconnect();
  }
}
