export * from './base.ts';
export * from './ucb1.ts';
export * from './thompson.ts';
export * from './linucb.ts';
export { sampleBeta, sampleGamma } from './sampling.ts';
export { restoreBandit } from './restore.ts';
