// The file service's public shapes: who calls, what an inode looks like, and the bounds.

/** The identity every call carries. The first gid is the primary group (new inodes get it). */
export interface Caller {
  uid: number;
  gids: readonly number[];
}

/** uid 0 passes every permission check, as on POSIX. */
export const ROOT: Caller = { uid: 0, gids: [0] };

export type FileType = 'file' | 'dir';

export interface FileStat {
  path: string;
  ino: number;
  type: FileType;
  uid: number;
  gid: number;
  /** Permission bits, 0..0o777. */
  mode: number;
  /** Bytes of a file (its logical size, holes included); 0 for a directory. */
  sizeBytes: number;
  /** Directories: bytes of every file in the subtree, kept up to date by each write. */
  subtreeBytes: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Files: the chunk size the file was created with (files.chunk_bytes at that time). */
  chunkBytes: number;
  /** Files: bumped by every write and truncate; the read cache checks it per chunk. */
  version: number;
  /** Directories: number of entries. */
  entries: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  type: FileType;
}

export interface FileLimits {
  /** Most bytes one read or write moves. */
  ioBytesMax: number;
  /** Largest file size (offset + length of a write, truncate target). */
  fileBytesMax: number;
  /** Most entries below a directory that rename may move in one step. */
  renameSubtreeMax: number;
  /** readdir page size hint. */
  readdirPageMax: number;
  /** Most results of one metadata query call. */
  queryResultsMax: number;
  /** Most candidates one metadata query call examines (then it returns a cursor). */
  queryScanMax: number;
  /** Files per bulk import step. */
  bulkBatchMax: number;
  /** Entries of the path -> inode hints the read cache uses to name the chunks it holds. */
  cacheHintsMax: number;
}

/**
 * The largest file (1 TiB), and so the largest size a query may name: one constant for the
 * service's default limits and the API's schema, so neither accepts what the other refuses.
 */
export const FILE_BYTES_MAX = 2 ** 40;
/** The largest mtime (ms) a query or an import may name: the API's schema uses it too. */
export const FILE_TIME_MAX_MS = 2 ** 50;

export const DEFAULT_LIMITS: FileLimits = {
  ioBytesMax: 16 * 1024 * 1024,
  fileBytesMax: FILE_BYTES_MAX,
  renameSubtreeMax: 100_000,
  readdirPageMax: 1_000,
  queryResultsMax: 10_000,
  queryScanMax: 500_000,
  bulkBatchMax: 1_000,
  cacheHintsMax: 65_536,
};

export interface FileQuery {
  /** Directory whose subtree is searched. */
  under: string;
  /** Only files strictly larger than this (0..FILE_BYTES_MAX). */
  minSizeBytes?: number;
  /** Only files with mtime >= this (ms, 0..FILE_TIME_MAX_MS). */
  modifiedFromMs?: number;
  /** Only files with mtime <= this (ms, 0..FILE_TIME_MAX_MS). */
  modifiedToMs?: number;
  /** Most results (default and max: limits.queryResultsMax). */
  limit?: number;
  /** Continue a previous call that returned a cursor. */
  cursor?: QueryCursor;
}

export type QueryPlan = 'path' | 'size' | 'mtime';

/** Where a query stopped: the plan and its last examined index entry (score and path). */
export interface QueryCursor {
  plan: QueryPlan;
  after: { score: number; path: string };
}

export interface FoundFile {
  path: string;
  sizeBytes: number;
  mtimeMs: number;
}

export interface FileQueryResult {
  files: FoundFile[];
  /** The index the planner scanned. */
  plan: QueryPlan;
  /** Candidates in that index's range (what the scan costs at most). */
  candidates: number;
  /** Present when more may follow: pass it back as query.cursor. */
  cursor?: QueryCursor;
}

export interface DirSize {
  path: string;
  subtreeBytes: number;
}
