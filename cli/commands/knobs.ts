// `knobos knobs <list|get|history|audit|set|rollback|pin|unpin|freeze|unfreeze>`: the knobs
// table from the command line. Every write names an actor and a reason, and is audited.
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import type { KnobValue } from '../../knobs/index.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { KnobRow } from '../../controlplane/knobs/row.ts';
import { checkDirectKnobChange } from '../../controlplane/registry/promotion.ts';
import { KnobosError } from '../../controlplane/store/errors.ts';
import { emitResult } from '../../experiments/report.ts';
import { connectCli, keysFromEnv } from '../context.ts';

const USAGE = `usage: knobos knobs <command> [options]
  list                                   every knob: value, version, last change
  get NAME                               one knob's row
  history NAME [--limit N]               its changes, newest first
  audit [--limit N] [--target NAME]      control-plane actions, newest first
  set NAME VALUE --base V --reason R     promote a value (VALUE is JSON: 8, "sjf", true, {"t1":2})
  rollback NAME --to V --reason R        restore the value of version V as a new version
  pin NAME --reason R | unpin NAME --reason R
  freeze --reason R | unfreeze --reason R   the kill switch for all automation
options: --redis URL, --actor NAME (default: your user name), --json
`;

const COMMANDS = [
  'list',
  'get',
  'history',
  'audit',
  'set',
  'rollback',
  'pin',
  'unpin',
  'freeze',
  'unfreeze',
];

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
  const { values: o, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      redis: { type: 'string' },
      actor: { type: 'string' },
      reason: { type: 'string' },
      base: { type: 'string' },
      to: { type: 'string' },
      limit: { type: 'string' },
      target: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [cmd, name, rawValue] = positionals;
  if (o.help || !cmd) {
    process.stdout.write(USAGE);
    return o.help ? 0 : 2;
  }
  const need = (v: string | undefined, what: string): string => {
    if (v === undefined || v === '')
      throw new Error(`knobs ${cmd}: ${what} is required\n\n${USAGE}`);
    return v;
  };
  const int = (v: string | undefined, what: string): number => {
    const n = Number(need(v, what));
    if (!Number.isInteger(n)) throw new Error(`knobs ${cmd}: ${what} must be an integer, got ${v}`);
    return n;
  };
  // Every check that needs no Redis comes before the connection: an error thrown once it is
  // open must pass the finally below, or the open client keeps the process alive.
  if (!COMMANDS.includes(cmd)) throw new Error(`knobs: unknown command '${cmd}'\n\n${USAGE}`);
  const limit = o.limit === undefined ? 20 : Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`knobs ${cmd}: --limit must be an integer >= 1, got ${o.limit}`);
  if (cmd === 'set') checkDirectKnobChange(need(name, 'NAME'), parseValue(need(rawValue, 'VALUE')));
  const actor = o.actor ?? `cli:${userInfo().username}`;
  const redis = connectCli(o.redis);
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
        const row = await knobs.get(need(name, 'NAME'));
        result = row;
        human = Object.entries(row)
          .map(([k, v]) => `${k.padEnd(11)} ${fmt(v)}`)
          .join('\n');
        break;
      }
      case 'history': {
        const h = await knobs.history(need(name, 'NAME'), { limit });
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
        const a = await knobs.audit({ limit, ...(o.target ? { target: o.target } : {}) });
        result = { audit: a };
        human = a
          .map(
            (e) =>
              `${new Date(e.at).toISOString()}  ${e.action.padEnd(15)} ${e.target.padEnd(30)} ${e.actor}  ${JSON.stringify(e.detail)}`,
          )
          .join('\n');
        break;
      }
      case 'set': {
        const r = await knobs.promote({
          name: need(name, 'NAME'),
          value: parseValue(need(rawValue, 'VALUE')),
          baseVersion: int(o.base, '--base'),
          actor,
          reason: need(o.reason, '--reason'),
        });
        result = r;
        human = `${r.name} = ${fmt(r.value)} (version ${r.version})`;
        break;
      }
      case 'rollback': {
        const r = await knobs.rollback({
          name: need(name, 'NAME'),
          toVersion: int(o.to, '--to'),
          actor,
          reason: need(o.reason, '--reason'),
        });
        result = r;
        human = `${r.name} = ${fmt(r.value)} (version ${r.version}, restored from version ${o.to})`;
        break;
      }
      case 'pin':
      case 'unpin': {
        const n = need(name, 'NAME');
        await knobs[cmd](n, actor, need(o.reason, '--reason'));
        result = { name: n, pinned: cmd === 'pin' };
        human = `${n} ${cmd}ned`;
        break;
      }
      case 'freeze':
      case 'unfreeze': {
        const changed = await knobs[cmd](actor, need(o.reason, '--reason'));
        result = { frozen: cmd === 'freeze', changed };
        human = changed
          ? `automation ${cmd === 'freeze' ? 'frozen' : 'unfrozen'}`
          : `automation was already ${cmd === 'freeze' ? 'frozen' : 'running'}`;
        break;
      }
      default:
        throw new Error(`knobs: unhandled command '${cmd}'`);
    }
    emitResult(human, result as object, o.json);
    return 0;
  } catch (err) {
    if (err instanceof KnobosError) {
      if (o.json)
        process.stdout.write(
          JSON.stringify({ error: { code: err.code, message: err.message, ...err.details } }) +
            '\n',
        );
      else process.stderr.write(`knobos: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    redis.disconnect();
  }
}
