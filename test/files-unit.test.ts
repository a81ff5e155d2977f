// The file service's pieces that need no Redis: the key layout the scripts append ids to,
// the one error mapping (every code distinct and documented), the script headers, and paths.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FILE_CODES,
  FileInputError,
  FileKeys,
  fileErrorFromReply,
  normalizePath,
} from '../controlplane/files/index.ts';
import { fileScriptNames, fileScriptSource } from '../controlplane/files/scripts.ts';
import { Keys } from '../controlplane/store/keys.ts';

const DIR = join(import.meta.dirname, '..', 'controlplane', 'files');

describe('file service pieces', () => {
  it('builds in Lua exactly the keys FileKeys builds', () => {
    const fk = new FileKeys(new Keys('p'), 'vol-1');
    const l = fk.layout();
    expect(`${l.inode}:42`).toBe(fk.inode(42));
    expect(`${l.dirent}:42`).toBe(fk.dirents(42));
    expect(`${l.data}:42`).toBe(fk.data(42));
    expect(`${l.dirBytes}:1000`).toBe(fk.dirBytes(1000));
    expect(`${l.dirMtime}:7`).toBe(fk.dirMtime(7));
    for (const k of [...fk.layoutArgs(), fk.volumeRow()]) expect(k).toMatch(/^p:\{files:vol-1\}:/);
    expect(() => new FileKeys(new Keys('p'), 'a,b')).toThrow(FileInputError);
  });

  it('maps every script code to its own typed error, all documented in the README', () => {
    const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
    const lua = readFileSync(join(DIR, 'scripts', 'includes', 'fscodes.lua'), 'utf8');
    const ctx = { op: 'op', uid: 5, volume: 'v' };
    const codes = Object.entries(FILE_CODES).map(([name, code]) => {
      expect(lua).toMatch(new RegExp(`local ERR_${name} = ${code}\\b`));
      const err = fileErrorFromReply([code, '/p', 'x'], ctx);
      expect(err?.details['path']).toBe('/p');
      expect(err?.message).toMatch(/^op/);
      const suffix = (err?.code ?? '').replace('KNOBOS_FILES', '');
      expect(readme).toContain(suffix);
      return err?.code;
    });
    expect(new Set(codes).size).toBe(codes.length);
    expect(fileErrorFromReply([0], ctx)).toBeNull();
    expect(() => fileErrorFromReply([-999, '/p'], ctx)).toThrow(/unknown code/);
  });

  it('gives every script a header naming its input and output, and one key', () => {
    const files = readdirSync(join(DIR, 'scripts')).filter((f) => f.endsWith('.lua'));
    expect(files.length).toBe(fileScriptNames().length);
    for (const f of files) {
      expect(f).toMatch(/-1\.lua$/);
      const head = readFileSync(join(DIR, 'scripts', f), 'utf8').split('--@include')[0] ?? '';
      expect(head, f).toMatch(/Input:/);
      expect(head, f).toMatch(/Output:/);
    }
    expect(fileScriptSource('write')).toContain('local function lookup(path)');
  });

  it('normalises paths and names the rule a bad one breaks', () => {
    expect(normalizePath('//a///b/')).toBe('/a/b');
    expect(normalizePath('/')).toBe('/');
    expect(normalizePath(`/${'é'.repeat(127)}`)).toBe(`/${'é'.repeat(127)}`); // 254 bytes
    expect(normalizePath('/a\u{1F600}')).toBe('/a\u{1F600}'); // a surrogate pair is fine
    for (const [bad, rule] of [
      ['a/b', 'absolute'],
      ['/a/../b', 'no_dot_segments'],
      ['/a/./b', 'no_dot_segments'],
      ['/a\0', 'no_nul'],
      ['/a\uD800', 'unicode'], // lone surrogates: both would be stored as U+FFFD
      ['/a\uDC00', 'unicode'],
      [`/${'x'.repeat(256)}`, 'max_name'],
      [`/${'é'.repeat(128)}`, 'max_name'], // 128 characters, 256 bytes
      ['/a'.repeat(65), 'max_depth'],
      [42, 'type'],
    ] as const) {
      const err = (() => {
        try {
          normalizePath(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err, String(bad)).toBeInstanceOf(FileInputError);
      expect(err).toMatchObject({ field: 'path', rule });
    }
  });
});
