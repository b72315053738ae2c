import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodAllocationSample } from '@gpu-meter/kit/contracts';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  GPU_PRODUCT,
  deletePod,
  ms,
  nextSecond,
  realApi,
  runningPod,
  succeed,
  type RealApi,
} from '../../../test/support/real-apiserver.js';
import {
  INTERVAL_MS,
  distinctUpTo,
  metricValue,
  outputTopic,
  readSamples,
  startCollectorOn,
  waitUntil,
  type Received,
} from './harness.js';
import type { ServiceProcess } from '../../../test/support/processes.js';

/**
 * runai-collector against a real kube-apiserver (test/support/real-apiserver.ts). Every expectation is
 * computed from the times the API stored and returned (whole seconds, rounded down), never from the
 * times the test asked for.
 */

/** Longer than any test here: a graceful delete leaves the pod Terminating with its deadline in the future. */
const GRACE_SECONDS = 60;

/** An output topic and a way to start a collector on it (ready when it resolves). */
async function collectorsOn(prefix: string, kubeconfig: string) {
  const topic = await outputTopic(prefix);
  const start = async (): Promise<ServiceProcess> => {
    const collector = startCollectorOn({ KUBECONFIG: kubeconfig }, topic);
    await collector.waitForLog(/collector ready/);
    return collector;
  };
  return { topic, start };
}

/**
 * A TCP relay to the API server that the test can cut: every connection through it is destroyed and new
 * ones are dropped until restored. The collector's watch and lists fail while the test's own client,
 * connected directly, goes on writing: a watch outage on a healthy API server.
 */
class CuttableRelay {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private cut = false;
  port = 0;

  constructor(private readonly target: URL) {
    this.server = createServer((client) => this.relay(client));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    onTestFinished(() => this.close());
    return this;
  }

  private relay(client: Socket): void {
    if (this.cut) return void client.destroy();
    const upstream = connect(Number(this.target.port), this.target.hostname);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  }

  cutOff(): void {
    this.cut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  private close(): Promise<void> {
    this.cutOff();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A copy of the kubeconfig naming the relay's port (the serving certificate is for 127.0.0.1, any port). */
function kubeconfigVia(real: RealApi, relay: CuttableRelay): string {
  const server = new URL(real.kc.getCurrentCluster()!.server);
  const dir = mkdtempSync(join(tmpdir(), 'gm-kubeconfig-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'kubeconfig');
  const text = readFileSync(real.kubeconfig, 'utf8').replace(
    `server: ${server.origin}`,
    `server: https://127.0.0.1:${relay.port}`,
  );
  if (!text.includes(`:${relay.port}`))
    throw new Error(`no "server: ${server.origin}" in ${real.kubeconfig}`);
  // It holds the token: readable by this user only.
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/**
 * The samples a pod that ran over [startMs, endMs) must have on the grid, each span clipped to the run;
 * endMs null: still running, sampled up to lastT.
 */
function expectedSpans(startMs: number, endMs: number | null, lastT: number): string[] {
  const spans: string[] = [];
  // Up to lastT, like billedSpans: on a loaded machine an end learned late (the outage test's relist) lies after it.
  const last = endMs === null ? lastT : Math.min(lastT, Math.ceil(endMs / INTERVAL_MS) * INTERVAL_MS);
  for (let t = Math.floor(startMs / INTERVAL_MS) * INTERVAL_MS + INTERVAL_MS; t <= last; t += INTERVAL_MS) {
    const from = Math.max(t - INTERVAL_MS, startMs);
    const to = endMs === null ? t : Math.min(t, endMs);
    if (to > from) spans.push(span(t, from, to));
  }
  return spans;
}

const span = (t: number, from: number, to: number) =>
  `${new Date(t).toISOString()} [${new Date(from).toISOString()}, ${new Date(to).toISOString()})`;

/** A pod's distinct samples (re-sent ones must be byte-identical: distinctUpTo throws otherwise), as spans. */
function billedSpans(received: Received[], namespace: string, name: string, lastT: number): string[] {
  return distinctUpTo(received, lastT)
    .filter((s) => s.namespace === namespace && s.podName === name)
    .sort((a, b) => a.observedAtMs - b.observedAtMs)
    .map((s) => span(s.observedAtMs, s.spanStartMs, s.spanEndMs));
}

/**
 * The topic, read again (every 3 s, 30 s at most) until `pod` has `count` points up to lastT: a collector
 * that recovers late on a loaded machine (restart, outage) sends its backfill after the last point, and
 * the comparisons must judge what it sent, not when.
 */
async function readUntilBilled(
  topic: string,
  namespace: string,
  pod: string,
  lastT: number,
  count: number,
): Promise<Received[]> {
  let received = await readSamples(topic);
  for (let i = 0; i < 10 && billedSpans(received, namespace, pod, lastT).length < count; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    received = await readSamples(topic);
  }
  return received;
}

function samplesOf(received: Received[], namespace: string, name: string): PodAllocationSample[] {
  return received.map((r) => r.value).filter((s) => s.namespace === namespace && s.podName === name);
}

describe('runai-collector against a real kube-apiserver (TLS, bearer token)', () => {
  it('bills each pod from the times the API stored: finish, graceful delete, forced deletes, running', async () => {
    const real = await realApi();
    const { topic, start } = await collectorsOn('alloc-real-api', real.kubeconfig);
    await start();

    const t0 = nextSecond();
    await waitUntil(t0);
    const startedAt = {
      finishes: await runningPod(real, 'finishes', { whole: 2 }),
      graceful: await runningPod(real, 'graceful', { whole: 1 }),
      forced: await runningPod(real, 'forced', { fraction: 0.5, gpu: 2 }),
      graceZero: await runningPod(real, 'grace-zero', { whole: 1 }),
      runs: await runningPod(real, 'runs', { whole: 1 }),
    };

    await waitUntil(t0 + 3_000);
    // A user's delete: the pod stays, Terminating, its deletionTimestamp the grace deadline in the future.
    const terminating = await deletePod(real, 'graceful', GRACE_SECONDS);
    const deadlineMs = ms(terminating.metadata?.deletionTimestamp);
    expect(deadlineMs).toBeGreaterThan(Date.now() + (GRACE_SECONDS - 5) * 1000);
    await deletePod(real, 'forced', GRACE_SECONDS);
    // Grace 0 on a running pod: deleted at once (MODIFIED with a deletionTimestamp, then DELETED).
    const zero = await deletePod(real, 'grace-zero', 0);
    const zeroAnsweredAt = Date.now();

    await waitUntil(t0 + 4_000);
    const finishedAt = await succeed(real, 'finishes');

    await waitUntil(t0 + 5_000);
    // The kubelet's side of the graceful delete: the container exited (final status), then its delete with
    // grace 0, which shortens the grace period: the removed object's deletionTimestamp is now (1.35 never
    // moves it before now).
    const gracefulFinishedAt = await succeed(real, 'graceful');
    await deletePod(real, 'graceful', 0);
    // `kubectl delete --force` of the Terminating pod: removed with no final status.
    const forcedGone = await deletePod(real, 'forced', 0);
    const forcedAnsweredAt = Date.now();

    // The last grid point every pod is compared at; the collector samples it 250 ms later.
    const lastT = t0 - 300 + 8_000;
    await waitUntil(lastT + INTERVAL_MS);
    // Beside CPU hogs the samples can reach the topic after one idle-bounded read: read until the pod that
    // runs throughout has every point (as the other two tests do).
    const runsWant = expectedSpans(startedAt.runs, null, lastT);
    const received = await readUntilBilled(topic, real.namespace, 'runs', lastT, runsWant.length);
    const billed = (name: string) => billedSpans(received, real.namespace, name, lastT);

    // A pod that ran to its end: billed to the finishedAt the API stored.
    expect(billed('finishes')).toEqual(expectedSpans(startedAt.finishes, finishedAt, lastT));
    // A graceful delete is never billed to its future deadline: it ran until its container finished.
    expect(gracefulFinishedAt).toBeLessThan(deadlineMs);
    expect(billed('graceful')).toEqual(expectedSpans(startedAt.graceful, gracefulFinishedAt, lastT));
    // Removed without a final status: billed to the deletionTimestamp the removal carried (the forced
    // delete's second, the grace shortened to 0), not to the deadline.
    // The API stores that time rounded down to the second, so a collector that saw the removal first bills
    // to the moment it learned (e.g. 07:38:01.366 for a deletionTimestamp of 07:38:01): either is right,
    // nothing later than the delete's answer plus the watch's delivery (1 s on a loaded machine).
    const removedEnd = (name: string, removed: V1Pod, answeredAt: number) => {
      const end = Math.max(...samplesOf(received, real.namespace, name).map((s) => s.spanEndMs));
      expect(end, name).toBeGreaterThanOrEqual(ms(removed.metadata?.deletionTimestamp));
      expect(end, name).toBeLessThanOrEqual(answeredAt + 1_000);
      return end;
    };
    const forcedEnd = removedEnd('forced', forcedGone, forcedAnsweredAt);
    expect(forcedEnd).toBeLessThan(deadlineMs);
    expect(billed('forced')).toEqual(expectedSpans(startedAt.forced, forcedEnd, lastT));
    const zeroEnd = removedEnd('grace-zero', zero, zeroAnsweredAt);
    expect(billed('grace-zero')).toEqual(expectedSpans(startedAt.graceZero, zeroEnd, lastT));
    expect(billed('runs')).toEqual(runsWant);

    // The amounts and dimensions came through as on the fake API.
    const finishes = samplesOf(received, real.namespace, 'finishes');
    expect(new Set(finishes.map((s) => `${s.gpus} ${s.gpuType} ${s.project} ${s.workloadType}`))).toEqual(
      new Set([`2 ${GPU_PRODUCT} team-a Training`]),
    );
    expect(new Set(samplesOf(received, real.namespace, 'forced').map((s) => s.gpus))).toEqual(new Set([0.5]));
  });

  it('a collector killed and restarted: no gap and no duplicate, a pod that ended meanwhile billed to its end', async () => {
    const real = await realApi();
    const { topic, start } = await collectorsOn('alloc-real-api-restart', real.kubeconfig);
    const first = await start();

    const t0 = nextSecond();
    await waitUntil(t0);
    const runsStart = await runningPod(real, 'runs', { whole: 2 });
    const endsStart = await runningPod(real, 'ends', { whole: 1 });

    await waitUntil(t0 + 2_500);
    await first.kill('SIGKILL');
    await waitUntil(t0 + 3_000);
    // Ends while no collector runs; stays listed (not deleted), so the restarted one backfills it.
    const endsFinishedAt = await succeed(real, 'ends');
    await waitUntil(t0 + 4_000);
    const second = await start();

    const lastT = Math.max(t0 + 9_000, Math.ceil(Date.now() / INTERVAL_MS) * INTERVAL_MS + 2 * INTERVAL_MS);
    await waitUntil(lastT + INTERVAL_MS);
    const want = expectedSpans(runsStart, null, lastT);
    const received = await readUntilBilled(topic, real.namespace, 'runs', lastT, want.length);

    expect(billedSpans(received, real.namespace, 'runs', lastT)).toEqual(want);
    expect(billedSpans(received, real.namespace, 'ends', lastT)).toEqual(
      expectedSpans(endsStart, endsFinishedAt, lastT),
    );
    // One sample per pod and grid point: every id is distinct or a byte-identical re-send.
    const ids = received.filter((r) => r.value.namespace === real.namespace).map((r) => r.value.id);
    expect(new Set(ids).size).toBe(
      billedSpans(received, real.namespace, 'runs', Infinity).length +
        billedSpans(received, real.namespace, 'ends', Infinity).length,
    );
    expect(await metricValue(second, 'gpumeter_allocation_samples_backfilled_total')).toBeGreaterThan(0);
  });

  it('a watch outage on a healthy API: ends it missed billed to the stored finish or to when it learned, never to a deadline', async () => {
    const real = await realApi();
    const relay = await new CuttableRelay(new URL(real.kc.getCurrentCluster()!.server)).listen();
    const { topic, start } = await collectorsOn('alloc-real-api-outage', kubeconfigVia(real, relay));
    const collector = await start();

    const t0 = nextSecond();
    await waitUntil(t0);
    const startedAt = {
      runs: await runningPod(real, 'runs', { whole: 1 }),
      ends: await runningPod(real, 'ends', { whole: 2 }),
      terminating: await runningPod(real, 'terminating', { whole: 2 }),
    };
    await waitUntil(t0 + 2_000);
    const deadlineMs = ms((await deletePod(real, 'terminating', GRACE_SECONDS)).metadata?.deletionTimestamp);

    await waitUntil(t0 + 3_000);
    const watchErrorsBefore = await metricValue(collector, 'gpumeter_watch_errors_total');
    relay.cutOff();
    const cutAt = Date.now();
    await waitUntil(t0 + 4_000);
    // While the collector sees nothing: one pod ends (and stays listed), the Terminating one ends and goes.
    const endsFinishedAt = await succeed(real, 'ends');
    await succeed(real, 'terminating');
    await deletePod(real, 'terminating', 0);
    // Longer than the relist interval (4 grid points): the collector's retries become relists, so it
    // learns of the removal from a list that no longer has the pod, not from a replayed watch. Counted
    // from the cut itself: beside CPU hogs the cut came 2.3 s late, the outage lasted 3.7 s, and the
    // resumed watch replayed the pod's stored finish instead (also right, but not what is tested here).
    await waitUntil(Math.max(t0 + 9_000, cutAt + 6_000));
    const restoredAt = Date.now();
    relay.restore();

    const lastT = Math.max(t0 - 300 + 14_000, Math.ceil(restoredAt / INTERVAL_MS) * INTERVAL_MS + 5_000);
    await waitUntil(lastT + INTERVAL_MS);
    // Skipped points are backfilled once the watch is fresh again.
    const want = expectedSpans(startedAt.runs, null, lastT);
    const received = await readUntilBilled(topic, real.namespace, 'runs', lastT, want.length);
    const billed = (name: string) => billedSpans(received, real.namespace, name, lastT);
    expect(await metricValue(collector, 'gpumeter_watch_errors_total')).toBeGreaterThan(watchErrorsBefore);

    // No gap across the outage.
    expect(billed('runs')).toEqual(want);
    // Ended during the outage, still listed: the relist shows its finish; billed to it, not to the relist.
    expect(billed('ends')).toEqual(expectedSpans(startedAt.ends, endsFinishedAt, lastT));
    // Last seen Terminating with its deadline a minute ahead, then gone: billed until the collector could
    // no longer vouch for it (the relist after the outage), never to the deadline.
    const terminating = samplesOf(received, real.namespace, 'terminating');
    const billedEnd = Math.max(...terminating.map((s) => s.spanEndMs));
    expect(billedEnd).toBeGreaterThanOrEqual(cutAt);
    expect(billedEnd, 'learned at the relist after the outage').toBeGreaterThanOrEqual(restoredAt);
    // The first relist after the outage comes within the reconnect back-off's ceiling (10 s) of the
    // restore; 5 s more for a loaded machine.
    expect(billedEnd).toBeLessThan(restoredAt + 15_000);
    expect(billedEnd).toBeLessThan(deadlineMs - 30_000);
    expect(billed('terminating')).toEqual(expectedSpans(startedAt.terminating, billedEnd, lastT));
  });
});
