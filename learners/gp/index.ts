export * from './kernel.ts';
export * from './gp.ts';
export * from './fit.ts';
export * from './acquisition.ts';
export * from './warp.ts';
