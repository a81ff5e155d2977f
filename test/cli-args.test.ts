// The command line refuses what it would otherwise drop or misread: extra arguments, flags a
// command or format does not use, required flags missing (checked before any connection), and
// numbers that are not plain decimals or out of range. Each is a usage error: exit 2, a message
// naming the flag (or argument) and its rule, and nothing run or written.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as simCache } from '../cli/commands/sim-cache.ts';
import { stateDir } from '../cli/context.ts';
import { run as simScheduler } from '../cli/commands/sim-scheduler.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { claim, heartbeatWorker } from './helpers/scheduler-harness.ts';
import { runExpCommand } from '../experiments/command.ts';
import { FlagError, parseFlagNumber } from '../experiments/flags.ts';
import { renderMarkdown } from '../experiments/markdown.ts';
import { runExperiment } from '../experiments/runner.ts';
import type { ExperimentSpec } from '../experiments/spec.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-cli-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bin = resolve(import.meta.dirname, '..', 'bin', 'knobos.mjs');

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** `knobos args` in a child process with no Redis to find unless `env` names one. */
function knobos(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000) {
  const base = { ...process.env };
  delete base['REDIS_URL'];
  delete base['KNOBOS_REDIS_CLUSTER'];
  return new Promise<Run>((done) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...base, KNOBOS_HOME: dir, KNOBOS_LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    });
  });
}

/** Captures what an in-process command writes. */
function capture(): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('parseFlagNumber', () => {
  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(FlagError);
      return (e as Error).message;
    }
    return 'no error';
  };

  it('takes plain decimals only, within the rule, and names the flag and the rule', () => {
    const count = { integer: true, min: 0 };
    expect(parseFlagNumber('size', '16', count)).toBe(16);
    for (const raw of [
      '0x10',
      '1e2',
      '',
      ' 3',
      '3 ',
      '+3',
      '-1',
      '-0',
      '1.0',
      '99999999999999999999',
    ])
      expect(
        message(() => parseFlagNumber('size', raw, count)),
        raw,
      ).toBe(`--size must be an integer >= 0 in decimal digits, got '${raw}'`);
    expect(parseFlagNumber('seed', '-3', { integer: true })).toBe(-3);
    const prob = { min: 0, below: 1 };
    expect(parseFlagNumber('p', '0.25', prob)).toBe(0.25);
    expect(parseFlagNumber('p', '.5', prob)).toBe(0.5);
    for (const raw of ['1', '5', '1e-1', '0x0', '-0.1', '.'])
      expect(
        message(() => parseFlagNumber('p', raw, prob)),
        raw,
      ).toBe(`--p must be a decimal number in [0, 1), got '${raw}'`);
    expect(
      message(() => parseFlagNumber('seeds', '1000', { integer: true, min: 1, max: 100 })),
    ).toBe(`--seeds must be an integer in 1..100 in decimal digits, got '1000'`);
  });
});

describe('knobos (no command)', () => {
  it('prints its usage on stderr and exits 2; on stdout with --help', async () => {
    const [none, help] = await Promise.all([knobos([]), knobos(['--help'])]);
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toContain('usage: knobos <command>');
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: knobos <command>');
  }, 60_000);
});

describe('knobos start and serve with bad flags', () => {
  it('exit 2 with a usage error (code usage under --json) before starting anything', async () => {
    const cases: [string[], string][] = [
      [['start', '--bogus', '--json'], "Unknown option '--bogus'"],
      [['start', '--redis', 'redis://a', '--redis', 'redis://b'], '--redis given twice'],
      [['serve', '--redis', 'redis://a', '--redis', 'redis://b'], '--redis given twice'],
    ];
    const runs = await Promise.all(cases.map(([a]) => knobos(a)));
    runs.forEach((r, i) => {
      const what = cases[i]![0].join(' ');
      expect(r.code, what).toBe(2);
      expect(r.err, what).toContain(cases[i]![1]);
    });
    const json = JSON.parse(runs[0]!.out.trimEnd().split('\n').at(-1)!) as {
      error: { code: string; message: string };
    };
    expect(json.error).toMatchObject({ code: 'usage', message: "Unknown option '--bogus'" });
  }, 60_000);

  it('answer --help with their usage and exit 0, starting nothing', async () => {
    // Both refused --help as an unknown option (exit 2).
    const [start, serve] = await Promise.all([
      knobos(['start', '--help']),
      knobos(['serve', '-h']),
    ]);
    expect(start.code).toBe(0);
    expect(start.out).toContain('usage: knobos start [--redis URL] [--exit-after-start]');
    expect(serve.code).toBe(0);
    expect(serve.out).toContain('usage: knobos serve [--redis URL]');
  }, 60_000);
});

describe('knobos knobs without a Redis', () => {
  it('refuses bad arguments before it looks for a Redis', async () => {
    // No REDIS_URL, no embedded Redis: a check made after the lookup says "no Redis to talk to".
    const cases: [string[], string][] = [
      [['set', 'scheduler.policy', 'sjf'], 'knobs set: --reason is required'],
      [['set', 'scheduler.policy', 'sjf', '--reason', 'x'], 'knobs set: --base is required'],
      [
        ['set', 'scheduler.policy', 'sjf', '--base', 'abc', '--reason', 'x'],
        "--base must be an integer >= 1 in decimal digits, got 'abc'",
      ],
      [['set', 'scheduler.policy', '--base', '1', '--reason', 'x'], 'knobs set: VALUE is required'],
      [['get'], 'knobs get: NAME is required'],
      [['history'], 'knobs history: NAME is required'],
      [['pin'], 'knobs pin: NAME is required'],
      [['pin', 'scheduler.policy'], 'knobs pin: --reason is required'],
      [['unpin', 'scheduler.policy', '--reason='], 'knobs unpin: --reason must not be empty'],
      [['rollback', 'scheduler.policy', '--reason', 'x'], 'knobs rollback: --to is required'],
      [['freeze'], 'knobs freeze: --reason is required'],
      [['freeze', '--reason', 'try', 'it'], 'knobs freeze: unexpected arguments: it'],
      [['unfreeze', '--reason', 'x', 'extra'], 'knobs unfreeze: unexpected arguments: extra'],
      [['list', 'extra', 'junk'], 'knobs list: unexpected arguments: extra junk'],
      [['get', 'a', 'b'], 'knobs get: unexpected arguments: b'],
      [['list', '--reason', 'x'], '--reason applies only to knobs set, rollback, pin, unpin'],
      [['freeze', '--reason', 'x', '--base', '1'], '--base applies only to knobs set'],
      [['audit', '--limit', '0x2'], "--limit must be an integer >= 1 in decimal digits, got '0x2'"],
      [['audit', '--nosuch'], "Unknown option '--nosuch'"],
      [
        ['set', 'scheduler.policy', 'sjf', '--base', '7', '--base', '3', '--reason', 'r'],
        '--base given twice: give it once',
      ],
    ];
    const runs = await Promise.all(cases.map(([a]) => knobos(['knobs', ...a])));
    runs.forEach((r, i) => {
      const what = cases[i]![0].join(' ');
      expect(r.err, what).toContain(cases[i]![1]);
      expect(r.err, what).not.toContain('no Redis');
      expect(r.code, what).toBe(2);
      expect(r.out, what).toBe('');
    });
  }, 120_000);
});

describe('knobos tasks without a Redis', () => {
  it('refuses bad arguments before it looks for a Redis', async () => {
    const cases: [string[], string][] = [
      [['get'], 'tasks get: ID is required'],
      [['cancel', 't1'], 'tasks cancel: --reason is required'],
      [['cancel', 't1', '--reason='], 'tasks cancel: --reason must not be empty'],
      [['list'], 'tasks list: --state is required'],
      [
        ['list', '--state', 'gone'],
        "--state must be one of runnable, delayed, leased, done, dead, cancelled, got 'gone'",
      ],
      [['list', '--state', 'done', '--limit', '501'], '--limit must be an integer in 1..500'],
      [['get', 't1', '--reason', 'x'], '--reason applies only to tasks cancel'],
      [['get', 'a', 'b'], 'tasks get: unexpected arguments: b'],
      [['kill', 'a'], "tasks: unknown command 'kill'"],
      [['list', '--state', 'done', '--shard', 'a}b'], "--shard 'a}b' must be 1-200 characters"],
      [['get', 'a b'], 'tasks get: ID must be 1-128 letters'],
      [['list', '--state', 'done', '--tenant', 'x/y'], '--tenant must be 1-128 letters'],
      [['cancel', 't1', '--reason', 'r'.repeat(501)], 'reason must be at most 500 characters'],
      [['--json'], 'tasks: a command is required'],
    ];
    const runs = await Promise.all(cases.map(([a]) => knobos(['tasks', ...a])));
    runs.forEach((r, i) => {
      const what = cases[i]![0].join(' ');
      expect(r.err, what).toContain(cases[i]![1]);
      expect(r.err, what).not.toContain('no Redis');
      expect(r.code, what).toBe(2);
    });
    // With --json, a usage error is the last stdout line too (knobs as tasks).
    for (const group of ['tasks', 'knobs']) {
      const r = await knobos([group, '--json']);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.out.trimEnd().split('\n').at(-1)!)).toMatchObject({
        error: { message: `${group}: a command is required` },
      });
    }
  }, 120_000);
});

describe('knobos tasks on a Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  }, 60_000);
  afterAll(async () => {
    await redis.stop();
  });

  it("gets, lists and cancels a shard's tasks, and refuses an ended one", async () => {
    const keys = uniqueKeys();
    // The first shard `knobos start` runs on one Redis: the default.
    const shard = new SchedShard(redis.client(), keys, 's0');
    const client = new SchedulerClient({ shard });
    await client.submitMany([
      { id: 'c1', type: 'x', tenant: 'acme' },
      { id: 'c2', type: 'x', tenant: 'globex' },
      { id: 'c3', type: 'x', tenant: 'acme', parents: ['c1'] },
    ]);
    const env = { KNOBOS_PREFIX: keys.prefix };
    const url = ['--redis', (redis.target as { url: string }).url];
    const last = (r: Run) =>
      JSON.parse(r.out.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;

    const cancel = await knobos(
      ['tasks', 'cancel', 'c1', '--reason', 'not needed', '--actor', 'ops', '--json', ...url],
      env,
    );
    expect(cancel.code, cancel.err).toBe(0);
    expect(last(cancel)).toEqual({ id: 'c1', changed: true, dependents: 1 });
    expect((await client.mustGet('c1')).error).toBe('cancelled by ops: not needed');
    expect((await client.mustGet('c3')).state).toBe('upstream_failed');

    const listed = await knobos(
      ['tasks', 'list', '--state', 'runnable', '--tenant', 'globex', '--json', ...url],
      env,
    );
    expect(listed.code, listed.err).toBe(0);
    expect((last(listed)['tasks'] as { id: string }[]).map((t) => t.id)).toEqual(['c2']);
    const cancelled = await knobos(['tasks', 'list', '--state', 'cancelled', ...url], env);
    expect(cancelled.out).toContain('c1  x  acme');
    expect(cancelled.out).toContain('cancelled by ops: not needed');

    const got = await knobos(['tasks', 'get', 'c1', ...url], env);
    expect(got.code, got.err).toBe(0);
    expect(got.out).toMatch(/^state\s+cancelled$/m);
    expect(got.out).toMatch(/^finished_at\s+\d{4}-\d\d-\d\dT/m);

    const again = await knobos(['tasks', 'cancel', 'c3', '--reason', 'x', '--json', ...url], env);
    expect(again.code).toBe(1);
    expect(last(again)).toMatchObject({
      error: { code: 'KNOBOS_STATE', state: 'upstream_failed' },
    });
    const missing = await knobos(['tasks', 'get', 'nope', ...url], env);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('task nope does not exist in shard s0');
    expect(missing.err).not.toContain('holds no tasks');
    // A shard nothing was written under is named as such, with the shards start would run.
    const empty = await knobos(['tasks', 'list', '--state', 'done', '--shard', '0', ...url], env);
    expect(empty.code, empty.err).toBe(0);
    expect(empty.err).toContain(
      'shard 0 holds no tasks or workers (the shards knobos start runs here: s0, s1, s2)',
    );
    // A shard whose only task waits out a retry's backoff (its worker gone) is not empty.
    const s1 = new SchedShard(redis.client(), keys, 's1');
    await new SchedulerClient({ shard: s1 }).submit({ id: 'd1', type: 'x' });
    const now = Date.now();
    await heartbeatWorker(s1, 'w1', now);
    const token = await claim(s1, 'd1', 'w1', now);
    await s1.settle(
      [{ taskId: 'd1', token, outcome: 'fail', detail: 'boom', retryLimit: 3, backoffMs: 600_000 }],
      { durationsKept: 10, usageBucketMs: 1_000, usageTtlMs: 60_000, jobTtlMs: 0 },
      now,
    );
    await s1.deregister('w1', now);
    const delayed = await knobos(
      ['tasks', 'list', '--state', 'delayed', '--shard', 's1', ...url],
      env,
    );
    expect(delayed.out).toContain('d1  x  default');
    expect(delayed.err).not.toContain('holds no tasks');

    // A whole job (`cancel-job`): its open tasks, as the API cancels them.
    await client.submit({ id: 'g1', type: 'x', tenant: 'globex', jobId: 'jg' });
    const job = await knobos(
      ['tasks', 'cancel-job', 'jg', '--reason', 'gone', '--actor', 'ops', '--json', ...url],
      env,
    );
    expect(job.code, job.err).toBe(0);
    expect(last(job)).toEqual({ job: 'jg', cancelled: ['g1'], dependents: 0, ended: 0 });
    expect((await client.mustGet('g1')).cancelled_by).toBe('ops');
  }, 120_000);
});

describe('knobos knobs on a Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  }, 60_000);
  afterAll(async () => {
    await redis.stop();
  });

  it('writes nothing when a command has more arguments than it takes', async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed('test');
    const env = { KNOBOS_PREFIX: keys.prefix };
    const url = ['--redis', (redis.target as { url: string }).url];
    const before = await table.audit({ limit: 1000 });
    const extra: [string[], string][] = [
      [['freeze', '--reason', 'try', 'it'], 'unexpected arguments: it'],
      [['set', 'scheduler.policy', 'sjf', 'EXTRA', '--base', '1', '--reason', 'x'], 'EXTRA'],
      [['pin', 'scheduler.policy', 'now', '--reason', 'x'], 'unexpected arguments: now'],
      [['rollback', 'scheduler.policy', '1', '--to', '1', '--reason', 'x'], 'arguments: 1'],
    ];
    for (const [a, want] of extra) {
      const r = await knobos(['knobs', ...a, ...url], env);
      expect(r.err, a.join(' ')).toContain(want);
      expect(r.code, a.join(' ')).toBe(2);
    }
    expect(await table.frozen()).toBeNull();
    const row = await table.get('scheduler.policy');
    expect([row.version, row.pinned]).toEqual([1, false]);
    expect(await table.audit({ limit: 1000 })).toEqual(before);
    // The same command, well formed, does write: the checks above ran against this table.
    const ok = await knobos(
      ['knobs', 'set', 'scheduler.policy', 'sjf', '--base', '1', '--reason', 'x', '--json', ...url],
      env,
    );
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out.trimEnd().split('\n').at(-1)!)).toMatchObject({ version: 2 });
    expect((await table.get('scheduler.policy')).value).toBe('sjf');
  }, 120_000);

  it('rolls a registry-owned knob back only to 0, as the API does', async () => {
    const keys = uniqueKeys();
    // Two hours back, so the second change is past the knob's cooldown.
    const clock = new ManualClock(Date.now() - 7_200_000);
    const table = new KnobTable(redis.client(), { keys, clock });
    await table.seed('test');
    const env = { KNOBOS_PREFIX: keys.prefix };
    const url = ['--redis', (redis.target as { url: string }).url];
    // Version 7 of the registry's policy went live (as the registry promotes), then 0.
    const knob = 'scheduler.policy_version';
    await table.promote({ name: knob, value: 7, baseVersion: 1, actor: 'registry', reason: 'x' });
    clock.advance(3_600_000);
    await table.promote({ name: knob, value: 0, baseVersion: 2, actor: 'op', reason: 'x' });
    const r = await knobos(['knobs', 'rollback', knob, '--to', '2', '--reason', 'x', ...url], env);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/registry/);
    expect((await table.get(knob)).value).toBe(0);
  }, 60_000);

  it("finds the running node's Redis from a subdirectory of where it was started", async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed('test');
    const root = mkdtempSync(join(tmpdir(), 'knobos-cli-root-'));
    const sub = join(root, 'a', 'b');
    mkdirSync(join(root, '.knobos'), { recursive: true });
    mkdirSync(sub, { recursive: true });
    // As `npm start` writes it: the URL and the pid serving it (this live process here).
    const url = (redis.target as { url: string }).url;
    writeFileSync(join(root, '.knobos', 'redis.json'), JSON.stringify({ url, pid: process.pid }));
    const env: NodeJS.ProcessEnv = { ...process.env, KNOBOS_PREFIX: keys.prefix };
    for (const k of ['REDIS_URL', 'KNOBOS_REDIS_CLUSTER', 'KNOBOS_HOME']) delete env[k];
    const r = await new Promise<Run>((done) => {
      const child = spawn(process.execPath, [bin, 'knobs', 'get', 'scheduler.policy', '--json'], {
        cwd: sub,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let [out, err] = ['', ''];
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => done({ code, out, err }));
    });
    rmSync(root, { recursive: true, force: true });
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').at(-1) as string)).toMatchObject({
      name: 'scheduler.policy',
      value: 'fifo',
    });
  }, 60_000);

  it('trusts only a live node file of this user in a parent, and never starts in a parent', async () => {
    const root = mkdtempSync(join(tmpdir(), 'knobos-cli-walk-'));
    const sub = join(root, 'p', 'q');
    mkdirSync(sub, { recursive: true });
    const file = join(root, '.knobos', 'redis.json');
    mkdirSync(join(root, '.knobos'));
    const here = join(sub, '.knobos');
    try {
      writeFileSync(file, JSON.stringify({ url: 'redis://127.0.0.1:1', pid: 2 ** 22 + 1 }));
      expect(stateDir(sub, undefined)).toBe(here); // a dead node's file
      writeFileSync(file, JSON.stringify({ url: 'redis://127.0.0.1:1', pid: process.pid }));
      expect(stateDir(sub, undefined)).toBe(join(root, '.knobos'));
      chmodSync(file, 0o666); // writable by others: anyone could point the CLI elsewhere
      expect(stateDir(sub, undefined)).toBe(here);
      chmodSync(file, 0o644);
      expect(stateDir(sub, '/elsewhere')).toBe('/elsewhere');
      // `knobos start` keeps its data where it runs, whatever a parent holds.
      const r = await new Promise<Run>((done) => {
        const env: NodeJS.ProcessEnv = { ...process.env };
        delete env['KNOBOS_HOME'];
        const child = spawn(
          process.execPath,
          [
            '--import',
            pathToFileURL(
              resolve(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs'),
            ).href,
            '--input-type=module',
            '-e',
            `import { HOME_DIR, STATE_DIR } from ${JSON.stringify(resolve(import.meta.dirname, '..', 'cli', 'context.ts'))}; console.log(JSON.stringify({ HOME_DIR, STATE_DIR }));`,
          ],
          { cwd: sub, env, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let [out, err] = ['', ''];
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => done({ code, out, err }));
      });
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out)).toEqual({ HOME_DIR: here, STATE_DIR: join(root, '.knobos') });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('says an unpin changed nothing, and refuses a second pin naming who pinned', async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed('test');
    const env = { KNOBOS_PREFIX: keys.prefix };
    const url = ['--redis', (redis.target as { url: string }).url];
    const knob = 'scheduler.retry_limit';
    const run = (cmd: string, reason = 'x') =>
      knobos(['knobs', cmd, knob, '--reason', reason, ...url], env);
    const got = await knobos(['knobs', 'get', knob, ...url], env);
    expect(got.out).toMatch(/^updatedAt +\d{4}-\d\d-\d\dT[\d:.]+Z$/m); // as history prints times
    const noop = await run('unpin');
    expect(noop.code, noop.err).toBe(0);
    expect(noop.out).toMatch(/was not pinned/);
    expect((await run('pin')).code).toBe(0);
    const again = await run('pin', 'another incident');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already pinned by/);
  }, 60_000);

  it('pages the audit of one target: a full page ends with the cursor of the next, the last with none', async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed('test');
    const env = { KNOBOS_PREFIX: keys.prefix };
    const url = ['--redis', (redis.target as { url: string }).url];
    const knob = 'scheduler.policy';
    await table.promote({ name: knob, value: 'sjf', baseVersion: 1, actor: 'op', reason: 'x' });
    const page = async (...more: string[]) => {
      const r = await knobos(
        ['knobs', 'audit', '--target', knob, '--limit', '1', '--json', ...more, ...url],
        env,
      );
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out.trimEnd().split('\n').at(-1)!) as {
        audit: { action: string; target: string }[];
        next: string | null;
      };
    };
    const first = await page();
    expect(first.audit.map((e) => [e.action, e.target])).toEqual([['knob.promote', knob]]);
    expect(first.next).toMatch(/^\d+-\d+:knobs$/);
    const second = await page('--before', first.next!);
    expect(second.audit.map((e) => [e.action, e.target])).toEqual([['knob.seed', knob]]);
    // The last page, though full: no cursor (it led to an empty page).
    expect(second.next).toBeNull();
    const bad = await knobos(['knobs', 'audit', '--before', 'yesterday', ...url], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--before must be a cursor '<ms>-<seq>:knobs'");
  }, 60_000);
});

describe('knobos sim scheduler', () => {
  const jobs = join(dir, 'jobs.csv');
  writeFileSync(jobs, 'arrival_s,duration_s,cpu\n0,1,1\n1,2,1\n2,1,1\n');
  const base = ['--trace', jobs, '--format', 'jobs-csv', '--policy', 'fifo'];

  it('refuses a flag that does not apply to the format, naming the formats it applies to', async () => {
    const { out, err } = capture();
    const cases: [string[], string][] = [
      [['--jobs', 'abc'], '--jobs applies only to --format tpch'],
      [['--tenants', '2'], '--tenants applies only to --format tpch'],
      [['--durations', jobs], '--durations applies only to --format tpch'],
      [['--nodes', jobs], '--nodes applies only to --format alibaba-gpu'],
      [['--straggler-threshold', '2'], '--straggler-threshold applies only with --speculative'],
    ];
    for (const [a, want] of cases) {
      err.length = 0;
      expect(await simScheduler([...base, ...a]), a.join(' ')).toBe(2);
      expect(err.join(''), a.join(' ')).toContain(want);
    }
    for (const flag of ['--worker-cpu', '--worker-mem', '--worker-gpu']) {
      err.length = 0;
      const argv = ['--trace', jobs, '--format', 'alibaba-gpu', '--policy', 'fifo', flag, '1'];
      expect(await simScheduler(argv), flag).toBe(2);
      expect(err.join('')).toContain(`${flag} applies only to --format tpch, jobs-csv`);
    }
    expect(out.join('')).toBe('');
  });

  it('takes numbers as plain decimals in their range, probabilities in [0, 1)', async () => {
    const { out, err } = capture();
    const cases: [string[], string][] = [
      [['--seed', '0x1f'], "--seed must be an integer in decimal digits, got '0x1f'"],
      [['--failure-prob', '5'], "--failure-prob must be a decimal number in [0, 1), got '5'"],
      [['--failure-prob', '1'], '--failure-prob must be a decimal number in [0, 1)'],
      [['--straggler-prob', '1.5'], '--straggler-prob must be a decimal number in [0, 1]'],
      [['--workers', '1e1'], '--workers must be an integer >= 1 in decimal digits'],
      [['--load', '0x1'], '--load must be a decimal number > 0'],
      [['--retry-limit='], "--retry-limit must be an integer >= 0 in decimal digits, got ''"],
    ];
    for (const [a, want] of cases) {
      err.length = 0;
      expect(await simScheduler([...base, ...a]), a.join(' ')).toBe(2);
      expect(err.join(''), a.join(' ')).toContain(want);
    }
    expect(out.join('')).toBe('');
    // In range, it runs.
    expect(await simScheduler([...base, '--seed=-3', '--failure-prob', '0.5', '--json'])).toBe(0);
    expect(JSON.parse(out.join('').trimEnd().split('\n').at(-1)!)).toMatchObject({ seed: -3 });
  });
});

describe('knobos sim cache', () => {
  it('takes --size in decimal digits only', async () => {
    const trace = join(dir, 'keys.txt');
    writeFileSync(trace, 'a\nb\na\nc\n');
    const { out, err } = capture();
    for (const size of ['0x10', '1e2', '', '-1', '2.5']) {
      err.length = 0;
      expect(await simCache(['--trace', trace, '--policy', 'lru', `--size=${size}`]), size).toBe(2);
      expect(err.join('')).toContain(
        `--size must be an integer >= 0 in decimal digits, got '${size}'`,
      );
    }
    expect(out.join('')).toBe('');
    expect(await simCache(['--trace', trace, '--policy', 'lru', '--size', '16', '--json'])).toBe(0);
    expect(JSON.parse(out.join('').trimEnd().split('\n').at(-1)!)).toMatchObject({ size: 16 });
  });

  it('refuses a flag given twice (the last one won, the first was dropped without a word)', async () => {
    const trace = join(dir, 'keys-twice.txt');
    writeFileSync(trace, 'a\nb\na\nc\n');
    const { out, err } = capture();
    const twice = ['--trace', trace, '--policy', 'lru', '--size', '100', '--size', '1', '--json'];
    expect(await simCache(twice)).toBe(2);
    expect(JSON.parse(out.join('').trimEnd().split('\n').at(-1)!)).toMatchObject({
      error: { message: expect.stringContaining('--size given twice') },
    });
    expect(err.join('') + out.join('')).not.toContain('"size":1');
  });
});

describe('knobos exp', () => {
  it('refuses --budget for an experiment that tunes nothing, and out-of-range counts, with 2', async () => {
    const { err } = capture();
    const out = join(dir, 'never');
    const cases: [string[], string][] = [
      [
        ['placement', '--budget', '3'],
        '--budget applies only to an experiment with a tuning study',
      ],
      [
        ['cache', '--seeds', '1000'],
        "--seeds must be an integer in 1..100 in decimal digits, got '1000'",
      ],
      [['cache', '--budget', '99999'], '--budget must be an integer in 1..10000'],
      [
        ['cache', '--trace', join(dir, 'x.csv'), '--format', 'nosuch'],
        '--format for a cache trace',
      ],
    ];
    for (const [a, want] of cases) {
      err.length = 0;
      expect(await runExpCommand([...a, '--quick', '--out', out]), a.join(' ')).toBe(2);
      expect(err.join(''), a.join(' ')).toContain(want);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('says nothing of a tuner budget in result.md where no tuner ran', async () => {
    const spec: ExperimentSpec<null> = {
      name: 'untuned',
      title: 'untuned',
      workload: { kind: 'generated', description: 'none', load: () => null },
      defaults: { seeds: 1, budget: 7 },
      quick: { seeds: 1, budget: 7 },
      studies: [
        {
          type: 'comparison',
          name: 'c',
          title: 'c',
          metric: 'x',
          direction: 'min',
          entries: [{ name: 'one', kind: 'baseline', run: () => ({ x: 1 }) }],
          comparisons: [],
        },
      ],
    };
    const md = renderMarkdown(await runExperiment(spec), new Map(), 'cmd');
    expect(md).toContain('Seeds 1. Produced by `cmd`');
    expect(md).not.toContain('budget');
  });
});

describe('--json on failure', () => {
  const lastJson = (out: string): unknown => JSON.parse(out.trimEnd().split('\n').pop() ?? '');

  it('ends stdout with { error } for a usage error and for a failed command', async () => {
    const unknown = await knobos(['nosuch', '--json']);
    expect(unknown.code).toBe(2);
    expect(lastJson(unknown.out)).toEqual({
      error: { code: 'usage', message: "unknown command 'nosuch'" },
    });
    const exp = await knobos(['exp', 'cache', '--seeds', '0', '--json']);
    expect(exp.code).toBe(2);
    expect(lastJson(exp.out)).toMatchObject({
      error: { code: 'usage', message: expect.stringContaining('--seeds') },
    });
    // No Redis at this address: the command fails after its arguments were accepted.
    const down = await knobos(['knobs', 'list', '--redis', 'redis://127.0.0.1:1', '--json']);
    expect(down.code).toBe(1);
    expect(lastJson(down.out)).toMatchObject({ error: { message: expect.any(String) } });
  });

  it('ends stdout with { error } for the knobs and sim commands usage errors too', async () => {
    // Before, these printed their usage on stderr and nothing on stdout.
    for (const [argv, flag] of [
      [['knobs', 'set', 'scheduler.policy', '--base', '1', '--reason', 'x', '--json'], 'VALUE'],
      [['knobs', 'list', '--bogus', '--json'], 'bogus'],
      [['sim', 'cache', '--json'], '--trace'],
      [['sim', 'scheduler', '--json', '--bogus'], 'bogus'],
    ] as const) {
      const r = await knobos([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(lastJson(r.out), argv.join(' ')).toMatchObject({
        error: { code: 'usage', message: expect.stringContaining(flag) },
      });
    }
    const missing = await knobos([
      'sim',
      'cache',
      '--trace',
      join(dir, 'nope.csv'),
      '--policy',
      'lru',
      '--size',
      '4',
      '--json',
    ]);
    expect(missing.code).toBe(1);
    expect(lastJson(missing.out)).toMatchObject({
      error: { message: expect.stringContaining('nope.csv') },
    });
  });

  it('ends a benchmark that dies of an uncaught error with { error }', async () => {
    const script = join(dir, 'dies.mts');
    const report = resolve(import.meta.dirname, '..', 'experiments', 'report.ts');
    writeFileSync(
      script,
      `import { wantsJson } from ${JSON.stringify(report)};\n` +
        `wantsJson(['node', 'bench', '--json']);\n` +
        `process.stdout.write('a progress line\\n');\n` +
        `await new Promise((r) => setTimeout(r, 5));\n` +
        `throw Object.assign(new Error('lost work'), { code: 'E_LOST', details: { phase: 2 } });\n`,
    );
    const tsx = resolve(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const r = await new Promise<Run>((done) => {
      const child = spawn(process.execPath, [tsx, script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => done({ code, out, err }));
    });
    expect(r.code).toBe(1);
    expect(r.out.startsWith('a progress line\n')).toBe(true);
    expect(lastJson(r.out)).toEqual({ error: { phase: 2, code: 'E_LOST', message: 'lost work' } });
  });
});
