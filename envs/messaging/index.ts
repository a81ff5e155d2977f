export * from './model.ts';
export * from './arrivals.ts';
export * from './sim.ts';
export * from './metrics.ts';
export * from './source.ts';
export * from './objective.ts';
export * from './env.ts';
