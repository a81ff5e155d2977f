export * from './base.ts';
export * from './random.ts';
export * from './grid.ts';
export * from './cem.ts';
export * from './bayesopt.ts';
export { latinHypercube } from './design.ts';
export { restoreTuner } from './restore.ts';
