import { CoreV1Api, KubeConfig, Watch, makeInformer, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DEFAULT_MIN_WATCH_TIMEOUT_MS, watchTimeoutMs } from '../src/k8s-server.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator.js';
import { scenario, T0, waitFor } from './helpers.js';

const s = scenario({
  durationMs: 60_000,
  nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 2, gpuMemoryMiB: 81_920 }],
  pods: [
    {
      name: 'train',
      project: 'pa',
      workloadKind: 'Training',
      user: 'alice',
      node: 'n1',
      gpu: { whole: [0] },
      cpuCores: 4,
      memoryMiB: 1024,
      startMs: 0,
      endMs: 20_000,
      deletedMs: 25_000,
    },
    {
      name: 'nb',
      project: 'pb',
      priorityClassName: 'build',
      user: 'bob',
      node: 'n1',
      gpu: { fraction: 0.5, gpu: 1 },
      cpuCores: 0.5,
      createdMs: 5000,
      startMs: 10_000,
      endMs: 40_000,
    },
  ],
});

function client(sim: Simulator): { kc: KubeConfig; api: CoreV1Api } {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'sim', server: sim.k8sUrl, skipTLSVerify: true }, { name: 'sim' });
  return { kc, api: kc.makeApiClient(CoreV1Api) };
}

interface RawEvent {
  type: string;
  object: {
    metadata: {
      name?: string;
      resourceVersion: string;
      deletionTimestamp?: string;
      deletionGracePeriodSeconds?: number;
    };
    status?: { phase?: string };
  } & Record<string, unknown>;
}

/** Reads watch lines until `until` holds for the collected events, then aborts. */
async function readWatch(url: string, until: (events: RawEvent[]) => boolean, onOpen?: () => void) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const events: RawEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  onOpen?.();
  const reader = res.body!.getReader();
  for (;;) {
    if (until(events)) break;
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) if (line) events.push(JSON.parse(line) as RawEvent);
  }
  controller.abort();
  return { status: res.status, events };
}

/** A simulator closed when the test finishes (even one that timed out). */
async function start(options: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const sim = await startSimulator({ scenario: s, ...options });
  onTestFinished(() => sim.close());
  return sim;
}

/** A client-node pods informer that counts its lists, watch connects and errors; stopped when the test ends. */
async function podsInformer(sim: Simulator) {
  const { kc, api } = client(sim);
  const counts = { lists: 0, connects: 0, errors: [] as unknown[] };
  const informer = makeInformer<V1Pod>(kc, '/api/v1/pods', () => {
    counts.lists++;
    return api.listPodForAllNamespaces();
  });
  informer.on('connect', () => counts.connects++);
  informer.on('error', (e) => {
    counts.errors.push(e);
    // client-node's informer stops on an error; its users restart it (the kit's informer does the same).
    setTimeout(() => void informer.start(), 20);
  });
  onTestFinished(() => informer.stop());
  await informer.start();
  return { informer, counts };
}

describe('fake Kubernetes API: objects', () => {
  it('lists pods and nodes with the shapes and Run:ai metadata of a real cluster', async () => {
    const sim = await start();
    await sim.setTime(T0 + 10_000);
    const { api } = client(sim);
    const pods = await api.listPodForAllNamespaces();
    expect(Number(pods.metadata?.resourceVersion)).toBe(sim.resourceVersion());
    const byName = new Map(pods.items.map((p) => [p.metadata!.name!, p]));
    expect([...byName.keys()].sort()).toEqual([
      'nb',
      'nvidia-dcgm-exporter-n1',
      'runai-reservation-gpu-n1-1-0',
      'train',
    ]);
    const train = byName.get('train')!;
    expect(train.metadata!.namespace).toBe('runai-pa');
    expect(train.metadata!.uid).toBe(sim.podUid('runai-pa', 'train'));
    expect(train.metadata!.labels).toMatchObject({
      project: 'pa',
      'runai/queue': 'pa',
      workloadKind: 'Training',
    });
    expect(train.metadata!.annotations).toMatchObject({
      user: 'alice',
      clusterId: 'c1',
      'runai-allocated-gpus': '1',
    });
    expect(train.spec!.schedulerName).toBe('runai-scheduler');
    expect(train.spec!.nodeName).toBe('n1');
    expect(train.spec!.containers[0]!.resources!.limits).toEqual({
      cpu: '4',
      memory: '1024Mi',
      'nvidia.com/gpu': '1',
    });
    expect(train.status!.phase).toBe('Running');
    expect(train.status!.startTime).toEqual(new Date(T0));
    const nb = byName.get('nb')!;
    expect(nb.spec!.priorityClassName).toBe('build');
    expect(nb.metadata!.annotations).toMatchObject({
      'gpu-fraction': '0.5',
      'runai-allocated-gpus': '0.5',
      'runai-allocated-gpu-memory': '40960',
    });
    expect(nb.spec!.containers[0]!.resources!.limits).toEqual({ cpu: '500m' });
    const reservation = byName.get('runai-reservation-gpu-n1-1-0')!;
    expect(reservation.metadata!.namespace).toBe('runai-reservation');
    expect(reservation.metadata!.labels).toEqual({
      app: 'runai-reservation',
      'runai-gpu-group': nb.metadata!.labels!['runai-gpu-group'],
    });
    expect(reservation.metadata!.annotations).toEqual({
      'run.ai/reserve_for_gpu_index': sim.gpuUuid('n1', 1),
    });

    const nodes = await api.listNode();
    expect(nodes.items[0]!.metadata!.labels).toMatchObject({
      'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
      'nvidia.com/gpu.count': '2',
      'nvidia.com/gpu.memory': '81920',
    });
    expect(nodes.items[0]!.status!.capacity).toMatchObject({ 'nvidia.com/gpu': '2' });
  });

  it('records termination times and honours namespace and selectors', async () => {
    const sim = await start();
    await sim.setTime(T0 + 20_000);
    const { api } = client(sim);
    const train = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'train' });
    expect(train.status!.phase).toBe('Succeeded');
    const terminated = train.status!.containerStatuses![0]!.state!.terminated!;
    expect([terminated.startedAt, terminated.finishedAt]).toEqual([new Date(T0), new Date(T0 + 20_000)]);
    const runai = await api.listPodForAllNamespaces({
      fieldSelector: 'spec.schedulerName=runai-scheduler,metadata.namespace!=runai-reservation',
    });
    expect(runai.items.map((p) => p.metadata!.name).sort()).toEqual(['nb', 'train']);
    const reservations = await api.listNamespacedPod({
      namespace: 'runai-reservation',
      labelSelector: 'app=runai-reservation',
    });
    expect(reservations.items).toHaveLength(1);
    await expect(api.readNamespacedPod({ namespace: 'runai-pa', name: 'nope' })).rejects.toThrow(/404/);
  });
});

describe('fake Kubernetes API: run-time label edits', () => {
  it("edits a running pod's labels as one MODIFIED event, and the edit outlives later changes", async () => {
    const sim = await start();
    await sim.setTime(T0 + 5_000);
    const rv = sim.resourceVersion();
    await sim.setPodLabels('runai-pa', 'train', { project: 'pc' });
    expect(sim.resourceVersion()).toBe(rv + 1);
    const { api } = client(sim);
    const edited = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'train' });
    expect(edited.metadata!.labels).toMatchObject({ project: 'pc', workloadKind: 'Training' });
    expect(edited.status!.phase).toBe('Running');
    await sim.setTime(T0 + 20_000);
    const ended = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'train' });
    expect([ended.status!.phase, ended.metadata!.labels!.project]).toEqual(['Succeeded', 'pc']);
    await expect(sim.setPodLabels('runai-pa', 'nope', { project: 'x' })).rejects.toThrow(/no pod/);
  });
});

describe('fake Kubernetes API: watch', () => {
  it('feeds a client-node informer through the pods lifecycle', async () => {
    const sim = await start();
    const { kc, api } = client(sim);
    let lists = 0;
    const informer = makeInformer<V1Pod>(kc, '/api/v1/pods', () => {
      lists++;
      return api.listPodForAllNamespaces();
    });
    const seen: string[] = [];
    informer.on('add', (p) => seen.push(`add ${p.metadata!.name} ${p.status!.phase}`));
    informer.on('update', (p) => seen.push(`update ${p.metadata!.name} ${p.status!.phase}`));
    informer.on('delete', (p) => seen.push(`delete ${p.metadata!.name}`));
    await informer.start();
    try {
      await waitFor(() => sim.openWatches() === 1, 'the informer to watch');
      await sim.setTime(T0 + 25_000);
      await waitFor(() => seen.includes('delete train'), 'the train pod to be deleted');
      expect(seen).toEqual([
        'add nvidia-dcgm-exporter-n1 Running',
        'add train Running',
        'add nb Pending',
        'add runai-reservation-gpu-n1-1-0 Running',
        'update nb Running',
        'update train Succeeded',
        // The delete sets the deletionTimestamp (an update) before it removes the pod, as the real API does.
        'update train Succeeded',
        'delete train',
      ]);
      expect(lists).toBe(1);
    } finally {
      await informer.stop();
    }
  });

  it('relists after 410 Gone (ERROR event) and carries on', async () => {
    const sim = await start();
    const { informer, counts } = await podsInformer(sim);
    await waitFor(() => sim.openWatches() === 1, 'the informer to watch');
    await sim.setTime(T0 + 10_000);
    await waitFor(() => informer.get('nb', 'runai-pb')?.status?.phase === 'Running', 'nb running');
    sim.expireWatchHistory();
    await waitFor(() => counts.lists === 2 && sim.openWatches() === 1, 'a relist and a new watch');
    await sim.setTime(T0 + 40_000);
    await waitFor(
      () => informer.get('nb', 'runai-pb')?.status?.phase === 'Succeeded',
      'nb succeeded after the relist',
    );
    expect(informer.get('train', 'runai-pa')).toBeUndefined();
    expect(counts.errors).toEqual([]);
  });

  it('relists after an HTTP 410 answer too', async () => {
    const sim = await start({ goneMode: 'http' });
    const { kc, api } = client(sim);
    let lists = 0;
    const informer = makeInformer<V1Node>(kc, '/api/v1/nodes', () => {
      lists++;
      return api.listNode();
    });
    await informer.start();
    try {
      await waitFor(() => sim.openWatches() === 1, 'the informer to watch');
      sim.expireWatchHistory();
      await waitFor(() => lists === 2 && sim.openWatches() === 1, 'a relist and a new watch');
      expect(informer.list().map((n) => n.metadata!.name)).toEqual(['n1']);
    } finally {
      await informer.stop();
    }
  });

  it('answers a too-old resourceVersion with an ERROR Status 410 and closes', async () => {
    const sim = await start();
    const old = sim.resourceVersion();
    sim.expireWatchHistory();
    const { events } = await readWatch(
      `${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=${old}`,
      () => false,
    );
    expect(events).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 }),
      },
    ]);
  });

  it('replays events after a resourceVersion, then streams live ones and bookmarks', async () => {
    const sim = await start();
    const from = sim.resourceVersion();
    await sim.setTime(T0 + 10_000); // nb ADDED (Pending), reservation ADDED, nb MODIFIED (Running)
    const url = `${sim.k8sUrl}/api/v1/namespaces/runai-pb/pods?watch=true&resourceVersion=${from}&allowWatchBookmarks=true`;
    const { events } = await readWatch(
      url,
      (ev) => ev.some((e) => e.type === 'BOOKMARK'),
      () => setTimeout(() => void sim.setTime(T0 + 40_000).then(() => sim.sendBookmarks()), 50),
    );
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.status?.phase])).toEqual([
      ['ADDED', 'nb', 'Pending'],
      ['MODIFIED', 'nb', 'Running'],
      ['MODIFIED', 'nb', 'Succeeded'],
      ['BOOKMARK', undefined, undefined],
    ]);
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    expect(rvs.at(-1)).toBe(sim.resourceVersion());
  });

  it('lets an informer resume from its resourceVersion after a dropped connection, without a relist', async () => {
    const sim = await start();
    const { informer, counts } = await podsInformer(sim);
    await waitFor(() => sim.openWatches() === 1, 'the informer to watch');
    sim.dropWatches();
    await sim.setTime(T0 + 20_000);
    await waitFor(() => counts.connects === 2 && sim.openWatches() === 1, 'a new watch');
    await waitFor(
      () => informer.get('train', 'runai-pa')?.status?.phase === 'Succeeded',
      'the missed update',
    );
    expect(counts.lists).toBe(1);
  });
});

/** Every line a watch sends within `ms` (and whether the server ended it), then aborts it. */
async function watchFor(url: string, ms: number) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ended = false;
  let cut = false;
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // Aborted after `ms` (the watch was still open), else the server cut the connection.
    cut = !controller.signal.aborted;
  } finally {
    clearTimeout(timer);
  }
  const events = text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RawEvent);
  return { events, ended, cut };
}

describe('fake Kubernetes API: stalled watches', () => {
  it('stalls open and new watches silently (lists stay current), then ends them on resume', async () => {
    const sim = await start();
    const from = sim.resourceVersion();
    const url = `${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=${from}&allowWatchBookmarks=true`;
    const open = watchFor(url, 1_500);
    await waitFor(() => sim.openWatches() === 1, 'the watch to open');
    sim.stallWatches();
    await sim.setTime(T0 + 20_000); // train Succeeded, nb Running: nothing reaches the watch
    sim.sendBookmarks();
    const during = await watchFor(url, 300); // opened in the stall: not even its replay
    expect(during).toEqual({ events: [], ended: false, cut: false });
    const { api } = client(sim);
    const listed = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'train' });
    expect(listed.status!.phase).toBe('Succeeded');
    const post = async (name: string) =>
      (await fetch(`${sim.k8sUrl}/simulator/${name}`, { method: 'POST' })).json();
    expect(await post('status')).toMatchObject({ watchesStalled: true });
    expect(await post('resume-watches')).toEqual({ ok: true });
    expect(await open).toEqual({ events: [], ended: true, cut: false });
    const after = await watchFor(url, 300);
    expect(after.events.map((e) => [e.type, e.object.metadata.name, e.object.status?.phase])).toContainEqual([
      'MODIFIED',
      'train',
      'Succeeded',
    ]);
    expect(await post('stall-watches')).toEqual({ ok: true });
    expect(await post('status')).toMatchObject({ watchesStalled: true });
  });
});

describe('fake Kubernetes API: objects put at run time', () => {
  it('adds an object outside the scenario: listed, watched as ADDED, kept through later changes', async () => {
    const sim = await start();
    const url = `${sim.k8sUrl}/api/v1/namespaces/tenant/pods?watch=true&resourceVersion=${sim.resourceVersion()}`;
    const watched = watchFor(url, 500);
    await waitFor(() => sim.openWatches() === 1, 'the watch to open');
    const rv = sim.resourceVersion();
    await sim.putObject({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'extra', namespace: 'tenant', uid: 'u-extra', labels: { app: 'x' } },
      spec: { nodeName: 'n1' },
      status: { phase: 'Running' },
    });
    expect(sim.resourceVersion()).toBe(rv + 1);
    await sim.setTime(T0 + 30_000);
    const { api } = client(sim);
    const pods = await api.listNamespacedPod({ namespace: 'tenant' });
    expect(pods.items.map((p) => [p.metadata!.name, p.metadata!.resourceVersion])).toEqual([
      ['extra', String(rv + 1)],
    ]);
    expect((await watched).events.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'extra']]);
  });
});

describe('fake Kubernetes API: HTTP test controls', () => {
  it('expires history, restarts, drops watches and reports status over POST /simulator/*', async () => {
    const sim = await start();
    const post = async (name: string) =>
      (await fetch(`${sim.k8sUrl}/simulator/${name}`, { method: 'POST' })).json();
    const before = sim.resourceVersion();
    expect(await post('status')).toEqual({
      startMs: T0,
      now: T0,
      resourceVersion: before,
      openWatches: 0,
      watchesStalled: false,
    });
    expect(await post('expire-history')).toEqual({ ok: true });
    const { events } = await readWatch(
      `${sim.k8sUrl}/api/v1/nodes?watch=true&resourceVersion=${before}`,
      () => false,
    );
    expect(events.map((e) => [e.type, e.object.code])).toEqual([['ERROR', 410]]);
    expect((await fetch(`${sim.k8sUrl}/simulator/expire-history`)).status).toBe(405);
    const now = sim.resourceVersion();
    expect(await post('restart')).toEqual({ ok: true });
    const afterRestart = await readWatch(
      `${sim.k8sUrl}/api/v1/nodes?watch=true&resourceVersion=${now}`,
      () => false,
    );
    expect(afterRestart.events.map((e) => [e.type, e.object.code])).toEqual([['ERROR', 410]]);
  });
});

/** A pods watch from the current resourceVersion, read for `ms` (see watchFor). */
const podsWatch = (sim: Simulator, query: string, ms: number) =>
  watchFor(`${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=${sim.resourceVersion()}${query}`, ms);

describe('fake Kubernetes API: as the real server (issue 18 point 3)', () => {
  it('sends BOOKMARK events only to a watch that asks with allowWatchBookmarks=true', async () => {
    const sim = await start({ bookmarkIntervalMs: 50 });
    const asked = podsWatch(sim, '&allowWatchBookmarks=true', 400);
    const unasked = podsWatch(sim, '', 400);
    const falsy = podsWatch(sim, '&allowWatchBookmarks=false', 400);
    await waitFor(() => sim.openWatches() === 3, 'three watches');
    sim.sendBookmarks();
    const types = async (w: typeof asked) => [...new Set((await w).events.map((e) => e.type))];
    expect(await types(asked)).toEqual(['BOOKMARK']);
    expect(await types(unasked)).toEqual([]);
    expect(await types(falsy)).toEqual([]);
  });

  it('ends a watch after its timeoutSeconds, and one that names none after the default timeout', async () => {
    const sim = await start({ minWatchTimeoutMs: 200 });
    const began = Date.now();
    const unnamed = await podsWatch(sim, '', 2_000);
    const after = Date.now() - began;
    expect(unnamed.ended).toBe(true);
    // Like kube-apiserver's --min-request-timeout: each watch gets a random timeout in [min, 2 × min).
    expect(after).toBeGreaterThanOrEqual(190);
    expect(after).toBeLessThan(1_000);
    const named = await podsWatch(sim, '&timeoutSeconds=1', 3_000);
    expect(named.ended).toBe(true);
  });

  it('by default times a watch out after 30 to 60 minutes, as kube-apiserver does; timeoutSeconds wins', () => {
    expect(watchTimeoutMs(undefined, DEFAULT_MIN_WATCH_TIMEOUT_MS, () => 0)).toBe(30 * 60_000);
    expect(watchTimeoutMs(undefined, DEFAULT_MIN_WATCH_TIMEOUT_MS, () => 0.999_999)).toBeLessThan(
      60 * 60_000,
    );
    expect(watchTimeoutMs(undefined, DEFAULT_MIN_WATCH_TIMEOUT_MS, () => 0.5)).toBe(45 * 60_000);
    expect(watchTimeoutMs(5, DEFAULT_MIN_WATCH_TIMEOUT_MS, () => 0.5)).toBe(5_000);
  });

  it('an informer re-watches a watch that timed out, without a relist', async () => {
    const sim = await start({ minWatchTimeoutMs: 150 });
    const { counts } = await podsInformer(sim);
    await waitFor(() => counts.connects >= 3, 'two watches to time out and be re-opened');
    expect(counts.lists).toBe(1);
  });

  it('a restart ends every watch and answers a resume from before it with 410 Gone: clients relist', async () => {
    const sim = await start();
    const before = sim.resourceVersion();
    const open = podsWatch(sim, '', 2_000);
    await waitFor(() => sim.openWatches() === 1, 'the watch to open');
    await sim.restart();
    expect((await open).cut).toBe(true);
    const { events } = await readWatch(
      `${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=${before}`,
      () => false,
    );
    expect(events.map((e) => [e.type, e.object.code])).toEqual([['ERROR', 410]]);
    // A watch from the list taken after the restart works.
    const listed = await client(sim).api.listPodForAllNamespaces();
    await sim.setTime(T0 + 10_000);
    const resumed = await watchFor(
      `${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=${listed.metadata!.resourceVersion}`,
      300,
    );
    expect(resumed.events.map((e) => [e.type, e.object.metadata.name])).toContainEqual(['ADDED', 'nb']);
  });

  it('an informer relists after a restart, never a silent resume', async () => {
    const sim = await start();
    const { counts } = await podsInformer(sim);
    await waitFor(() => sim.openWatches() === 1, 'the informer to watch');
    await sim.restart();
    await waitFor(() => counts.lists === 2 && sim.openWatches() === 1, 'a relist and a new watch');
    // The shutdown cut the watch mid-stream: client-node's informer reports it before it relists.
    expect(counts.errors.map((e) => (e as Error).message)).toEqual(['Premature close']);
  });

  it('a restart cuts each watch mid-stream: client-node reports "Premature close", as on kube-apiserver', async () => {
    const sim = await start();
    const { kc } = client(sim);
    const done = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch('/api/v1/pods', {}, () => undefined, resolve);
    });
    await waitFor(() => sim.openWatches() === 1, 'the watch to open');
    await sim.restart();
    expect(((await done) as Error | null)?.message).toBe('Premature close');
    // A watch the client or a proxy drops ends cleanly: no error.
    const dropped = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch('/api/v1/pods', {}, () => undefined, resolve);
    });
    await waitFor(() => sim.openWatches() === 1, 'the second watch to open');
    sim.dropWatches();
    expect(await dropped).toBeFalsy();
  });

  it('a restart with downMs refuses connections for that long, then answers again', async () => {
    const sim = await start();
    const version = () =>
      fetch(`${sim.k8sUrl}/version`).then(
        (res) => res.status,
        () => 'refused',
      );
    const restarted = sim.restart({ downMs: 300 });
    expect(await version()).toBe('refused');
    await restarted;
    expect(await version()).toBe(200);
  });
});

describe('fake Kubernetes API: times as the real server stores them (issue 18 point 3)', () => {
  it('serves every time in whole seconds by default (timestampPrecision "s")', async () => {
    expect(s.timestampPrecision).toBe('s');
    const sim = await start();
    await sim.setTime(T0 + 25_000);
    const text = await (
      await fetch(`${sim.k8sUrl}/api/v1/pods?watch=true&resourceVersion=0&timeoutSeconds=1`)
    ).text();
    const times = [...text.matchAll(/"(\d{4}-\d\d-\d\dT[^"]+)"/g)].map((m) => m[1]);
    expect(times.length).toBeGreaterThan(10);
    for (const time of times) expect(time).toMatch(/T\d\d:\d\d:\d\dZ$/);
  });
});

describe('fake Kubernetes API: deletes as the real server makes them (issue 18 point 3)', () => {
  // Built in each test: a scenario the schema rejects fails that test, not the file.
  const deletes = () =>
    scenario({
      durationMs: 60_000,
      nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 2, gpuMemoryMiB: 81_920 }],
      pods: [
        {
          name: 'forced',
          project: 'pa',
          node: 'n1',
          gpu: { whole: [0] },
          startMs: 0,
          endMs: 5_000,
          deletedMs: 5_000,
        },
        {
          name: 'graceful',
          project: 'pa',
          node: 'n1',
          gpu: { whole: [1] },
          startMs: 0,
          deleteRequestedMs: 10_000,
          gracePeriodSeconds: 30,
          endMs: 15_000,
          deletedMs: 16_000,
        },
      ],
    });
  type Seen = [string, string | undefined, string | undefined, unknown, unknown];
  const seen = (events: RawEvent[]): Seen[] =>
    events.map((e) => [
      e.type,
      e.object.metadata.name,
      e.object.status?.phase,
      e.object.metadata.deletionTimestamp,
      e.object.metadata.deletionGracePeriodSeconds,
    ]);
  const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString().replace('.000Z', 'Z');
  const watchFrom = (sim: Simulator, rv: number) =>
    `${sim.k8sUrl}/api/v1/namespaces/runai-pa/pods?watch=true&resourceVersion=${rv}`;

  it('a grace-0 delete sends MODIFIED with its deletionTimestamp, then DELETED', async () => {
    const sim = await start();
    const from = sim.resourceVersion();
    await sim.setTime(T0 + 25_000);
    const { events } = await watchFor(watchFrom(sim, from), 300);
    expect(seen(events).filter((e) => e[1] === 'train')).toEqual([
      ['MODIFIED', 'train', 'Succeeded', undefined, undefined],
      ['MODIFIED', 'train', 'Succeeded', iso(25_000), 0],
      ['DELETED', 'train', 'Succeeded', iso(25_000), 0],
    ]);
  });

  it('a graceful delete leaves the pod listed, Terminating with its deadline ahead, until it is removed', async () => {
    const sim = await start({ scenario: deletes() });
    const from = sim.resourceVersion();
    await sim.setTime(T0 + 12_000);
    const { api } = client(sim);
    const terminating = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'graceful' });
    // The deadline is the request's time plus the grace period: in the future.
    expect(terminating.metadata!.deletionTimestamp).toEqual(new Date(T0 + 40_000));
    expect(terminating.metadata!.deletionTimestamp!.getTime()).toBeGreaterThan(sim.now());
    expect(terminating.metadata!.deletionGracePeriodSeconds).toBe(30);
    expect(terminating.status!.phase).toBe('Running');
    await sim.setTime(T0 + 15_000);
    const finished = await api.readNamespacedPod({ namespace: 'runai-pa', name: 'graceful' });
    expect([finished.status!.phase, finished.metadata!.deletionTimestamp]).toEqual([
      'Succeeded',
      new Date(T0 + 40_000),
    ]);
    await sim.setTime(T0 + 16_000);
    const { events } = await watchFor(watchFrom(sim, from), 300);
    // The kubelet's removal is a delete with grace 0: it moves the deletionTimestamp to its own time.
    expect(seen(events).filter((e) => e[1] === 'graceful')).toEqual([
      ['MODIFIED', 'graceful', 'Running', iso(40_000), 30],
      ['MODIFIED', 'graceful', 'Succeeded', iso(40_000), 30],
      ['MODIFIED', 'graceful', 'Succeeded', iso(16_000), 0],
      ['DELETED', 'graceful', 'Succeeded', iso(16_000), 0],
    ]);
    await expect(api.readNamespacedPod({ namespace: 'runai-pa', name: 'graceful' })).rejects.toThrow(/404/);
  });
});
