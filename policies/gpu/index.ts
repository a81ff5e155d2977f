export * from './fit.ts';
export * from './placement.ts';
export * from './fragmentation.ts';
export * from './factory.ts';
