export * from './workload.ts';
export * from './sim.ts';
export * from './env.ts';
export * from './evaluate.ts';
