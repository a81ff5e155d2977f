export * from './config.ts';
export * from './poisson.ts';
export * from './bursty.ts';
export * from './zipf.ts';
