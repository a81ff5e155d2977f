// A learned scorer with finite but huge weights passes registration (each weight is finite),
// then scores NaN on the first task: an evaluation answered a plain Error (500 internal). The
// policy's failure to decide is the artifact's: a typed 422 (rule `decides`), the row untouched.
import { describe, expect, it } from 'vitest';
import { RegistryUnsupportedError } from '../controlplane/registry/errors.ts';
import { TASK_FEATURE_NAMES } from '../policies/scheduling/features.ts';
import { linearScorerArtifact, registrySuite } from './helpers/registry-fixtures.ts';

describe('a learned scorer that cannot decide', () => {
  const suite = registrySuite('single');

  it('is refused with a typed error when evaluated', async () => {
    const { registry } = await suite.setup();
    const a = linearScorerArtifact() as { state: { net: { skip: number[] } } };
    a.state.net.skip = TASK_FEATURE_NAMES.map((n) =>
      n === 'job_remaining_work_log_s' ? 1e308 : n === 'critical_path_log_s' ? -1e308 : 0,
    );
    const v = await registry.register(
      { name: 'scheduler', kind: 'scheduling', artifact: a as never },
      'op',
    );
    const err = await registry
      .evaluate('scheduler', v.version, { actor: 'op', reason: 'r', spec: { seeds: [1] } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnsupportedError);
    expect(err).toMatchObject({ status: 422, details: { rule: 'decides' } });
    expect(String(err)).toMatch(/cannot decide: .*NaN/);
    expect((await registry.table.get('scheduler', v.version)).row.status).toBe('draft');
  });
});
