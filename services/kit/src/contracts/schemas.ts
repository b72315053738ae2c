import { readFileSync } from 'node:fs';
import avro from 'avsc';

/** The Avro contracts in the repository's `schemas/` folder. */
export const SCHEMA_FILES = {
  podAllocationSample: 'pod-allocation-sample.avsc',
  bandwidthSample: 'bandwidth-sample.avsc',
  usageEvent: 'usage-event.avsc',
} as const;

export type SchemaName = keyof typeof SCHEMA_FILES;

export const SCHEMAS_DIR = new URL('../../../../schemas/', import.meta.url);

export function readSchemaText(name: SchemaName): string {
  return readFileSync(new URL(SCHEMA_FILES[name], SCHEMAS_DIR), 'utf8');
}

const typeCache = new Map<SchemaName, avro.Type>();

export function avroType(name: SchemaName): avro.Type {
  let type = typeCache.get(name);
  if (!type) {
    type = avro.Type.forSchema(JSON.parse(readSchemaText(name)) as avro.Schema);
    typeCache.set(name, type);
  }
  return type;
}

/** TypeScript shapes of the records; kept in step with the .avsc files by `schemas.test.ts`. */
export interface PodAllocationSample {
  id: string;
  clusterId: string;
  observedAtMs: number;
  spanStartMs: number;
  spanEndMs: number;
  podUid: string;
  podName: string;
  namespace: string;
  nodeName: string;
  subject: string;
  project: string;
  department: string;
  queue: string;
  workloadType: string;
  user: string;
  workloadId: string;
  gpuType: string;
  migProfile: string | null;
  gpus: number;
  gpuMemoryBytes: number;
  cpuCores: number;
  memoryBytes: number;
}

export interface BandwidthSample {
  id: string;
  clusterId: string;
  observedAtMs: number;
  spanStartMs: number;
  spanEndMs: number;
  gpuUuid: string;
  gpuIndex: number;
  migInstanceId: string | null;
  migProfile: string | null;
  hostname: string;
  gpuType: string;
  podUid: string;
  podName: string;
  namespace: string;
  subject: string;
  project: string;
  department: string;
  workloadType: string;
  share: number;
  nvlinkTxBytesPerSecond: number;
  nvlinkRxBytesPerSecond: number;
  pcieTxBytesPerSecond: number;
  pcieRxBytesPerSecond: number;
  fbUsedBytes: number;
  observer: string;
}

export const USAGE_QUANTITIES = [
  'gpuAllocationSeconds',
  'gpuMemoryAllocatedByteSeconds',
  'gpuMemoryUsedByteSeconds',
  'nvlinkTxBytes',
  'nvlinkRxBytes',
  'pcieTxBytes',
  'pcieRxBytes',
  'cpuCoreSeconds',
  'memoryByteSeconds',
] as const;

export type UsageQuantity = (typeof USAGE_QUANTITIES)[number];
export type UsageQuantities = Record<UsageQuantity, number>;

export interface UsageEvent extends UsageQuantities {
  id: string;
  subject: string;
  windowStartMs: number;
  windowEndMs: number;
  clusterId: string;
  project: string;
  department: string;
  workloadType: string;
  gpuType: string;
  sampleCount: number;
  correction: boolean;
}
