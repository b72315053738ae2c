import type { ParsedScenario } from './scenario-schema.js';

type Pod = ParsedScenario['pods'][number];

/** Cross-field rules of a scenario; returns every problem as `path: message` (empty when the scenario is sound). */
export function checkScenario(s: ParsedScenario): string[] {
  const problems: string[] = [];
  const nodes = new Map(s.nodes.map((n) => [n.name, n]));
  if (nodes.size !== s.nodes.length) problems.push('nodes: node names must be unique');

  s.nodes.forEach((node, i) => {
    const seen = new Set<number>();
    node.mig.forEach((m, j) => {
      if (m.gpu >= node.gpuCount)
        problems.push(
          `nodes[${i}].mig[${j}].gpu: GPU index ${m.gpu} is out of range for node ${node.name} (${node.gpuCount} GPUs)`,
        );
      if (seen.has(m.gpu)) problems.push(`nodes[${i}].mig[${j}].gpu: GPU ${m.gpu} is listed twice`);
      seen.add(m.gpu);
      const ids = new Set(m.instances.map((x) => x.id));
      if (ids.size !== m.instances.length)
        problems.push(`nodes[${i}].mig[${j}].instances: instance ids must be unique`);
    });
  });

  const names = new Set<string>();
  s.pods.forEach((pod, i) => {
    const at = `pods[${i}]`;
    const ns = pod.namespace ?? `runai-${pod.project}`;
    if (ns === 'runai-reservation' || ns === 'gpu-operator')
      problems.push(`${at}.namespace: ${ns} is reserved for simulator-made pods`);
    if (names.has(`${ns}/${pod.name}`)) problems.push(`${at}.name: pod ${ns}/${pod.name} is defined twice`);
    names.add(`${ns}/${pod.name}`);
    problems.push(...checkTimes(pod, at, s.timestampPrecision));
    const node = nodes.get(pod.node);
    if (!node) {
      problems.push(`${at}.node: no node named ${pod.node}`);
      return;
    }
    const mig = new Map(node.mig.map((m) => [m.gpu, m]));
    const gpu = pod.gpu;
    if (!gpu) return;
    const indices = 'whole' in gpu ? gpu.whole : 'fraction' in gpu ? [gpu.gpu] : [gpu.mig.gpu];
    for (const index of indices) {
      if (index >= node.gpuCount)
        problems.push(
          `${at}.gpu: GPU index ${index} is out of range for node ${node.name} (${node.gpuCount} GPUs)`,
        );
      else if ('mig' in gpu !== mig.has(index))
        problems.push(
          `${at}.gpu: GPU ${index} of node ${node.name} ${mig.has(index) ? 'is MIG-partitioned: only MIG pods may use it' : 'is not MIG-partitioned'}`,
        );
    }
    if ('whole' in gpu && new Set(gpu.whole).size !== gpu.whole.length)
      problems.push(`${at}.gpu.whole: GPU indices must be unique`);
    if (
      'mig' in gpu &&
      mig.has(gpu.mig.gpu) &&
      !mig.get(gpu.mig.gpu)!.instances.some((x) => x.id === gpu.mig.instance)
    )
      problems.push(
        `${at}.gpu.mig.instance: GPU ${gpu.mig.gpu} of node ${node.name} has no MIG instance ${gpu.mig.instance}`,
      );
  });
  if (problems.length === 0) problems.push(...checkSharing(s.pods));

  s.gpuMetrics.forEach((m, i) => {
    const node = nodes.get(m.node);
    if (!node) return problems.push(`gpuMetrics[${i}].node: no node named ${m.node}`);
    if (m.gpu >= node.gpuCount)
      problems.push(
        `gpuMetrics[${i}].gpu: GPU index ${m.gpu} is out of range for node ${node.name} (${node.gpuCount} GPUs)`,
      );
    const layout = node.mig.find((x) => x.gpu === m.gpu);
    if (layout && m.migInstance === undefined)
      problems.push(
        `gpuMetrics[${i}].migInstance: GPU ${m.gpu} of ${node.name} is MIG-partitioned: name an instance`,
      );
    if (!layout && m.migInstance !== undefined)
      problems.push(`gpuMetrics[${i}].migInstance: GPU ${m.gpu} of ${node.name} is not MIG-partitioned`);
    if (layout && m.migInstance !== undefined && !layout.instances.some((x) => x.id === m.migInstance))
      problems.push(
        `gpuMetrics[${i}].migInstance: no MIG instance ${m.migInstance} on GPU ${m.gpu} of ${node.name}`,
      );
    m.segments.forEach((seg, j) => {
      if (j > 0 && seg.fromMs <= m.segments[j - 1]!.fromMs)
        problems.push(`gpuMetrics[${i}].segments[${j}].fromMs: must be greater than the previous segment's`);
    });
  });
  const devices = new Set<string>();
  s.gpuMetrics.forEach((m, i) => {
    const key = `${m.node}/${m.gpu}/${m.migInstance ?? ''}`;
    if (devices.has(key)) problems.push(`gpuMetrics[${i}]: device ${key} is listed twice`);
    devices.add(key);
  });
  return problems;
}

function checkTimes(pod: Pod, at: string, precision: 's' | 'ms'): string[] {
  const out: string[] = [];
  const created = pod.createdMs ?? pod.startMs;
  if (created > pod.startMs) out.push(`${at}.createdMs: must be <= startMs (${pod.startMs})`);
  if (pod.endMs !== undefined && pod.endMs <= pod.startMs)
    out.push(`${at}.endMs: must be > startMs (${pod.startMs})`);
  if (pod.deletedMs !== undefined && pod.endMs === undefined)
    out.push(`${at}.deletedMs: needs endMs (a deleted pod's container terminates; set endMs = deletedMs)`);
  if (pod.deletedMs !== undefined && pod.endMs !== undefined && pod.deletedMs < pod.endMs)
    out.push(`${at}.deletedMs: must be >= endMs (${pod.endMs})`);
  const requested = pod.deleteRequestedMs;
  if (pod.gracePeriodSeconds !== undefined && requested === undefined)
    out.push(`${at}.gracePeriodSeconds: only with deleteRequestedMs (a grace-0 delete is deletedMs alone)`);
  if (requested !== undefined) {
    // A delete of a pod that is not running (unscheduled or finished) is immediate: that is deletedMs.
    if (requested < pod.startMs) out.push(`${at}.deleteRequestedMs: must be >= startMs (${pod.startMs})`);
    if (pod.endMs !== undefined && requested >= pod.endMs)
      out.push(
        `${at}.deleteRequestedMs: must be < endMs (${pod.endMs}); a finished pod's delete is deletedMs`,
      );
  }
  if (precision === 's') {
    for (const key of ['createdMs', 'startMs', 'endMs', 'deletedMs', 'deleteRequestedMs'] as const) {
      const v = pod[key];
      if (v !== undefined && v % 1000 !== 0)
        out.push(`${at}.${key}: ${v} is not a whole second (timestampPrecision "s", as the Kubernetes API)`);
    }
  }
  return out;
}

/** Exclusive devices never overlap in time; fractional sharers never exceed one GPU. */
function checkSharing(pods: Pod[]): string[] {
  const out: string[] = [];
  const running = (p: Pod): [number, number] => [p.startMs, p.endMs ?? Number.POSITIVE_INFINITY];
  const overlaps = (a: Pod, b: Pod) => running(a)[0] < running(b)[1] && running(b)[0] < running(a)[1];
  const uses = (p: Pod): string[] => {
    const g = p.gpu;
    if (!g) return [];
    if ('whole' in g) return g.whole.map((i) => `${p.node}/${i}`);
    if ('fraction' in g) return [`${p.node}/${g.gpu}`];
    return [`${p.node}/${g.mig.gpu}/${g.mig.instance}`];
  };
  pods.forEach((a, i) => {
    pods.forEach((b, j) => {
      if (j <= i || !overlaps(a, b)) return;
      const shared = uses(a).filter((d) => uses(b).includes(d));
      if (shared.length === 0) return;
      if (a.gpu && b.gpu && 'fraction' in a.gpu && 'fraction' in b.gpu) return;
      out.push(`pods[${j}].gpu: ${b.name} uses ${shared[0]} while ${a.name} (pods[${i}]) holds it`);
    });
  });
  // The sum of fractions peaks at some sharer's start.
  for (const p of pods) {
    if (!p.gpu || !('fraction' in p.gpu)) continue;
    const gpu = p.gpu.gpu;
    let sum = 0;
    for (const q of pods) {
      if (
        q.node === p.node &&
        q.gpu &&
        'fraction' in q.gpu &&
        q.gpu.gpu === gpu &&
        q.startMs <= p.startMs &&
        p.startMs < (q.endMs ?? Infinity)
      )
        sum += q.gpu.fraction;
    }
    if (sum > 1 + 1e-9)
      out.push(`pods: fractions on ${p.node}/${gpu} sum to ${sum} > 1 at offset ${p.startMs}`);
  }
  return out;
}
