import type { V1Pod } from '@kubernetes/client-node';

/**
 * Where to scrape: the configured DCGM_ENDPOINTS plus, with discovery on, every running pod matching the
 * exporter label selector (NVIDIA's gpu-operator labels them app=nvidia-dcgm-exporter). A pod's URL is
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

export function scrapeTargets(
  staticEndpoints: readonly string[],
  pods: readonly V1Pod[] | undefined,
  selector: ReturnType<typeof parseSelector>,
): string[] {
  const targets = new Set(staticEndpoints);
  for (const pod of pods ?? []) {
    if (!matchesSelector(pod, selector)) continue;
    const url = exporterUrl(pod);
    if (url) targets.add(url);
  }
  return [...targets].sort();
}
