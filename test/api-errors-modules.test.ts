// The errors registry covers typed errors wherever they are declared: test/api-errors.test.ts
// checks the controlplane/<area>/errors.ts files; a few errors live beside the code that
// throws them (TenantMovingError in scheduler/migration.ts). Every KnobosError subclass
// exported by any control-plane module must be in the registry with its status.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../controlplane/api/errors.ts';
import { TenantMovingError } from '../controlplane/scheduler/migration-row.ts';
import { KnobosError } from '../controlplane/store/errors.ts';

const ROOT = resolve(import.meta.dirname, '..', 'controlplane');

/** Modules that are not errors.ts files and may export a KnobosError subclass. */
function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return modules(p);
    return e.name.endsWith('.ts') && e.name !== 'errors.ts' ? [p] : [];
  });
}

describe('errors registry outside errors.ts', () => {
  it('registers TenantMovingError (503) and documents the code', () => {
    const e = new TenantMovingError('probe', { tenant: 't' });
    expect(ERROR_CODES[e.code]).toBeDefined();
    expect(ERROR_CODES[e.code]?.status).toBe(503);
    expect(e.status).toBe(503);
  });

  it('has every KnobosError subclass exported by a control-plane module', async () => {
    const found: string[] = [];
    for (const file of modules(ROOT)) {
      const src = await import(/* @vite-ignore */ file).catch(() => null);
      if (!src) continue;
      for (const value of Object.values(src as Record<string, unknown>)) {
        if (typeof value !== 'function' || !(value.prototype instanceof KnobosError)) continue;
        let e: KnobosError;
        try {
          e = new (value as new (...a: unknown[]) => KnobosError)('probe', 'field', 'rule', {});
        } catch {
          continue; // needs specific arguments: not constructible here
        }
        if (e.code === undefined) continue; // an abstract base
        found.push(e.code);
        expect(ERROR_CODES[e.code], `${e.code} (${file}) is not in the registry`).toBeDefined();
        expect(ERROR_CODES[e.code]?.status, e.code).toBe(e.status);
      }
    }
    expect(found).toContain('KNOBOS_SCHEDULER_TENANT_MOVING');
  }, 60_000);
});
