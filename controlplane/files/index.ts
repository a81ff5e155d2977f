// The file service: a file system as tables in Redis. See README.md.
export { FileService, FILE_KNOBS, type FileServiceOptions } from './service.ts';
export { FileKeys, type FileKeyLayout } from './keys.ts';
export { ChunkCache, type CacheStats } from './cache.ts';
export type { ImportFile } from './query.ts';
export * from './errors.ts';
export * from './types.ts';
export { normalizePath } from './paths.ts';
export { accessRecords, accessTraceCsv, ACCESS_TRACE_KIND, type AccessRecord } from './traces.ts';
