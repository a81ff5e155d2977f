export * from './types.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './seeding.ts';
export * from './artifact.ts';
export * from './tune.ts';
