export * from './backoff.js';
export * from './config.js';
export * from './grid-ticker.js';
export * from './heartbeat-wait.js';
export * from './logger.js';
export * from './ops-server.js';
export * from './shutdown.js';
export * from './startup.js';
