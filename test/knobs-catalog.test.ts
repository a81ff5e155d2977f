import { describe, expect, it } from 'vitest';
import {
  CATALOG,
  findKnob,
  searchSpace,
  validateCatalog,
  validateStep,
  validateValue,
  type KnobSpec,
} from '../knobs/index.ts';

const knob = (name: string): KnobSpec => {
  const k = findKnob(CATALOG, name);
  if (!k) throw new Error(`no knob ${name}`);
  return k;
};

describe('knob catalog', () => {
  it('is consistent: unique names, defaults in their domains', () => {
    expect(validateCatalog(CATALOG)).toEqual([]);
  });

  it('declares the knobs of every service', () => {
    for (const name of [
      'scheduler.policy',
      'scheduler.dispatch_batch',
      'scheduler.lease_ms',
      'scheduler.retry_backoff_ms',
      'scheduler.retry_limit',
      'scheduler.straggler_threshold',
      'scheduler.speculative_execution',
      'scheduler.policy_version',
      'messaging.batch_size',
      'messaging.linger_ms',
      'messaging.partitions',
      'files.chunk_bytes',
      'files.cache_bytes',
      'files.cache_policy',
      'placement.map',
    ]) {
      expect(findKnob(CATALOG, name), name).toBeDefined();
    }
  });

  it('finds a broken catalog', () => {
    const bad = [{ ...knob('scheduler.retry_limit'), default: 99 }, knob('scheduler.retry_limit')];
    const problems = validateCatalog(bad as KnobSpec[]);
    expect(problems.some((p) => p.includes('declared twice'))).toBe(true);
    expect(problems.some((p) => p.includes('must be <= 20'))).toBe(true);
  });
});

describe('validateValue', () => {
  it.each([
    ['scheduler.retry_limit', 21, 'max'],
    ['scheduler.retry_limit', -1, 'min'],
    ['scheduler.retry_limit', 2.5, 'integer'],
    ['scheduler.retry_limit', '3', 'type'],
    ['scheduler.retry_limit', Number.NaN, 'type'],
    ['scheduler.straggler_threshold', 1.0, 'min'],
    ['scheduler.policy', 'round_robin', 'enum'],
    ['scheduler.policy', 3, 'type'],
    ['scheduler.speculative_execution', 'yes', 'type'],
    ['placement.map', { t1: 3 }, 'shard_range'],
    ['placement.map', { t1: 0.5 }, 'type'],
    ['placement.map', [0, 1], 'type'],
    // Names no tenant can have (review: promoted live, every move of the change then failed).
    ['placement.map', { 'tenant a': 1 }, 'name_format'],
    ['placement.map', { 'a{b}': 1 }, 'name_format'],
    ['placement.map', { 'tab\there': 1 }, 'name_format'],
    ['placement.map', { ['x'.repeat(129)]: 1 }, 'name_format'],
  ])('%s = %j breaks rule %s', (name, value, rule) => {
    const v = validateValue(knob(name), value);
    expect(v?.rule).toBe(rule);
    expect(v?.knob).toBe(name);
    expect(v?.message).toContain(name);
  });

  it.each([
    ['scheduler.retry_limit', 0],
    ['scheduler.straggler_threshold', 2.5],
    ['scheduler.policy', 'sjf'],
    ['scheduler.speculative_execution', true],
    ['placement.map', { t1: 2, t2: 0 }],
    ['placement.map', { 'acme.eu-1': 1, 'svc:batch@x_y': 0, ['x'.repeat(128)]: 1 }],
  ])('accepts %s = %j', (name, value) => {
    expect(validateValue(knob(name), value)).toBeNull();
  });
});

describe('validateStep', () => {
  it('enforces the cooldown', () => {
    const k = knob('scheduler.retry_limit');
    expect(validateStep(k, 3, 4, k.safety.cooldownMs - 1)?.rule).toBe('cooldown');
    expect(validateStep(k, 3, 4, k.safety.cooldownMs)).toBeNull();
  });

  it('enforces absolute and ratio steps', () => {
    expect(validateStep(knob('scheduler.retry_limit'), 3, 9, Infinity)?.rule).toBe('max_step');
    expect(validateStep(knob('scheduler.dispatch_batch'), 16, 65, Infinity)?.rule).toBe(
      'max_step_ratio',
    );
    expect(validateStep(knob('scheduler.dispatch_batch'), 16, 64, Infinity)).toBeNull();
    // Through 0 (files.cache_bytes may be 0): 0 counts as 1 byte, so 0 is no shortcut.
    const cache = knob('files.cache_bytes');
    expect(validateStep(cache, 2 ** 26, 0, Infinity)?.rule).toBe('max_step_ratio');
    expect(validateStep(cache, 0, 2 ** 34, Infinity)?.rule).toBe('max_step_ratio');
    expect(validateStep(cache, 0, 4, Infinity)).toBeNull();
    expect(validateStep(cache, 4, 0, Infinity)).toBeNull();
    expect(validateStep(knob('scheduler.dispatch_batch'), 16, 3, Infinity)?.rule).toBe(
      'max_step_ratio',
    );
  });

  it('counts placement moves', () => {
    const k = knob('placement.map');
    expect(validateStep(k, {}, { a: 1, b: 1, c: 2, d: 0 }, Infinity)).toBeNull();
    expect(validateStep(k, {}, { a: 1, b: 1, c: 2, d: 0, e: 1 }, Infinity)?.rule).toBe('max_moves');
  });
});

describe('searchSpace', () => {
  const space = searchSpace([
    knob('scheduler.policy'),
    knob('scheduler.dispatch_batch'),
    knob('scheduler.straggler_threshold'),
    knob('scheduler.speculative_execution'),
  ]);

  it('round-trips values through the unit cube', () => {
    const values = {
      'scheduler.policy': 'srpt',
      'scheduler.dispatch_batch': 64,
      'scheduler.straggler_threshold': 2.5,
      'scheduler.speculative_execution': true,
    };
    const x = space.encode(values);
    expect(x.every((u) => u >= 0 && u <= 1)).toBe(true);
    const back = space.decode(x);
    expect(back['scheduler.policy']).toBe('srpt');
    expect(back['scheduler.dispatch_batch']).toBe(64);
    expect(back['scheduler.straggler_threshold']).toBeCloseTo(2.5, 9);
    expect(back['scheduler.speculative_execution']).toBe(true);
  });

  it('decodes every point of the cube to a valid value', () => {
    for (const u of [0, 0.01, 0.33, 0.5, 0.99, 1]) {
      const v = space.decode([u, u, u, u]);
      for (const k of space.knobs) expect(validateValue(k, v[k.name])).toBeNull();
    }
  });

  it('enumerates a grid: every enum value times numeric levels', () => {
    const g = searchSpace([knob('scheduler.policy'), knob('scheduler.retry_limit')]).grid(3);
    expect(g).toHaveLength(6 * 3);
    expect(new Set(g.map((c) => c['scheduler.retry_limit']))).toEqual(new Set([0, 10, 20]));
  });

  it('refuses placement maps as coordinates', () => {
    expect(() => searchSpace([knob('placement.map')])).toThrow(/placement/);
  });
});
