export * from './grid.js';
export * from './pod-model.js';
export * from './quantity.js';
export * from './reservation.js';
