// The scheduler's pure parts, without Redis: key prefixes the scripts append ids to, checks of
// submitted tasks, critical paths, the per-worker cap on the policy's assignments, inbox
// entries, and row decoding.
import { describe, expect, it } from 'vitest';
import { capAssignments } from '../controlplane/scheduler/dispatcher.ts';
import { SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import { parseInboxEntry } from '../controlplane/scheduler/inbox.ts';
import { PREFIX_NAMES, SchedKeys } from '../controlplane/scheduler/keys.ts';
import { decodeTaskRow } from '../controlplane/scheduler/schema.ts';
import { encodeTask, normalizeBatch } from '../controlplane/scheduler/tasks.ts';
import { Keys } from '../controlplane/store/keys.ts';

const limits = { payloadBytesMax: 1024 };
const ids = () => {
  let n = 0;
  return () => `gen${n++}`;
};

describe('scheduler keys', () => {
  it('gives scripts prefixes that build exactly the keys the key module builds', () => {
    const k = new SchedKeys(new Keys('p'), 'eu');
    const p = k.prefixes();
    expect(p).toHaveLength(PREFIX_NAMES.length);
    expect(p[0] + 't1').toBe(k.task('t1'));
    expect(p[1] + 't1').toBe(k.children('t1'));
    expect(p[2] + 'j1').toBe(k.job('j1'));
    expect(p[3] + 'w1').toBe(k.worker('w1'));
    expect(p[4] + 'w1').toBe(k.inbox('w1'));
    expect(p[5] + 'map').toBe(k.durations('map'));
    expect(p[6] + '1000').toBe(k.usage(1000));
    expect(p[7] + 't1').toBe(k.deadRow('t1'));
    // One hash tag for every key of the shard: one cluster slot.
    for (const key of [...k.shardKeys(), ...p]) expect(key).toContain('{sched:eu}');
  });

  it('refuses a shard name that would break the hash tag', () => {
    expect(() => new SchedKeys(new Keys('p'), 'a}b')).toThrow(/shard/);
  });
});

describe('submitted tasks', () => {
  it('fills defaults and computes critical paths from the batch estimates', () => {
    const [a, b, c] = normalizeBatch(
      [
        { id: 'a', type: 'x', estimateMs: 10 },
        { id: 'b', type: 'x', estimateMs: 30, parents: ['a'] },
        { id: 'c', type: 'x', estimateMs: 5, parents: ['a'] },
      ],
      ids(),
      limits,
    );
    expect(a).toMatchObject({ stage: 'x', tenant: 'default', jobId: 'a', cpuMilli: 1000 });
    expect(a!.criticalPathMs).toBe(40);
    expect(b!.criticalPathMs).toBe(30);
    expect(c!.criticalPathMs).toBe(5);
  });

  it('names the task, the field and the rule of bad input', () => {
    const bad = (spec: object) => {
      try {
        normalizeBatch([spec as never], ids(), limits);
      } catch (err) {
        return err as SchedulerInputError;
      }
      throw new Error('no error');
    };
    expect(bad({ type: 'x', demand: { cpu: -1 } })).toMatchObject({
      field: 'demand.cpu',
      rule: 'min',
    });
    expect(bad({ type: 'x', demand: { gpu: 1.5 } })).toMatchObject({
      field: 'demand.gpu',
      rule: 'integer',
    });
    expect(bad({ type: 'x y' })).toMatchObject({ field: 'type', rule: 'name' });
    expect(bad({ type: 'x', payload: 'y'.repeat(2000) })).toMatchObject({ rule: 'max_bytes' });
    expect(bad({ type: 'x', idempotencyKey: 'a\tb' })).toMatchObject({ field: 'idempotencyKey' });
    expect(bad({ type: 'x', demand: { gpuModels: 'abc' } })).toMatchObject({
      field: 'demand.gpuModels',
      rule: 'type',
    });
    expect(bad({ type: 'x', payload: () => 1 })).toMatchObject({ field: 'payload', rule: 'json' });
    // One id twice in a batch: which task a parent or an idempotency match means is ambiguous.
    expect(() =>
      normalizeBatch(
        [
          { id: 'a', type: 'x', idempotencyKey: 'k' },
          { id: 'a', type: 'x', idempotencyKey: 'other' },
        ],
        ids(),
        limits,
      ),
    ).toThrow(expect.objectContaining({ field: 'id', rule: 'unique' }));
    expect(() =>
      normalizeBatch(
        [
          { id: 'child', type: 'x', parents: ['parent'] },
          { id: 'parent', type: 'x' },
        ],
        ids(),
        limits,
      ),
    ).toThrow(/parent parent must come earlier/);
  });

  it('packs a task as a tab-separated head, then its attrs block and payload cut by byte length', () => {
    const [t] = normalizeBatch(
      [{ id: 'a', type: 'x', payload: { s: 'tab\there', u: 'é€' } }],
      ids(),
      limits,
    );
    // id, idempotency key, parents, job, tenant, estimate, the byte lengths of the attrs
    // block and of the payload, then both blocks back to back.
    const entry = encodeTask(t!);
    const head = entry.split('\t').slice(0, 8);
    const attrsBytes = Number(head[6]);
    const payloadBytes = Number(head[7]);
    const blocks = Buffer.from(entry.slice(head.join('\t').length + 1));
    expect(blocks.length).toBe(attrsBytes + payloadBytes);
    const attrs = blocks.subarray(0, attrsBytes).toString().split('\t');
    expect(attrs).toHaveLength(12);
    expect(attrs[0]).toBe('x');
    // Lengths count bytes, not characters: the non-ASCII payload is cut where it ends.
    expect(JSON.parse(blocks.subarray(attrsBytes).toString())).toEqual({ s: 'tab\there', u: 'é€' });
  });
});

describe('dispatch', () => {
  const worker = (id: string, freeSlots: number) => ({
    view: { id, free: { cpu: 8, memMb: 0, gpu: 0 }, capacity: { cpu: 8, memMb: 0, gpu: 0 } },
    freeSlots,
  });

  it('keeps the policy order within each worker slots and the batch size', () => {
    const picked = ['a', 'b', 'c', 'd', 'e'].map((t, i) => ({
      taskId: t,
      workerId: i < 3 ? 'w1' : 'w2',
    }));
    const ready = new Map([['a', { readyAt: 5 }]]);
    const out = capAssignments(picked, [worker('w1', 2), worker('w2', 5)], 3, ready);
    expect(out.map((a) => a.taskId)).toEqual(['a', 'b', 'd']);
    expect(out[0]!.readyAt).toBe(5);
  });

  it("keeps a task's first assignment only (claims are sent grouped by worker)", () => {
    const picked = [
      { taskId: 'b', workerId: 'w1' },
      { taskId: 'a', workerId: 'w2' },
      { taskId: 'a', workerId: 'w1' },
    ];
    const out = capAssignments(picked, [worker('w1', 2), worker('w2', 2)], 10, new Map());
    expect(out.map((a) => `${a.taskId}@${a.workerId}`)).toEqual(['b@w1', 'a@w2']);
  });
});

describe('inbox entries', () => {
  it('reads run and cancel entries; a tab inside the payload is fine', () => {
    expect(parseInboxEntry('7\tt1\tjob\t2\t30000\t3\t1000\t{"a":"x\\ty"}')).toEqual({
      kind: 'run',
      task: {
        token: '7',
        id: 't1',
        type: 'job',
        attempt: 2,
        leaseMs: 30_000,
        retryLimit: 3,
        backoffMs: 1000,
        payload: { a: 'x\ty' },
      },
    });
    expect(parseInboxEntry('!7\tt1')).toEqual({ kind: 'cancel', token: '7', id: 't1' });
    expect(parseInboxEntry('7\tt1\tjob')).toBeNull();
  });
});

describe('task rows', () => {
  it('unpacks attrs and leases into typed fields', () => {
    const row = decodeTaskRow('t1', {
      attrs: 'job\tmap\tacme\tj1\t5\t500\t64\t1\t250\tA100\t40\t90\t1000\t2',
      payload: 'null',
      state: 'done',
      attempts: 2,
      lease: '9\tw1\t1100\t0\t3',
      finished_at: 1150,
    });
    expect(row).toMatchObject({
      id: 't1',
      type: 'job',
      stage: 'map',
      tenant: 'acme',
      job: 'j1',
      priority: 5,
      cpu_m: 500,
      mem_mb: 64,
      gpu: 1,
      gpu_milli: 250,
      gpu_models: 'A100',
      estimate_ms: 40,
      critical_ms: 90,
      submitted_at: 1000,
      depth: 2,
      lease: '9',
      worker: 'w1',
      leased_at: 1100,
      gpus: '0',
      duration_ms: 50,
      pending: 0,
      attempts: 2,
      result: 'null',
    });
  });
});
