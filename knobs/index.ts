export * from './types.ts';
export * from './catalog.ts';
export * from './validate.ts';
export * from './space.ts';
