// The messaging service: topics with partitions on Redis Streams, batching producers,
// exactly-once consumers, dead letters, retention, telemetry and arrival traces.
export * from './errors.ts';
export * from './keys.ts';
export * from './topics.ts';
export * from './output.ts';
export * from './wire.ts';
export * from './producer.ts';
export * from './consumer.ts';
export type { BatchEvent, Handler } from './partition-worker.ts';
export * from './dead-letters.ts';
export * from './telemetry.ts';
export * from './trace.ts';
export { messagingScripts } from './scripts.ts';
