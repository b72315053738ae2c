import type { K8sObject } from './k8s-objects.js';
import type { Change } from './timeline.js';

/**
 * The API server's store: current objects, one global resourceVersion (like etcd's revision), the event history
 * watches replay from, and compaction (`expire`). It applies timeline changes up to a time; it never reads a clock.
 */
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface WatchEvent {
  rv: number;
  type: EventType;
  kind: 'Pod' | 'Node';
  object: K8sObject;
}

const keyOf = (o: K8sObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class ClusterState {
  private rv = 0;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private oldestWatchableRv = 0;
  private history: WatchEvent[] = [];
  private next = 0;
  private readonly objects = { Pod: new Map<string, K8sObject>(), Node: new Map<string, K8sObject>() };
  private readonly listeners = new Set<(event: WatchEvent) => void>();
  /** Labels edited at run time (`setLabels`), per object key: they stay on the object's later changes. */
  private readonly labelEdits = new Map<string, Record<string, string>>();

  constructor(private timeline: readonly Change[]) {}

  get resourceVersion(): number {
    return this.rv;
  }

  /** Applies every change due at or before offset `atMs`, notifying listeners in order. */
  advanceTo(atMs: number): void {
    while (this.next < this.timeline.length && this.timeline[this.next]!.atMs <= atMs) {
      this.apply(this.timeline[this.next]!);
      this.next++;
    }
  }

  /**
   * Replaces the timeline before the scenario proper begins (a postponed start): only the objects that exist
   * from before the start (offset -Infinity: nodes, exporters) may have been applied, and the new timeline
   * must begin with as many of them, so what a watcher saw so far holds under both.
   */
  replacePending(timeline: readonly Change[]): void {
    const initial = (changes: readonly Change[]) =>
      changes.slice(0, this.next).every((c) => c.atMs === -Infinity);
    if (!initial(this.timeline) || !initial(timeline))
      throw new Error('the scenario has begun: its timeline can no longer be replaced');
    this.timeline = timeline;
  }

  /** Offset of the next pending change, or undefined when the timeline is exhausted. */
  nextChangeAt(): number | undefined {
    return this.timeline[this.next]?.atMs;
  }

  private apply(change: Change): void {
    const store = this.objects[change.kind];
    const key = keyOf(change.object);
    const existed = store.has(key);
    if (change.action === 'delete' && !existed) return;
    this.rv++;
    const object = structuredClone(change.object);
    object.metadata.resourceVersion = String(this.rv);
    const edits = this.labelEdits.get(`${change.kind}:${key}`);
    if (edits) object.metadata.labels = { ...(object.metadata.labels as object), ...edits };
    let type: EventType;
    if (change.action === 'delete') {
      store.delete(key);
      type = 'DELETED';
    } else {
      store.set(key, object);
      type = existed ? 'MODIFIED' : 'ADDED';
    }
    const event: WatchEvent = { rv: this.rv, type, kind: change.kind, object };
    this.history.push(event);
    for (const listener of this.listeners) listener(event);
  }

  /**
   * `kubectl label --overwrite` of a current object: a MODIFIED event now, and the labels stay on the object's
   * later timeline changes (a pod that ends keeps its edited labels). False when there is no such object.
   */
  setLabels(kind: 'Pod' | 'Node', namespace: string, name: string, labels: Record<string, string>): boolean {
    const object = this.get(kind, namespace, name);
    if (!object) return false;
    const key = `${kind}:${keyOf(object)}`;
    this.labelEdits.set(key, { ...this.labelEdits.get(key), ...labels });
    this.apply({ atMs: Number.NaN, order: 0, kind, action: 'upsert', object });
    return true;
  }

  /**
   * `kubectl apply` of an object that is not in the scenario (a test's extra pod): ADDED (or MODIFIED) now,
   * kept until something deletes it; no timeline change ever touches it unless it has a scenario object's name.
   */
  put(object: K8sObject): void {
    const kind = object.kind === 'Node' ? 'Node' : 'Pod';
    this.apply({ atMs: Number.NaN, order: 0, kind, action: 'upsert', object });
  }

  list(kind: 'Pod' | 'Node'): K8sObject[] {
    return [...this.objects[kind].values()];
  }

  get(kind: 'Pod' | 'Node', namespace: string, name: string): K8sObject | undefined {
    return this.objects[kind].get(`${namespace}/${name}`);
  }

  /** Events after `rv` of one kind, or 'gone' when history no longer reaches back that far. */
  eventsSince(kind: 'Pod' | 'Node', rv: number): WatchEvent[] | 'gone' {
    if (rv < this.oldestWatchableRv) return 'gone';
    return this.history.filter((e) => e.rv > rv && e.kind === kind);
  }

  /**
   * Compaction: forget the history. The revision moves on by one (as a compaction does in etcd), so a client that
   * relists gets a resourceVersion it can watch from, while every older one is Gone.
   */
  expire(): void {
    this.rv++;
    this.oldestWatchableRv = this.rv;
    this.history = [];
  }

  subscribe(listener: (event: WatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
