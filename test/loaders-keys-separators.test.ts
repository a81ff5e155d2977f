// A keys trace (one key per line) whose first key holds ';' or '|' around "key", "obj_id" or
// "lbn" stays a keys trace: only a line of column names with a key column and another cache
// trace column (time, size, op, ...) is a header of another separator.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultCacheFormat, loadCacheTrace } from '../envs/loaders/cache-load.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-loaders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keys traces whose first key names a key column between separators', () => {
  for (const first of ['user|key', 'tenant;obj_id', 'disk0|lbn|7']) {
    it(`still reads ${JSON.stringify(first)} as keys`, () => {
      const file = join(dir, `${first.replace(/[^a-z0-9]/gi, '_')}.txt`);
      writeFileSync(file, `${first}\nother|a\n${first}\n`);
      expect(defaultCacheFormat(file)).toBe('keys');
      const t = loadCacheTrace(file);
      expect(Array.from(t.keys)).toEqual([0, 1, 0]);
      expect(t.keyCount).toBe(2);
    });
  }
});
