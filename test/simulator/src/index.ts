export * from './scenario.js';
export {
  buildModel,
  gpuUuid,
  migUuid,
  podUid,
  MIB,
  MIG_SLICES,
  type ClusterModel,
  type PodFacts,
  type DeviceFacts,
} from './model.js';
export { renderMetrics } from './dcgm.js';
export { buildTimeline, type Change } from './timeline.js';
export type { K8sObject, ObjectContext } from './k8s-objects.js';
export * from './truth.js';
export * from './simulator.js';
