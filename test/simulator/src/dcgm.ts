import { createServer, type Server } from 'node:http';
import { dcgmPodAt, segmentAt, type ClusterModel, type DeviceFacts } from './model.js';

/**
 * The fake DCGM exporter: Prometheus text for one node at one instant, with the metric names, units, HELP/TYPE
 * lines and labels of NVIDIA's dcgm-exporter (pod mapping on: the series of a shared GPU names the Run:ai
 * reservation pod, never the fractional pods).
 */
const DRIVER_VERSION = '535.104.05';

const METRICS = [
  {
    name: 'DCGM_FI_PROF_NVLINK_TX_BYTES',
    type: 'gauge',
    help: 'The rate of data transmitted over NVLink, not including protocol headers, in bytes per second.',
    value: (d: DeviceFacts, t: number) => segmentAt(d.segments, t).nvlinkTxBytesPerSec,
  },
  {
    name: 'DCGM_FI_PROF_NVLINK_RX_BYTES',
    type: 'gauge',
    help: 'The rate of data received over NVLink, not including protocol headers, in bytes per second.',
    value: (d: DeviceFacts, t: number) => segmentAt(d.segments, t).nvlinkRxBytesPerSec,
  },
  {
    name: 'DCGM_FI_PROF_PCIE_TX_BYTES',
    type: 'gauge',
    help: 'The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.',
    value: (d: DeviceFacts, t: number) => segmentAt(d.segments, t).pcieTxBytesPerSec,
  },
  {
    name: 'DCGM_FI_PROF_PCIE_RX_BYTES',
    type: 'gauge',
    help: 'The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.',
    value: (d: DeviceFacts, t: number) => segmentAt(d.segments, t).pcieRxBytesPerSec,
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink bandwidth counters for all lanes (MB/s).',
    value: (d: DeviceFacts, t: number) => {
      const s = segmentAt(d.segments, t);
      return (s.nvlinkTxBytesPerSec + s.nvlinkRxBytesPerSec) / 1e6;
    },
  },
  {
    name: 'DCGM_FI_DEV_FB_USED',
    type: 'gauge',
    help: 'Framebuffer memory used (in MiB).',
    value: (d: DeviceFacts, t: number) => segmentAt(d.segments, t).fbUsedMiB,
  },
] as const;

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelsOf(model: ClusterModel, d: DeviceFacts, t: number): string {
  const labels: [string, string][] = [
    ['gpu', String(d.gpu)],
    ['UUID', d.gpuUuid],
    ['device', `nvidia${d.gpu}`],
    ['modelName', d.modelName],
    [model.scenario.dcgm.hostnameLabel, d.node.name],
  ];
  if (d.migInstance !== undefined)
    labels.push(['GPU_I_PROFILE', d.migProfile!], ['GPU_I_ID', String(d.migInstance)]);
  labels.push(['DCGM_FI_DRIVER_VERSION', DRIVER_VERSION]);
  const pod = dcgmPodAt(model, d, t);
  if (pod) labels.push(['container', pod.container], ['namespace', pod.namespace], ['pod', pod.name]);
  return labels.map(([k, v]) => `${k}="${escape(v)}"`).join(',');
}

/** The exporter's page for `node` at scenario offset `t` ms; undefined for an unknown node. */
export function renderMetrics(model: ClusterModel, node: string, t: number): string | undefined {
  if (!model.scenario.nodes.some((n) => n.name === node)) return undefined;
  const devices = model.devices.filter((d) => d.node.name === node);
  const lines: string[] = [];
  const lag = model.scenario.dcgm.lagMs;
  for (const metric of METRICS) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const d of devices)
      lines.push(`${metric.name}{${labelsOf(model, d, t)}} ${metric.value(d, t - lag)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Pages served beside the nodes' under /pages/<name> (e.g. a forged exporter a test plants), each rendered
 * at the scenario offset of the request; `requests` counts every GET per path, served or not.
 */
export interface DcgmExtras {
  readonly pages: Map<string, (offsetMs: number) => string>;
  readonly requests: Map<string, number>;
}

export function createDcgmServer(
  model: ClusterModel,
  offsetNow: () => number,
  extras: DcgmExtras = { pages: new Map(), requests: new Map() },
): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').replace(/\?.*$/, '');
    extras.requests.set(path, (extras.requests.get(path) ?? 0) + 1);
    const m = /^\/metrics\/([^/?]+)\/?(?:\?.*)?$/.exec(req.url ?? '');
    const page = /^\/pages\/([^/?]+)\/?$/.exec(path);
    const extra = page ? extras.pages.get(decodeURIComponent(page[1]!)) : undefined;
    const body =
      req.method !== 'GET'
        ? undefined
        : m
          ? renderMetrics(model, decodeURIComponent(m[1]!), offsetNow())
          : extra?.(offsetNow());
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('not found: use /metrics/<node>\n');
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(body);
  });
}
