import { exporterObject, nodeObject } from './k8s-infra-objects.js';
import { podObject, reservationObject, type K8sObject, type ObjectContext } from './k8s-objects.js';

/**
 * Every object change a scenario implies, in the order the cluster makes them. At one instant: reservation pods
 * appear first (Run:ai binds the reservation before the fractional pod runs), then scenario pods in scenario
 * order, then reservation pods go (after their last sharer ended). Offsets in ms from the scenario start; nodes
 * and exporter pods exist from before the start (offset -Infinity).
 */
export interface Change {
  atMs: number;
  order: number;
  kind: 'Pod' | 'Node';
  action: 'upsert' | 'delete';
  object: K8sObject;
}

/** A pod's terminationGracePeriodSeconds when it names none, Kubernetes' default. */
const DEFAULT_GRACE_PERIOD_SECONDS = 30;

/**
 * A delete as kube-apiserver makes it, also with grace 0: the object is first updated with its
 * deletionTimestamp (MODIFIED), then removed (DELETED).
 */
function removal(atMs: number, order: number, object: K8sObject): Change[] {
  return [
    { atMs, order, kind: 'Pod', action: 'upsert', object },
    { atMs, order, kind: 'Pod', action: 'delete', object },
  ];
}

export function buildTimeline(ctx: ObjectContext): Change[] {
  const { model } = ctx;
  const changes: Change[] = [];
  const initial = Number.NEGATIVE_INFINITY;
  for (const node of model.scenario.nodes)
    changes.push({ atMs: initial, order: 0, kind: 'Node', action: 'upsert', object: nodeObject(ctx, node) });
  if (model.scenario.dcgmExporterPods) {
    for (const node of model.scenario.nodes) {
      if (node.gpuCount > 0)
        changes.push({
          atMs: initial,
          order: 1,
          kind: 'Pod',
          action: 'upsert',
          object: exporterObject(ctx, node),
        });
    }
  }
  for (const r of model.reservations) {
    changes.push({
      atMs: r.runStart,
      order: 0,
      kind: 'Pod',
      action: 'upsert',
      object: reservationObject(ctx, r, 'running'),
    });
    if (Number.isFinite(r.runEnd))
      changes.push(...removal(r.runEnd, 2, reservationObject(ctx, r, 'terminated')));
  }
  model.pods.forEach((p) => {
    const order = 1;
    if (p.createdMs < p.runStart)
      changes.push({
        atMs: p.createdMs,
        order,
        kind: 'Pod',
        action: 'upsert',
        object: podObject(ctx, p, 'pending'),
      });
    changes.push({
      atMs: p.runStart,
      order,
      kind: 'Pod',
      action: 'upsert',
      object: podObject(ctx, p, 'running'),
    });
    const requested = p.pod.deleteRequestedMs;
    // A graceful delete: Terminating from the request on, every later state with the grace deadline.
    const graceful =
      requested === undefined
        ? undefined
        : { atMs: requested, gracePeriodSeconds: p.pod.gracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS };
    if (graceful)
      changes.push({
        atMs: graceful.atMs,
        order,
        kind: 'Pod',
        action: 'upsert',
        object: podObject(ctx, p, 'running', graceful),
      });
    if (p.pod.endMs !== undefined)
      changes.push({
        atMs: p.pod.endMs,
        order,
        kind: 'Pod',
        action: 'upsert',
        object: podObject(ctx, p, 'terminated', graceful),
      });
    // The removal (the kubelet's, or a forced delete) has grace 0: its deletionTimestamp is its own time.
    if (p.pod.deletedMs !== undefined) {
      const { deletedMs } = p.pod;
      changes.push(
        ...removal(
          deletedMs,
          order,
          podObject(ctx, p, 'terminated', { atMs: deletedMs, gracePeriodSeconds: 0 }),
        ),
      );
    }
  });
  // Stable sort keeps scenario order within one (time, order).
  return changes.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
}
