import type { V1Pod } from '@kubernetes/client-node';
import { isReservationPod } from './pod-model.js';

/**
 * The reservation join. A fractional Run:ai pod carries no `nvidia.com/gpu`; a reservation pod in
 * `runai-reservation` holds the physical GPU (annotation `run.ai/reserve_for_gpu_index: GPU-<uuid>`) and
 * shares the label `runai-gpu-group` with the fractional pods on that GPU. DCGM names the reservation pod,
 * so a device's traffic reaches the sharers only through this join, split by their fractions.
 */
export const RESERVE_FOR_GPU_ANNOTATION = 'run.ai/reserve_for_gpu_index';
export const GPU_GROUP_LABEL = 'runai-gpu-group';

export interface Reservation {
  readonly namespace: string;
  readonly name: string;
  readonly gpuGroup: string;
  readonly gpuUuid: string | undefined;
}

export function reservationOf(pod: V1Pod): Reservation | undefined {
  if (!isReservationPod(pod)) return undefined;
  const gpuGroup = pod.metadata?.labels?.[GPU_GROUP_LABEL];
  if (!gpuGroup) return undefined;
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    gpuGroup,
    gpuUuid: pod.metadata?.annotations?.[RESERVE_FOR_GPU_ANNOTATION] || undefined,
  };
}

export interface Sharer<P> {
  readonly pod: P;
  /** This pod's fraction over the sum of the sharers' fractions; the shares of one GPU sum to 1. */
  readonly share: number;
}

/**
 * Splits one device among the pods sharing it, by fraction. Pods with no positive fraction get nothing;
 * with no such pod the result is empty (the caller bills the device as unallocated). Ordered by `key` so
 * the output does not depend on cache order.
 */
export function splitByFraction<P>(
  pods: readonly P[],
  fraction: (pod: P) => number,
  key: (pod: P) => string,
): Sharer<P>[] {
  const holders = pods.filter((pod) => fraction(pod) > 0);
  const total = holders.reduce((sum, pod) => sum + fraction(pod), 0);
  if (total <= 0) return [];
  return [...holders]
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    .map((pod) => ({ pod, share: fraction(pod) / total }));
}

/** Index of reservation pods, by namespace/name (what DCGM names) and by GPU uuid. */
export class ReservationIndex {
  private readonly byPod = new Map<string, Reservation>();
  private readonly byGpu = new Map<string, Reservation>();

  constructor(pods: Iterable<V1Pod>) {
    for (const pod of pods) {
      const reservation = reservationOf(pod);
      if (!reservation) continue;
      this.byPod.set(`${reservation.namespace}/${reservation.name}`, reservation);
      if (reservation.gpuUuid) this.byGpu.set(reservation.gpuUuid, reservation);
    }
  }

  forPod(namespace: string, name: string): Reservation | undefined {
    return this.byPod.get(`${namespace}/${name}`);
  }

  forGpu(gpuUuid: string): Reservation | undefined {
    return this.byGpu.get(gpuUuid);
  }
}
