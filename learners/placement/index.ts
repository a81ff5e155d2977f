// The learned placement policy. For deciding (live or in a simulator) import policy.ts alone:
// it and its imports never load TF.js. The rest is training.
export * from './features.ts';
export * from './policy.ts';
export * from './episode.ts';
export * from './teacher.ts';
export * from './config.ts';
export * from './trainer.ts';
