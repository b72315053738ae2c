export * from './grid.js';
export * from './pod-model.js';
export * from './quantity.js';
export * from './reservation.js';
export * from './pod-store.js';
