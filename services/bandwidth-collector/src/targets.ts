import type { V1Pod } from '@kubernetes/client-node';
import type { DeviceReading, PodRef } from './dcgm.js';

/**
 * Where to scrape: the configured DCGM_ENDPOINTS plus, with discovery on, every running pod in
 * DCGM_EXPORTER_NAMESPACE matching the exporter label selector (NVIDIA's gpu-operator labels them
 * app=nvidia-dcgm-exporter). Any tenant can put that label on a pod of its own namespace and serve a page
 * naming a victim's pod, so only the operator's namespace counts, and each discovered exporter speaks only
 * for the node it is bound to (ownNodeReadings). A pod's URL is
 * http://<podIP>:<port><path>, port and path from the usual prometheus.io annotations, else the container
 * port named `metrics`, else 9400 and /metrics (dcgm-exporter's defaults).
 */
export const DCGM_DEFAULT_PORT = 9400;

/** Equality-based selector `k=v,k2==v2,k3!=v3`; enough for exporter discovery. */
export function parseSelector(selector: string): Array<{ key: string; value: string; equal: boolean }> {
  return selector
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const match = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
      if (!match) throw new Error(`unsupported label selector term: ${part}`);
      return { key: match[1]!, value: match[3]!, equal: match[2] !== '!=' };
    });
}

export function matchesSelector(pod: V1Pod, selector: ReturnType<typeof parseSelector>): boolean {
  const labels = pod.metadata?.labels ?? {};
  return selector.every(({ key, value, equal }) => (labels[key] === value) === equal);
}

export function exporterUrl(pod: V1Pod): string | undefined {
  const ip = pod.status?.podIP;
  if (!ip || pod.status?.phase !== 'Running') return undefined;
  const annotations = pod.metadata?.annotations ?? {};
  const named = (pod.spec?.containers ?? [])
    .flatMap((container) => container.ports ?? [])
    .find((port) => port.name === 'metrics')?.containerPort;
  const port = Number(annotations['prometheus.io/port'] ?? named ?? DCGM_DEFAULT_PORT);
  const rawPath = annotations['prometheus.io/path'] ?? '/metrics';
  const path = rawPath.startsWith('/') ? rawPath : `/${rawPath}`;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `http://${host}:${port}${path}`;
}

export interface ScrapeTarget {
  readonly url: string;
  /** The node a discovered exporter runs on; undefined for a configured endpoint (the operator vouches). */
  readonly nodeName: string | undefined;
}

export function scrapeTargets(
  staticEndpoints: readonly string[],
  pods: readonly V1Pod[] | undefined,
  selector: ReturnType<typeof parseSelector>,
  namespace: string,
): ScrapeTarget[] {
  const targets = new Map<string, ScrapeTarget>();
  for (const url of staticEndpoints) targets.set(url, { url, nodeName: undefined });
  for (const pod of pods ?? []) {
    if (pod.metadata?.namespace !== namespace || !matchesSelector(pod, selector)) continue;
    // Without a node there is nothing its readings could be checked against.
    const nodeName = pod.spec?.nodeName;
    const url = exporterUrl(pod);
    if (url && nodeName && !targets.has(url)) targets.set(url, { url, nodeName });
  }
  return [...targets.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

export interface OwnNodeReadings {
  readonly devices: DeviceReading[];
  /** Readings of a GPU on another node (Hostname/hostname label), dropped. */
  readonly foreignNode: number;
  /** Readings mapped to a pod that runs on another node: kept, without that pod. */
  readonly foreignPod: number;
}

/**
 * An exporter's readings as far as they describe its own node (docs/DESIGN.md §6.7): a device whose hostname is
 * another node's is dropped, and a pod mapping to a pod running elsewhere is dropped (the device's time is
 * then held by the pods named before, else unallocated). A configured endpoint (nodeName undefined) is taken
 * as it is. `nodeOfPod` gives a named pod's node, undefined when the pod is not known.
 */
export function ownNodeReadings(
  devices: readonly DeviceReading[],
  nodeName: string | undefined,
  nodeOfPod: (ref: PodRef) => string | undefined,
): OwnNodeReadings {
  if (nodeName === undefined) return { devices: [...devices], foreignNode: 0, foreignPod: 0 };
  const own: DeviceReading[] = [];
  let foreignNode = 0;
  let foreignPod = 0;
  for (const device of devices) {
    if (device.hostname !== nodeName) {
      foreignNode += 1;
      continue;
    }
    const podNode = device.pod && nodeOfPod(device.pod);
    if (device.pod && podNode !== undefined && podNode !== nodeName) {
      foreignPod += 1;
      own.push({ ...device, pod: undefined });
    } else own.push(device);
  }
  return { devices: own, foreignNode, foreignPod };
}
