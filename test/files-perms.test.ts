// Owner and mode on every call: POSIX classes (owner, then group, then others; root passes),
// search permission on every directory of a path, write permission on the parent for entry
// changes. Refusals are typed errors naming the path and the missing permission, and change
// nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FilePermissionError,
  ROOT,
  type Caller,
  type FileService,
} from '../controlplane/files/index.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { scanVolume } from './helpers/files-scan.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const alice: Caller = { uid: 1000, gids: [1000] };
const bob: Caller = { uid: 1001, gids: [1001, 2000] }; // in alice's project group 2000
const carol: Caller = { uid: 1002, gids: [1002] };

describe('file permissions', () => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    fx = await filesFixture(redis);
    fs = await fx.instance();
    // The tree, made by root and handed over.
    await fs.mkdir(ROOT, '/home/alice/vault', { parents: true });
    await fs.mkdir(ROOT, '/home/bob/secret', { parents: true });
    await fs.mkdir(ROOT, '/pub', { mode: 0o777 });
    await fs.chown(ROOT, '/home/alice', { uid: 1000, gid: 2000 });
    await fs.chmod(ROOT, '/home/alice', 0o750); // group 2000 may list and pass, others not
    await fs.chown(ROOT, '/home/alice/vault', { uid: 1000, gid: 1000 });
    await fs.chmod(ROOT, '/home/alice/vault', 0o700);
    await fs.chown(ROOT, '/home/bob', { uid: 1001, gid: 1001 });
    await fs.chown(ROOT, '/home/bob/secret', { uid: 1001, gid: 1001 });
    await fs.chmod(ROOT, '/home/bob/secret', 0o711); // others may pass, not list
    for (const [path, mode] of [
      ['/home/alice/private.txt', 0o600],
      ['/home/alice/shared.txt', 0o640],
      ['/home/alice/readonly.txt', 0o444],
      ['/home/alice/vault/diary.txt', 0o600],
    ] as const) {
      await fs.create(alice, path, { mode }).catch(async () => {
        // alice cannot create in a root-made directory before it is hers; root makes the file.
        await fs.create(ROOT, path, { mode });
        await fs.chown(ROOT, path, { uid: 1000, gid: 1000 });
      });
      await fs.write(ROOT, path, 0, `contents of ${path}`);
    }
    await fs.chown(ROOT, '/home/alice/shared.txt', { gid: 2000 });
    await fs.create(bob, '/home/bob/secret/note.txt');
    await fs.write(bob, '/home/bob/secret/note.txt', 0, 'bob note');
    await fs.create(bob, '/home/bob/x');
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  async function refused(
    p: Promise<unknown>,
    path: string,
    permission: string,
  ): Promise<FilePermissionError> {
    const err = await p.then(
      () => new Error('was allowed'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FilePermissionError);
    const pe = err as FilePermissionError;
    expect({ path: pe.path, permission: pe.permission }).toEqual({ path, permission });
    expect(pe.message).toContain(path);
    expect(pe.status).toBe(403);
    expect(pe.code).toBe('KNOBOS_FILES_PERMISSION');
    return pe;
  }

  it('refuses what it should, naming the path and the permission, and changes nothing', async () => {
    const before = await scanVolume(fs);
    const rootStat = await fs.stat(ROOT, '/home/alice');
    // Search permission on a directory of the path (others have none on /home/alice).
    const e = await refused(fs.read(carol, '/home/alice/shared.txt'), '/home/alice', 'x');
    expect(e.message).toMatch(/uid 1002 lacks x \(search\/execute\) on \/home\/alice/);
    await refused(fs.stat(carol, '/home/alice/shared.txt'), '/home/alice', 'x');
    // Read and write bits of the file itself.
    await refused(fs.read(bob, '/home/alice/private.txt'), '/home/alice/private.txt', 'r');
    await refused(fs.write(bob, '/home/alice/shared.txt', 0, 'x'), '/home/alice/shared.txt', 'w');
    await refused(fs.truncate(bob, '/home/alice/shared.txt', 0), '/home/alice/shared.txt', 'w');
    await refused(
      fs.write(alice, '/home/alice/readonly.txt', 0, 'x'),
      '/home/alice/readonly.txt',
      'w',
    );
    // Entry changes need w on the parent (group 2000 has r-x on /home/alice).
    await refused(fs.create(bob, '/home/alice/new.txt'), '/home/alice', 'w');
    await refused(fs.mkdir(bob, '/home/alice/d'), '/home/alice', 'w');
    await refused(fs.unlink(bob, '/home/alice/shared.txt'), '/home/alice', 'w');
    await refused(fs.rename(bob, '/home/bob/x', '/home/alice/x'), '/home/alice', 'w');
    await refused(fs.rename(bob, '/home/alice/shared.txt', '/home/bob/s'), '/home/alice', 'w');
    await refused(fs.mkdir(carol, '/home/c', { parents: true }), '/home', 'w');
    // Listing needs r; a private directory is closed even to its group.
    await refused(fs.list(carol, '/home/bob/secret'), '/home/bob/secret', 'r');
    await refused(fs.read(bob, '/home/alice/vault/diary.txt'), '/home/alice/vault', 'x');
    // Attributes: mode by the owner, owner by root, group by an owner who is in it.
    await refused(
      fs.chmod(bob, '/home/alice/shared.txt', 0o777),
      '/home/alice/shared.txt',
      'owner',
    );
    await refused(
      fs.chown(alice, '/home/alice/shared.txt', { uid: 1001 }),
      '/home/alice/shared.txt',
      'root',
    );
    await refused(
      fs.chown(alice, '/home/alice/shared.txt', { gid: 1002 }),
      '/home/alice/shared.txt',
      'group',
    );
    // Not even to the values it has (that would move the ctime): only the owner or root.
    for (const same of [{ uid: 1000 }, { gid: 2000 }, {}]) {
      await refused(
        fs.chown(bob, '/home/alice/shared.txt', same),
        '/home/alice/shared.txt',
        'owner',
      );
    }
    // Queries: the directory must be readable and searchable; other users' sizes are theirs.
    await refused(fs.findFiles(carol, { under: '/home/alice' }), '/home/alice', 'rx');
    await refused(fs.largestDirs(bob, 1000), 'uid:1000', 'owner');

    expect(await scanVolume(fs)).toEqual(before);
    expect(await fs.stat(ROOT, '/home/alice')).toEqual(rootStat);
  });

  it('allows what it should', async () => {
    // Group read, others' read and pass-through without list, owner's own files.
    expect((await fs.read(bob, '/home/alice/shared.txt')).toString()).toMatch(/^contents of/);
    expect((await fs.list(bob, '/home/alice')).map((e) => e.name)).toContain('shared.txt');
    expect((await fs.read(carol, '/home/bob/secret/note.txt')).toString()).toBe('bob note');
    expect((await fs.stat(carol, '/home/bob/secret/note.txt')).uid).toBe(1001);
    await fs.write(alice, '/home/alice/private.txt', 0, 'C');
    // Unlinking needs w on the directory, not on the file.
    await fs.unlink(alice, '/home/alice/readonly.txt');
    // New inodes belong to the caller and its primary group.
    await fs.mkdir(bob, '/pub/b1/b2', { parents: true });
    await fs.create(bob, '/pub/b1/b2/f');
    expect(await fs.stat(bob, '/pub/b1/b2/f')).toMatchObject({ uid: 1001, gid: 1001, mode: 0o644 });
    expect((await fs.stat(bob, '/pub/b1')).uid).toBe(1001);
    await fs.chown(alice, '/home/alice/private.txt', { gid: 1000 });
    // Root passes everything.
    await fs.chmod(ROOT, '/home/alice/vault/diary.txt', 0);
    expect((await fs.read(ROOT, '/home/alice/vault/diary.txt')).toString()).toMatch(/diary/);
    expect((await fs.largestDirs(alice, 1000)).map((d) => d.path)).toContain('/home/alice');
  });

  it('moves a directory to another parent only with w on the directory itself (POSIX)', async () => {
    await fs.mkdir(ROOT, '/share/a', { parents: true, mode: 0o777 });
    await fs.mkdir(ROOT, '/share/b', { mode: 0o777 });
    await fs.mkdir(bob, '/share/a/bobdir', { mode: 0o555 }); // read-only, even for bob
    // carol has w+x on both parents, but no w on bobdir (its '..' would change).
    await refused(fs.rename(carol, '/share/a/bobdir', '/share/b/bobdir'), '/share/a/bobdir', 'w');
    expect((await fs.stat(ROOT, '/share/a/bobdir')).uid).toBe(1001);
    // Renamed within its parent ('..' unchanged), it needs no w on itself.
    await fs.rename(carol, '/share/a/bobdir', '/share/a/renamed');
    // A file moves with w+x on both parents alone; a directory with w on itself too.
    await fs.create(bob, '/share/a/f', { mode: 0o444 });
    await fs.rename(carol, '/share/a/f', '/share/b/f');
    await fs.chmod(bob, '/share/a/renamed', 0o755);
    await refused(fs.rename(carol, '/share/a/renamed', '/share/b/d'), '/share/a/renamed', 'w');
    await fs.rename(bob, '/share/a/renamed', '/share/b/d');
    expect((await fs.stat(ROOT, '/share/b/d')).uid).toBe(1001);
  });

  it('uses the owner class alone when the caller owns the file (POSIX)', async () => {
    await fs.create(alice, '/pub/odd.txt');
    await fs.write(alice, '/pub/odd.txt', 0, 'odd');
    await fs.chmod(alice, '/pub/odd.txt', 0o077); // owner nothing, group and others all
    await refused(fs.read(alice, '/pub/odd.txt'), '/pub/odd.txt', 'r');
    expect((await fs.read(carol, '/pub/odd.txt')).toString()).toBe('odd');
    await fs.chmod(alice, '/pub/odd.txt', 0o640); // the owner may always chmod
    expect((await fs.read(alice, '/pub/odd.txt')).toString()).toBe('odd');
    await refused(fs.read(carol, '/pub/odd.txt'), '/pub/odd.txt', 'r');
  });

  it('lists in queries only files the caller could reach', async () => {
    const paths = async (c: Caller) =>
      (await fs.findAllFiles(c, { under: '/home' })).map((f) => f.path).sort();
    const all = await paths(ROOT);
    expect(all).toContain('/home/alice/vault/diary.txt');
    expect(await paths(bob)).toEqual(all.filter((p) => !p.startsWith('/home/alice/vault/')));
    // carol may pass /home/bob/secret but not list it, so find cannot reach note.txt.
    expect(await paths(carol)).toEqual(['/home/bob/x']);
  });

  it("leaves out of a user's largest directories its own ones inside directories it cannot search", async () => {
    await fs.mkdir(ROOT, '/locked/inner', { parents: true });
    await fs.chmod(ROOT, '/locked', 0o700);
    await fs.chown(ROOT, '/locked/inner', { uid: 1000, gid: 1000 });
    await fs.create(ROOT, '/locked/inner/big');
    await fs.chown(ROOT, '/locked/inner/big', { uid: 1000, gid: 1000 });
    await fs.truncate(ROOT, '/locked/inner/big', 10_000_000); // the largest of alice's
    const asRoot = (await fs.largestDirs(ROOT, 1000, 6)).map((d) => d.path);
    expect(asRoot[0]).toBe('/locked/inner');
    const asAlice = (await fs.largestDirs(alice, 1000, 5)).map((d) => d.path);
    expect(asAlice).not.toContain('/locked/inner');
    expect(asAlice).toEqual(asRoot.filter((p) => p !== '/locked/inner').slice(0, 5));
    expect(asAlice).toContain('/home/alice');
  });
});
