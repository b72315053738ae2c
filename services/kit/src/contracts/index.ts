export * from './errors.js';
export * from './ids.js';
export * from './schemas.js';
export * from './topics.js';
