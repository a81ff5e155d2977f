// Key names of the file system, built only with Keys.key(). One family (hash tag) per volume,
// `{files:<volume>}`, holds every table of that volume: inodes, directory entries, chunks and
// indexes, so that create, write, rename and unlink are each one Lua step in one cluster slot.
// A volume is the shard unit: spreading volumes over families spreads them over the cluster.
import { assertKeyPart, type Keys } from '../store/keys.ts';
import { FileInputError } from './errors.ts';

/** The key prefixes a file script appends ':<id>' to, in the order of includes/fs.lua. */
export interface FileKeyLayout {
  inode: string;
  dirent: string;
  data: string;
  dirBytes: string;
  pathIndex: string;
  sizeIndex: string;
  dirMtime: string;
}

export class FileKeys {
  readonly family: string;

  constructor(
    readonly keys: Keys,
    readonly volume = 'default',
  ) {
    assertKeyPart('volume', volume);
    // Volume names also appear in trace keys (CSV fields), so keep them plain.
    if (!/^[A-Za-z0-9._-]+$/.test(volume)) {
      throw new FileInputError(
        `volume '${volume}' must be letters, digits, '.', '_' or '-'`,
        '',
        'volume',
        'chars',
      );
    }
    this.family = `files:${volume}`;
  }

  /** The volume row (next inode number); every script names it as KEYS[1] for routing. */
  volumeRow(): string {
    return this.keys.key(this.family, 'volume');
  }
  inode(ino: number | string): string {
    return this.keys.key(this.family, 'inode', String(ino));
  }
  dirents(ino: number | string): string {
    return this.keys.key(this.family, 'dirent', String(ino));
  }
  data(ino: number | string): string {
    return this.keys.key(this.family, 'data', String(ino));
  }
  /** Sorted set: path of each directory owned by uid -> bytes of files in its subtree. */
  dirBytes(uid: number): string {
    return this.keys.key(this.family, 'dirbytes', String(uid));
  }
  pathIndex(): string {
    return this.keys.key(this.family, 'index', 'path');
  }
  sizeIndex(): string {
    return this.keys.key(this.family, 'index', 'size');
  }
  /** Sorted set: path -> mtime of every file in a directory's subtree (the root's: all). */
  dirMtime(ino: number | string): string {
    return this.keys.key(this.family, 'dirmtime', String(ino));
  }

  /** What one create or rename request did, so a repeat of it does nothing more (once.lua). */
  request(requestId: string): string {
    return this.keys.key(this.family, 'request', requestId);
  }

  layout(): FileKeyLayout {
    return {
      inode: this.keys.key(this.family, 'inode'),
      dirent: this.keys.key(this.family, 'dirent'),
      data: this.keys.key(this.family, 'data'),
      dirBytes: this.keys.key(this.family, 'dirbytes'),
      pathIndex: this.pathIndex(),
      sizeIndex: this.sizeIndex(),
      dirMtime: this.keys.key(this.family, 'dirmtime'),
    };
  }

  /** ARGV[1..7] of every file script. */
  layoutArgs(): string[] {
    const l = this.layout();
    return [l.inode, l.dirent, l.data, l.dirBytes, l.pathIndex, l.sizeIndex, l.dirMtime];
  }
}
