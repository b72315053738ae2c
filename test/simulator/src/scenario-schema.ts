import { z } from 'zod';

/**
 * The scenario file: one cluster's nodes, pods over time and per-GPU telemetry over time. Times are ms offsets
 * from the scenario start. The schema checks shapes; `checkScenario` (scenario-rules.ts) checks the cross-field
 * rules. Both report the JSON path of the offending value.
 */
const offset = z.number().int().nonnegative();
const rate = z.number().nonnegative().default(0);

export const WORKLOAD_KINDS = ['Training', 'Interactive', 'Inference', 'DistributedWorkload'] as const;

const migInstanceSchema = z.strictObject({
  id: z.number().int().nonnegative(),
  profile: z.string().regex(/^\d+g\.\d+gb$/, 'must look like 1g.10gb'),
});

const nodeSchema = z.strictObject({
  name: z.string().min(1),
  gpuProduct: z.string().min(1),
  modelName: z.string().min(1).optional(),
  gpuCount: z.number().int().nonnegative(),
  gpuMemoryMiB: z.number().int().positive(),
  cpuCores: z.number().positive().default(64),
  memoryMiB: z.number().int().positive().default(524_288),
  mig: z
    .array(
      z.strictObject({ gpu: z.number().int().nonnegative(), instances: z.array(migInstanceSchema).min(1) }),
    )
    .default([]),
});

const gpuRequestSchema = z.union([
  z.strictObject({ whole: z.array(z.number().int().nonnegative()).min(1) }),
  z.strictObject({
    fraction: z.number().gt(0).lt(1),
    gpu: z.number().int().nonnegative(),
    memoryMiB: z.number().int().positive().optional(),
    requestedBy: z.enum(['fraction', 'memory']).default('fraction'),
  }),
  z.strictObject({
    mig: z.strictObject({ gpu: z.number().int().nonnegative(), instance: z.number().int() }),
  }),
]);

const podSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS-1123 name'),
  project: z.string().min(1),
  namespace: z.string().min(1).optional(),
  queue: z.string().min(1).optional(),
  workloadKind: z.enum(WORKLOAD_KINDS).optional(),
  priorityClassName: z.string().min(1).optional(),
  user: z.string().default(''),
  workloadId: z.string().min(1).optional(),
  node: z.string().min(1),
  gpu: gpuRequestSchema.optional(),
  cpuCores: z.number().nonnegative().default(0),
  memoryMiB: z.number().int().nonnegative().default(0),
  createdMs: offset.optional(),
  startMs: offset,
  endMs: offset.optional(),
  endPhase: z.enum(['Succeeded', 'Failed']).default('Succeeded'),
  deletedMs: offset.optional(),
  /** A user's graceful delete: from here the pod is Terminating, its deletionTimestamp this + the grace. */
  deleteRequestedMs: offset.optional(),
  gracePeriodSeconds: z.number().int().positive().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  annotations: z.record(z.string(), z.string()).default({}),
  omit: z.array(z.string()).default([]),
});

const segmentSchema = z.strictObject({
  fromMs: offset,
  nvlinkTxBytesPerSec: rate,
  nvlinkRxBytesPerSec: rate,
  pcieTxBytesPerSec: rate,
  pcieRxBytesPerSec: rate,
  fbUsedMiB: rate,
});

const gpuMetricsSchema = z.strictObject({
  node: z.string().min(1),
  gpu: z.number().int().nonnegative(),
  migInstance: z.number().int().nonnegative().optional(),
  segments: z.array(segmentSchema).min(1),
});

export const scenarioSchema = z.strictObject({
  clusterId: z.string().min(1),
  startMs: z.number().int().nonnegative().optional(),
  durationMs: offset.optional(),
  timestampPrecision: z.enum(['s', 'ms']).default('s'),
  departments: z.record(z.string(), z.string()).default({}),
  customers: z.record(z.string(), z.string()).default({}),
  dcgm: z
    .strictObject({
      hostnameLabel: z.enum(['Hostname', 'hostname']).default('Hostname'),
      /** The exporter reports, at time τ, the rates in effect at τ - lagMs (DCGM profiling values average the recent past). */
      lagMs: z.number().int().nonnegative().default(1000),
    })
    .default({ hostnameLabel: 'Hostname', lagMs: 1000 }),
  dcgmExporterPods: z.boolean().default(true),
  nodes: z.array(nodeSchema).min(1),
  pods: z.array(podSchema).default([]),
  gpuMetrics: z.array(gpuMetricsSchema).default([]),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ParsedScenario = z.output<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema> & { readonly durationMs: number };
export type ScenarioNode = Scenario['nodes'][number];
export type ScenarioPod = Scenario['pods'][number];
export type GpuRequest = NonNullable<ScenarioPod['gpu']>;
export type MetricSegment = Scenario['gpuMetrics'][number]['segments'][number];
