export * from './types.ts';
export * from './factory.ts';
export { LruCache, FifoCache } from './queue.ts';
export { LfuCache } from './lfu.ts';
export { ArcCache } from './arc.ts';
export { SieveCache } from './sieve.ts';
export { S3FifoCache } from './s3fifo.ts';
export { MapKeyIndex, DenseKeyIndex, type KeyIndex } from './key-index.ts';
export { LecarCache, LECAR_DEFAULTS } from './lecar.ts';
