export * from './rng.ts';
export * from './spaces.ts';
export * from './env.ts';
export * from './checker.ts';
export * from './stats.ts';
export * from './clone.ts';
