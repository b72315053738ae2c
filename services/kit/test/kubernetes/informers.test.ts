import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@gpu-meter/kit/runtime';
import { ClusterCache, createKubeConfig, podInformer } from '@gpu-meter/kit/kubernetes';

const logger = createLogger('test', 'silent');
const pod = (name: string, rv: string) => ({
  metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: rv },
});

/**
 * A minimal API server scripted per request: the first list fails (500), the first watch answers a 410
 * ERROR event and closes (what kube-apiserver does for an expired resourceVersion), later lists return more
 * pods and later watches stay open. The informer must survive both and end with every pod.
 */
function scriptedApi() {
  const requests: string[] = [];
  let lists = 0;
  let watches = 0;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const watch = url.searchParams.get('watch') === 'true';
    requests.push(`${watch ? 'watch' : 'list'} rv=${url.searchParams.get('resourceVersion') ?? ''}`);
    if (!watch) {
      lists += 1;
      if (lists === 1) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"kind":"Status","code":500}');
        return;
      }
      const items = lists === 2 ? [pod('a', '5')] : [pod('a', '5'), pod('b', '9')];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(lists * 10) },
          items,
        }),
      );
      return;
    }
    watches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    if (watches === 1) {
      const status = { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 };
      res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
      return;
    }
    res.write(''); // held open, as a live watch is
  });
  return { server, requests };
}

describe('ResilientInformer', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('restarts after a failed list and relists after 410 Gone, ending with every object', async () => {
    const api = scriptedApi();
    server = api.server;
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    const { port } = api.server.address() as AddressInfo;
    const kc = createKubeConfig({ k8sApiUrl: `http://127.0.0.1:${port}`, kubeconfig: undefined });
    const added: string[] = [];
    const events = { errors: 0, lists: 0 };
    const informer = podInformer(kc, { add: (p: V1Pod) => added.push(p.metadata!.name!) }, logger, {
      onError: () => (events.errors += 1),
      onList: () => (events.lists += 1),
    });
    await informer.start();
    await informer.synced;
    // Until both pods are in and the watch after the relist was asked for (the informer sends it just
    // after adding 'b'; stopping at 'b' alone raced it on a loaded machine); 5 s at most.
    for (let i = 0; i < 100 && (added.length < 2 || api.requests.length < 5); i += 1)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await informer.stop();
    expect(events.errors).toBe(1);
    expect(events.lists).toBe(2);
    expect(added).toEqual(['a', 'b']);
    expect(api.requests.slice(0, 5)).toEqual([
      'list rv=',
      'list rv=',
      'watch rv=20',
      'list rv=',
      'watch rv=30',
    ]);
  });
});

describe('ClusterCache on a slow API server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  // Beside two CPU hogs a real kube-apiserver answered lists in over 2 s. Aborting each such list at the
  // slack before staleness (here 6 s - 4 s) and starting another as slow leaves the cache unlisted, and a
  // pod created and removed meanwhile is never seen, so never billed.
  it('waits for a list slower than the slack before staleness instead of aborting it', async () => {
    const requests: string[] = [];
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const watch = url.searchParams.get('watch') === 'true';
      requests.push(`${watch ? 'watch' : 'list'} ${url.pathname}`);
      if (watch) return void res.writeHead(200, { 'content-type': 'application/json' }).write('');
      const kind = url.pathname.endsWith('/pods') ? 'PodList' : 'NodeList';
      const items = kind === 'PodList' ? [pod('a', '5')] : [];
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind, apiVersion: 'v1', metadata: { resourceVersion: '10' }, items }));
      }, 2_500);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const kc = createKubeConfig({ k8sApiUrl: `http://127.0.0.1:${port}`, kubeconfig: undefined });
    const errors: string[] = [];
    const cache = new ClusterCache(
      kc,
      logger,
      { onError: (_kind, error) => errors.push(String(error)) },
      { relistMs: 4_000, staleAfterMs: 6_000 },
    );
    // Each list answers after 2.5 s: a cache that waits for it is listed well inside 5 s.
    const listed = await Promise.race([
      cache.start().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000)),
    ]);
    await cache.stop();
    expect(errors).toEqual([]);
    expect(listed).toBe(true);
    expect(cache.pods.get('uid-a')).toBeDefined();
    expect(requests.filter((request) => request.startsWith('list'))).toHaveLength(2);
  });
});
