export * from './config.ts';
export * from './loss.ts';
export * from './agent.ts';
export * from './learn.ts';
