// The learned scheduling policy. For deciding (live or in a simulator) import policy.ts alone:
// it and its imports never load TF.js. Everything else here is training.
export * from './net.ts';
export * from './artifact.ts';
export * from './policy.ts';
export * from './scenario.ts';
export * from './evaluate.ts';
export * from './teacher.ts';
export * from './decisions.ts';
export * from './advantage.ts';
export * from './episode.ts';
export * from './model.ts';
export * from './update.ts';
export * from './config.ts';
export * from './loop-config.ts';
export * from './loop.ts';
export * from './trainer.ts';
export * from './report.ts';
export * from './search.ts';
export * from './cost-to-go.ts';
