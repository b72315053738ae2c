export * from './config.js';
export * from './informers.js';
