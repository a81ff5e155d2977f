export * from './types.ts';
export * from './names.ts';
export * from './greedy.ts';
export * from './features.ts';
export * from './scored.ts';
export * from './baselines.ts';
export * from './factory.ts';
