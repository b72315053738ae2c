// Transitional: the old barrel, re-exporting the new folders' entry points until every importer uses them.
export * from './contracts/index.js';
export * from './config/index.js';
export * from './runai/index.js';
export * from './runtime/index.js';
export * from './kafka/index.js';
export * from './clickhouse/index.js';
export * from './kubernetes/config.js';
export * from './runners/usage-sink-main.js';
