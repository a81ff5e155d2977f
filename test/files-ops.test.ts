// The file service's operations against real redis-server processes, on one node and on a
// 3-node cluster: offsets and ranges across chunk boundaries (hand-computed, then against a
// byte model), sparse holes, truncate, mkdir -p, readdir paging, unlink and rmdir rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryNotEmptyError,
  FileExistsError,
  FileInputError,
  FileLimitError,
  FileNotFoundError,
  IsADirectoryError,
  NotADirectoryError,
  ROOT,
  type FileService,
} from '../controlplane/files/index.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

const CS = 4096; // files.chunk_bytes for this suite (the knob's minimum)

/** The same writes and truncates applied to a plain Buffer: what the file must read back as. */
class ByteModel {
  bytes = Buffer.alloc(0);
  write(offset: number, data: Buffer): void {
    if (offset + data.length > this.bytes.length) {
      this.bytes = Buffer.concat([
        this.bytes,
        Buffer.alloc(offset + data.length - this.bytes.length),
      ]);
    }
    data.copy(this.bytes, offset);
  }
  truncate(size: number): void {
    this.bytes =
      size <= this.bytes.length
        ? Buffer.from(this.bytes.subarray(0, size))
        : Buffer.concat([this.bytes, Buffer.alloc(size - this.bytes.length)]);
  }
}

describe.each<Backend>(['single', 'cluster'])('file operations on %s redis', (backend) => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
    // 65536 -> 16384 -> 4096: the knob's safety limit allows a 4x step at a time.
    fx = await filesFixture(redis, { knobs: {} });
    await fx.setKnob('files.chunk_bytes', 16_384);
    await fx.setKnob('files.chunk_bytes', CS);
    fs = await fx.instance();
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  it('writes and reads across chunk boundaries, hand-computed', async () => {
    await fs.mkdir(ROOT, '/hand', { parents: true });
    const f = await fs.create(ROOT, '/hand/f');
    expect(f.chunkBytes).toBe(CS);
    // 10 bytes at 4090: 6 at the end of chunk 0 (4090..4095), 4 at the start of chunk 1.
    expect(await fs.write(ROOT, '/hand/f', 4090, 'ABCDEFGHIJ')).toEqual({
      sizeBytes: 4100,
      version: 1,
    });
    const all = await fs.read(ROOT, '/hand/f');
    expect(all.length).toBe(4100);
    expect(all.subarray(0, 4090).equals(Buffer.alloc(4090))).toBe(true); // a hole: zeros
    expect(all.subarray(4090).toString()).toBe('ABCDEFGHIJ');
    expect((await fs.read(ROOT, '/hand/f', { offset: 4094, length: 4 })).toString()).toBe('EFGH');
    expect((await fs.read(ROOT, '/hand/f', { offset: 4096, length: 2 })).toString()).toBe('GH');
    // 'xyz' at 10000 lands in chunk 2 (8192..12287) at 1808; 4100..9999 stays zeros.
    expect((await fs.write(ROOT, '/hand/f', 10_000, 'xyz')).sizeBytes).toBe(10_003);
    const tail = await fs.read(ROOT, '/hand/f', { offset: 9_999, length: 100 });
    expect([...tail]).toEqual([0, 120, 121, 122]); // clipped at the size: 9999..10002
    expect(
      (await fs.read(ROOT, '/hand/f', { offset: 4100, length: 5900 })).equals(Buffer.alloc(5900)),
    ).toBe(true);
    // Reads past the end are empty, not errors.
    expect((await fs.read(ROOT, '/hand/f', { offset: 20_000, length: 10 })).length).toBe(0);
    const st = await fs.stat(ROOT, '/hand/f');
    expect(st).toMatchObject({ type: 'file', sizeBytes: 10_003, version: 2, chunkBytes: CS });
    expect((await fs.stat(ROOT, '/hand')).subtreeBytes).toBe(10_003);
    expect((await fs.stat(ROOT, '/')).subtreeBytes).toBe(10_003);
  });

  it('matches a byte model through overwrites, extensions, truncates and holes', async () => {
    await fs.create(ROOT, '/model');
    const model = new ByteModel();
    const pattern = (n: number, seed: number) =>
      Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 251));
    const steps: [string, number, number][] = [
      ['write', 4000, 8300], // chunk 0 tail, chunks 1 and 2 whole, chunk 3 head
      ['write', 0, 1], // first byte
      ['write', 12_287, 2], // the last byte of chunk 2 and the first of chunk 3
      ['truncate', 5000, 0], // cuts chunk 1 to 904 bytes, drops 2 and 3
      ['write', 6000, 1], // 5000..5999 must read zeros, not the old pattern
      ['truncate', 20_000, 0], // grows: a hole
      ['write', 16_384, 4096], // exactly chunk 4
      ['truncate', 16_384, 0], // exactly at a chunk boundary
      ['truncate', 0, 0],
      ['write', 3 * CS + 5, 10], // a file that starts with three holes
    ];
    let seed = 1;
    for (const [op, at, n] of steps) {
      if (op === 'write') {
        const data = pattern(n, seed++);
        model.write(at, data);
        await fs.write(ROOT, '/model', at, data);
      } else {
        model.truncate(at);
        await fs.truncate(ROOT, '/model', at);
      }
      const got = await fs.read(ROOT, '/model');
      expect(got.length, `${op} ${at}`).toBe(model.bytes.length);
      expect(got.equals(model.bytes), `${op} ${at} ${n}`).toBe(true);
      // And a range straddling the boundary of chunks 0 and 1.
      const r = await fs.read(ROOT, '/model', { offset: CS - 3, length: 7 });
      expect(r.equals(model.bytes.subarray(CS - 3, CS + 4))).toBe(true);
    }
    expect((await fs.stat(ROOT, '/model')).version).toBe(steps.length);
  });

  it('bounds the bytes one read or write moves', async () => {
    const small = await fx.instance({ limits: { ioBytesMax: 10_000 } });
    await small.create(ROOT, '/big');
    await small.write(ROOT, '/big', 0, Buffer.alloc(10_000, 2));
    await small.write(ROOT, '/big', 10_000, Buffer.alloc(10_000, 3));
    await expect(small.write(ROOT, '/big', 0, Buffer.alloc(10_001))).rejects.toMatchObject({
      field: 'data.length',
      rule: 'range',
    });
    // Data that is neither a string nor bytes (a caller without the types) names the field.
    for (const bad of [42, [1, 2], null])
      await expect(small.write(ROOT, '/big', 0, bad as unknown as string)).rejects.toMatchObject({
        code: 'KNOBOS_FILES_INVALID',
        field: 'data',
        rule: 'type',
      });
    const err = await small.read(ROOT, '/big').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileLimitError);
    expect(err).toMatchObject({ limit: 'io_bytes_max', max: 10_000, path: '/big' });
    const tail = await small.read(ROOT, '/big', { offset: 10_000 });
    expect(tail.equals(Buffer.alloc(10_000, 3))).toBe(true);
  });

  it('makes directories with and without -p, and names what is wrong', async () => {
    expect(await fs.mkdir(ROOT, '/p/q/r', { parents: true })).toMatchObject({ created: 3 });
    expect(await fs.mkdir(ROOT, '/p/q/r', { parents: true })).toMatchObject({ created: 0 });
    await expect(fs.mkdir(ROOT, '/p/q/r')).rejects.toBeInstanceOf(FileExistsError);
    const missing = await fs.mkdir(ROOT, '/p/x/y').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FileNotFoundError);
    expect((missing as FileNotFoundError).path).toBe('/p/x');
    await fs.create(ROOT, '/p/file');
    const through = await fs.mkdir(ROOT, '/p/file/d', { parents: true }).catch((e: unknown) => e);
    expect(through).toBeInstanceOf(NotADirectoryError);
    expect((through as NotADirectoryError).path).toBe('/p/file');
    await expect(fs.create(ROOT, '/p/file')).rejects.toBeInstanceOf(FileExistsError);
    await expect(fs.create(ROOT, '/p/nope/f')).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(fs.write(ROOT, '/p', 0, 'x')).rejects.toBeInstanceOf(IsADirectoryError);
    const bad = await fs.mkdir(ROOT, '/p/../etc').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(FileInputError);
    expect(bad).toMatchObject({ field: 'path', rule: 'no_dot_segments' });
    expect(await fs.stat(ROOT, '//p//q/')).toMatchObject({ path: '/p/q', type: 'dir', entries: 1 });
  });

  it('takes a trailing / as naming a directory, as POSIX does, changing nothing otherwise', async () => {
    await fs.mkdir(ROOT, '/slash/d', { parents: true });
    await fs.create(ROOT, '/slash/f');
    await fs.write(ROOT, '/slash/f', 0, 'abc');
    const before = await fs.stat(ROOT, '/slash/f');
    // Operations on files refuse it as input, naming the rule.
    for (const op of [
      () => fs.create(ROOT, '/slash/g/'),
      () => fs.write(ROOT, '/slash/f/', 0, 'x'),
      () => fs.read(ROOT, '/slash/f/'),
      () => fs.truncate(ROOT, '/slash/f/', 0),
      () => fs.unlink(ROOT, '/slash/f/'),
    ]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FileInputError);
      expect(err).toMatchObject({
        field: 'path',
        rule: 'file_path',
      });
    }
    // Operations on either kind accept it for a directory only.
    for (const op of [
      () => fs.stat(ROOT, '/slash/f/'),
      () => fs.chmod(ROOT, '/slash/f/', 0o600),
      () => fs.chown(ROOT, '/slash/f/', { uid: 7 }),
      () => fs.rename(ROOT, '/slash/f/', '/slash/h'),
      () => fs.rename(ROOT, '/slash/f', '/slash/h/'),
    ])
      await expect(op()).rejects.toBeInstanceOf(NotADirectoryError);
    expect(await fs.stat(ROOT, '/slash/f')).toEqual(before);
    await expect(fs.stat(ROOT, '/slash/g')).rejects.toBeInstanceOf(FileNotFoundError);
    expect(await fs.stat(ROOT, '/slash/d/')).toMatchObject({ path: '/slash/d', type: 'dir' });
    await fs.chmod(ROOT, '/slash/d/', 0o700);
    await fs.rename(ROOT, '/slash/d/', '/slash/e/');
    expect(await fs.stat(ROOT, '/slash/e')).toMatchObject({ type: 'dir', mode: 0o700 });
  });

  it('pages through a directory', async () => {
    await fs.mkdir(ROOT, '/many');
    // More than hash-max-listpack-entries (512), so HSCAN really pages.
    const names = Array.from({ length: 700 }, (_, i) => `f${String(i).padStart(3, '0')}`);
    await Promise.all(names.map((n) => fs.create(ROOT, `/many/${n}`)));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await fs.readdir(ROOT, '/many', { ...(cursor ? { cursor } : {}), count: 100 });
      seen.push(...page.entries.map((e) => e.name));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 100);
    expect([...new Set(seen)].sort()).toEqual(names);
    expect(pages).toBeGreaterThan(1);
    expect((await fs.list(ROOT, '/many')).map((e) => e.name)).toEqual(names);
    // A page of 0 entries would never move on: refused, naming the field, as a query limit of 0.
    await expect(fs.readdir(ROOT, '/many', { count: 0 })).rejects.toMatchObject({
      field: 'count',
      rule: 'range',
    });
    await expect(fs.findAllFiles(ROOT, { under: '/many', limit: 0 })).rejects.toMatchObject({
      field: 'limit',
      rule: 'range',
    });
  });

  it('unlinks files and removes only empty directories, keeping sizes and indexes', async () => {
    await fs.mkdir(ROOT, '/rm/sub', { parents: true });
    await fs.create(ROOT, '/rm/sub/a');
    await fs.write(ROOT, '/rm/sub/a', 0, Buffer.alloc(5000, 1));
    expect((await fs.stat(ROOT, '/rm')).subtreeBytes).toBe(5000);
    await expect(fs.rmdir(ROOT, '/rm/sub')).rejects.toBeInstanceOf(DirectoryNotEmptyError);
    await expect(fs.unlink(ROOT, '/rm/sub')).rejects.toBeInstanceOf(IsADirectoryError);
    await expect(fs.rmdir(ROOT, '/rm/sub/a')).rejects.toBeInstanceOf(NotADirectoryError);
    await expect(fs.rmdir(ROOT, '/')).rejects.toBeInstanceOf(FileInputError);
    await fs.unlink(ROOT, '/rm/sub/a');
    await expect(fs.read(ROOT, '/rm/sub/a')).rejects.toBeInstanceOf(FileNotFoundError);
    expect((await fs.stat(ROOT, '/rm')).subtreeBytes).toBe(0);
    expect((await fs.findFiles(ROOT, { under: '/rm' })).files).toEqual([]);
    await fs.rmdir(ROOT, '/rm/sub');
    expect(await fs.list(ROOT, '/rm')).toEqual([]);
    // A new file at the old path starts empty: no chunk of the old one comes back.
    await fs.mkdir(ROOT, '/rm/sub');
    await fs.create(ROOT, '/rm/sub/a');
    await fs.truncate(ROOT, '/rm/sub/a', 10);
    expect((await fs.read(ROOT, '/rm/sub/a')).equals(Buffer.alloc(10))).toBe(true);
  });
});
