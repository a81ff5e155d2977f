export * from './replay.ts';
export * from './rollout.ts';
