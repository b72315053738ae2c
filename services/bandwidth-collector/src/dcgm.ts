import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';

/**
 * DCGM exporter text → one reading per physical GPU or MIG instance (docs/DESIGN.md §2). The PROF NVLink/PCIe
 * metrics are rates in bytes/s (gauges) and DCGM_FI_DEV_FB_USED is MiB. Parsing is left to a Prometheus
 * text-format parser (label escapes, timestamps), one line at a time: it throws on the first invalid line
 * of a page and has no recovery, so a page handed over whole would lose every GPU for one bad line.
 */
export const DCGM_METRICS = {
  nvlinkTx: 'DCGM_FI_PROF_NVLINK_TX_BYTES',
  nvlinkRx: 'DCGM_FI_PROF_NVLINK_RX_BYTES',
  pcieTx: 'DCGM_FI_PROF_PCIE_TX_BYTES',
  pcieRx: 'DCGM_FI_PROF_PCIE_RX_BYTES',
  fbUsedMiB: 'DCGM_FI_DEV_FB_USED',
} as const;

type Quantity = keyof typeof DCGM_METRICS;
const BY_NAME = new Map<string, Quantity>(
  Object.entries(DCGM_METRICS).map(([quantity, name]): [string, Quantity] => [name, quantity as Quantity]),
);

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export interface DeviceReading extends Record<Quantity, number> {
  /** GPU uuid, or `<uuid>/<GPU_I_ID>` for a MIG instance: the device's identity in sample ids. */
  readonly key: string;
  readonly gpuUuid: string;
  readonly gpuIndex: number;
  readonly migInstanceId: string | null;
  readonly migProfile: string | null;
  readonly hostname: string;
  /** modelName normalised like nvidia.com/gpu.product (spaces to dashes). */
  readonly gpuType: string;
  /** The pod the exporter maps the device to (a reservation pod for a shared GPU), if any. */
  readonly pod: PodRef | undefined;
}

export interface ParseResult {
  readonly devices: DeviceReading[];
  /** Series skipped: no UUID label, a value that is not a finite number, or a line that does not parse. */
  readonly skipped: number;
  /** Of those, lines the parser rejected (skipped, the rest of the page kept). */
  readonly badLines: number;
}

/** Each sample line parsed alone (comments carry nothing used here); a rejected line is counted. */
function parseLines(text: string): { families: ParsedFamily[]; badLines: number } {
  const families: ParsedFamily[] = [];
  let badLines = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      // The parser emits a family only once its line is terminated.
      const parsed = parsePrometheusTextFormat(`${line}\n`);
      if (parsed.every(wellFormed)) families.push(...parsed);
      else badLines += 1;
    } catch {
      badLines += 1;
    }
  }
  return { families, badLines };
}

export function parseDcgm(text: string): ParseResult {
  const devices = new Map<string, { -readonly [K in keyof DeviceReading]: DeviceReading[K] }>();
  const { families, badLines } = parseLines(text);
  let skipped = badLines;
  for (const family of families) {
    const quantity = BY_NAME.get(family.name);
    if (!quantity) continue;
    for (const metric of family.metrics) {
      const labels = metric.labels ?? {};
      const value = Number(metric.value);
      const uuid = labels.UUID;
      if (!uuid || !Number.isFinite(value)) {
        skipped += 1;
        continue;
      }
      const instance = nonEmpty(labels.GPU_I_ID);
      const key = instance === undefined ? uuid : `${uuid}/${instance}`;
      let device = devices.get(key);
      if (!device) {
        const gpu = Number(labels.gpu);
        device = {
          key,
          gpuUuid: uuid,
          gpuIndex: labels.gpu !== undefined && Number.isInteger(gpu) ? gpu : -1,
          migInstanceId: instance ?? null,
          migProfile: nonEmpty(labels.GPU_I_PROFILE) ?? null,
          hostname: labels.Hostname ?? labels.hostname ?? '',
          gpuType: (labels.modelName ?? '').trim().replace(/\s+/g, '-'),
          pod: undefined,
          nvlinkTx: 0,
          nvlinkRx: 0,
          pcieTx: 0,
          pcieRx: 0,
          fbUsedMiB: 0,
        };
        devices.set(key, device);
      }
      device[quantity] = value;
      const pod = nonEmpty(labels.pod);
      if (pod && !device.pod) device.pod = { namespace: labels.namespace ?? '', name: pod };
    }
  }
  return { devices: [...devices.values()], skipped, badLines };
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE_VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Inf)$/;

/** The parser takes some garbage without throwing ("x is {y" as metric x, value "is"): refuse those. */
function wellFormed(family: ParsedFamily): boolean {
  return (
    METRIC_NAME.test(family.name) &&
    family.metrics.every(
      (m) =>
        SAMPLE_VALUE.test(m.value ?? '') &&
        ((m as { timestamp_ms?: string }).timestamp_ms === undefined ||
          /^-?\d+$/.test((m as { timestamp_ms?: string }).timestamp_ms ?? '')),
    )
  );
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}
