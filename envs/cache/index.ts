export * from './result.ts';
export * from './replay.ts';
export * from './belady.ts';
export * from './mrc.ts';
export * from './env.ts';
export * from './objective.ts';
