import { PoisonRecordError, USAGE_QUANTITIES, type UsageEvent } from '@gpu-meter/kit/contracts';
import type { SourceRecord } from '@gpu-meter/kit/kafka';
import type { Column } from './row-binary.js';

/** One row of `usage_events` (column names as in the table); JSONEachRow-ready. */
export type UsageRow = {
  id: string;
  subject: string;
  cluster_id: string;
  project: string;
  department: string;
  workload_type: string;
  gpu_type: string;
  window_start: number;
  window_end: number;
  window_start_ms: number;
  window_end_ms: number;
  gpu_allocation_seconds: number;
  gpu_memory_allocated_byte_seconds: number;
  gpu_memory_used_byte_seconds: number;
  nvlink_tx_bytes: number;
  nvlink_rx_bytes: number;
  pcie_tx_bytes: number;
  pcie_rx_bytes: number;
  cpu_core_seconds: number;
  memory_byte_seconds: number;
  sample_count: number;
  correction: 0 | 1;
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: number;
  inserted_at: number;
};

/** DateTime is seconds in a UInt32: a later window would fail the whole insert, not just its own row. */
const DATETIME_END_MS = 2 ** 32 * 1000;

/**
 * Checks what the Avro schema cannot: an event that decodes but could never be billed is poison
 * (dead-lettered), not a reason to stop the sink.
 */
export function validateUsageEvent(event: UsageEvent): void {
  const problems: string[] = [];
  if (!event.id) problems.push('id is empty');
  if (!Number.isSafeInteger(event.windowStartMs) || !Number.isSafeInteger(event.windowEndMs)) {
    problems.push('window bounds are not integer milliseconds');
  } else if (event.windowEndMs <= event.windowStartMs) problems.push('window end is not after its start');
  else if (event.windowStartMs < 0) problems.push('window starts before 1970');
  else if (event.windowEndMs >= DATETIME_END_MS)
    problems.push('window ends after 2106 (ClickHouse DateTime)');
  for (const quantity of USAGE_QUANTITIES) {
    if (!Number.isFinite(event[quantity])) problems.push(`${quantity} is not a finite number`);
  }
  if (problems.length > 0) {
    throw new PoisonRecordError('VALIDATION_FAILED', `usage event ${event.id}: ${problems.join('; ')}`);
  }
}

/** Pure mapping: event + where it was read + when → the row. DateTime columns take epoch seconds. */
export function toUsageRow(
  event: UsageEvent,
  source: Pick<SourceRecord, 'topic' | 'partition' | 'offset'>,
  insertedAtMs: number,
): UsageRow {
  return {
    id: event.id,
    subject: event.subject,
    cluster_id: event.clusterId,
    project: event.project,
    department: event.department,
    workload_type: event.workloadType,
    gpu_type: event.gpuType,
    window_start: Math.floor(event.windowStartMs / 1000),
    window_end: Math.floor(event.windowEndMs / 1000),
    window_start_ms: event.windowStartMs,
    window_end_ms: event.windowEndMs,
    gpu_allocation_seconds: event.gpuAllocationSeconds,
    gpu_memory_allocated_byte_seconds: event.gpuMemoryAllocatedByteSeconds,
    gpu_memory_used_byte_seconds: event.gpuMemoryUsedByteSeconds,
    nvlink_tx_bytes: event.nvlinkTxBytes,
    nvlink_rx_bytes: event.nvlinkRxBytes,
    pcie_tx_bytes: event.pcieTxBytes,
    pcie_rx_bytes: event.pcieRxBytes,
    cpu_core_seconds: event.cpuCoreSeconds,
    memory_byte_seconds: event.memoryByteSeconds,
    sample_count: event.sampleCount,
    correction: event.correction ? 1 : 0,
    kafka_topic: source.topic,
    kafka_partition: source.partition,
    kafka_offset: Number(source.offset),
    inserted_at: Math.floor(insertedAtMs / 1000),
  };
}

/** The columns the sink writes, in the order it sends them (RowBinary); checked against the table DDL. */
export const USAGE_COLUMNS: ReadonlyArray<Column<UsageRow>> = [
  { name: 'id', type: 'String' },
  { name: 'subject', type: 'String' },
  { name: 'cluster_id', type: 'String' },
  { name: 'project', type: 'String' },
  { name: 'department', type: 'String' },
  { name: 'workload_type', type: 'String' },
  { name: 'gpu_type', type: 'String' },
  { name: 'window_start', type: 'DateTime' },
  { name: 'window_end', type: 'DateTime' },
  { name: 'window_start_ms', type: 'Int64' },
  { name: 'window_end_ms', type: 'Int64' },
  { name: 'gpu_allocation_seconds', type: 'Float64' },
  { name: 'gpu_memory_allocated_byte_seconds', type: 'Float64' },
  { name: 'gpu_memory_used_byte_seconds', type: 'Float64' },
  { name: 'nvlink_tx_bytes', type: 'Float64' },
  { name: 'nvlink_rx_bytes', type: 'Float64' },
  { name: 'pcie_tx_bytes', type: 'Float64' },
  { name: 'pcie_rx_bytes', type: 'Float64' },
  { name: 'cpu_core_seconds', type: 'Float64' },
  { name: 'memory_byte_seconds', type: 'Float64' },
  { name: 'sample_count', type: 'Int64' },
  { name: 'correction', type: 'UInt8' },
  { name: 'kafka_topic', type: 'String' },
  { name: 'kafka_partition', type: 'Int32' },
  { name: 'kafka_offset', type: 'Int64' },
  { name: 'inserted_at', type: 'DateTime' },
];
