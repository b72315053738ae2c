import { describe, expect, it } from 'vitest';
import { describeRunaiPod, ReservationIndex, reservationOf, splitByFraction } from '@gpu-meter/kit/runai';
import { a100Node, attribution, fractionalPod, reservationPod, trainingPod } from './fixtures.js';

describe('reservation join', () => {
  const reservation = reservationPod('runai-reservation-gpu-dgx-a100-01-x7k2p', 'grp-1', 'GPU-aaaa-1111');
  const a = fractionalPod('nb-a', 'uid-a', '0.5', 'grp-1');
  const b = fractionalPod('nb-b', 'uid-b', '0.25', 'grp-1');

  it('reads the group and GPU uuid of a reservation pod, and nothing from other pods', () => {
    expect(reservationOf(reservation)).toEqual({
      namespace: 'runai-reservation',
      name: 'runai-reservation-gpu-dgx-a100-01-x7k2p',
      gpuGroup: 'grp-1',
      gpuUuid: 'GPU-aaaa-1111',
    });
    expect(reservationOf(a)).toBeUndefined();
    expect(reservationOf(trainingPod())).toBeUndefined();
  });

  it('indexes reservations by the pod DCGM names and by GPU uuid', () => {
    const index = new ReservationIndex([reservation, a, b, trainingPod()]);
    expect(index.forPod('runai-reservation', 'runai-reservation-gpu-dgx-a100-01-x7k2p')?.gpuGroup).toBe(
      'grp-1',
    );
    expect(index.forGpu('GPU-aaaa-1111')?.name).toBe('runai-reservation-gpu-dgx-a100-01-x7k2p');
    expect(index.forPod('runai-team-b', 'nb-a')).toBeUndefined();
  });

  it('splits a device by fraction so the shares sum to one, never the full value per sharer', () => {
    const pods = [b, a].map((pod) => describeRunaiPod(pod, a100Node, attribution));
    const sharers = splitByFraction(
      pods,
      (pod) => pod.gpus,
      (pod) => pod.uid,
    );
    expect(sharers.map((s) => [s.pod.uid, s.share])).toEqual([
      ['uid-a', 0.5 / 0.75],
      ['uid-b', 0.25 / 0.75],
    ]);
    expect(sharers.reduce((sum, s) => sum + s.share, 0)).toBeCloseTo(1, 15);
  });

  it('gives a lone sharer the whole device and no sharer nothing', () => {
    const lone = splitByFraction(
      [describeRunaiPod(a, a100Node, attribution)],
      (p) => p.gpus,
      (p) => p.uid,
    );
    expect(lone.map((s) => s.share)).toEqual([1]);
    expect(
      splitByFraction(
        [],
        (p: { gpus: number }) => p.gpus,
        () => '',
      ),
    ).toEqual([]);
  });
});
