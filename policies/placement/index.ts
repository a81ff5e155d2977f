export * from './types.ts';
export * from './hash.ts';
export * from './imbalance.ts';
export * from './greedy.ts';
