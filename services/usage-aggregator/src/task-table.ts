/**
 * The life of each task in this instance, as one explicit state table (after Kafka Streams' task states and
 * kafkajs's transaction state machine). Any call not in the table throws `IllegalTaskTransition`, naming the
 * task, its state and the call; a failure reported for a dead generation is recognised and ignored.
 *
 * | from      | call          | to        | when                                                     |
 * | --------- | ------------- | --------- | -------------------------------------------------------- |
 * | any       | reassign      | pending   | a rebalance; tasks no longer owned are forgotten          |
 * | pending   | beginRestore  | restoring |                                                          |
 * | fenced    | beginRestore  | restoring | fenced for longer than the hold                          |
 * | restoring | restored      | running   | at a new generation                                      |
 * | restoring | restoreFailed | pending   |                                                          |
 * | running   | failed(g)     | pending   | g is the running generation (else ignored)               |
 * | running   | fenced(g)     | fenced    | g is the running generation (else ignored)               |
 *
 * - pending: owned, nothing restored; a batch or the next idle tick restores it.
 * - restoring: fencing the previous owner (InitProducerId), reading committed offsets, restoring the driver.
 * - running: restored at a generation; batches, ticks and transactions flow. Answers and transactions of
 *   any other generation are ignored.
 * - fenced: another instance owns the transactional id now (this one was paused or cut off past the session
 *   timeout). Restoring here would fence it back in turn, so the task waits for this instance's rebalance,
 *   or for the hold (2 × SESSION_TIMEOUT_MS) if none comes (e.g. the coordinator only expired a slow
 *   transaction).
 */
export type TaskState = 'pending' | 'restoring' | 'running' | 'fenced';

export class IllegalTaskTransition extends Error {
  constructor(task: number, state: string, call: string) {
    super(`task ${task}: ${call} is not allowed while it is ${state}`);
    this.name = 'IllegalTaskTransition';
  }
}

interface TaskEntry {
  state: TaskState;
  /** The generation of its latest restore (0 before the first); see `isCurrent`. */
  generation: number;
  /** When it was fenced (fenced only). */
  fencedAtMs: number;
}

export class TaskTable {
  private readonly entries = new Map<number, TaskEntry>();
  /** Generations are never reused, across tasks and rebalances, so an old answer can never look current. */
  private lastGeneration = 0;

  /** `fenceHoldMs`: how long a fenced task waits for a rebalance before it is restored anyway. */
  constructor(private readonly fenceHoldMs: number) {}

  /**
   * A rebalance: this instance forgets every task's state (what was decided and not committed is redone by
   * the new owner) and owns `owned`, each pending. Returns the tasks that were running, whose driver state
   * must be dropped.
   */
  reassign(owned: readonly number[]): number[] {
    const wasRunning = this.running().map(([task]) => task);
    const generations = new Map([...this.entries].map(([task, entry]) => [task, entry.generation]));
    this.entries.clear();
    for (const task of owned)
      this.entries.set(task, { state: 'pending', generation: generations.get(task) ?? 0, fencedAtMs: 0 });
    return wasRunning;
  }

  /** The tasks of the current assignment, in order. */
  owned(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }

  stateOf(task: number): TaskState | undefined {
    return this.entries.get(task)?.state;
  }

  /** The running tasks with their generations. */
  running(): Array<[task: number, generation: number]> {
    return [...this.entries]
      .filter(([, entry]) => entry.state === 'running')
      .map(([task, entry]): [number, number] => [task, entry.generation]);
  }

  /** The task's running generation, or undefined when it is not running. */
  generationOf(task: number): number | undefined {
    const entry = this.entries.get(task);
    return entry?.state === 'running' ? entry.generation : undefined;
  }

  /** Whether an answer or a transaction of `generation` still belongs to the task's running state. */
  isCurrent(task: number, generation: number): boolean {
    return this.generationOf(task) === generation;
  }

  /** Whether `beginRestore` is allowed now: pending, or fenced for longer than the hold. */
  restorable(task: number, nowMs: number): boolean {
    const entry = this.entries.get(task);
    if (entry?.state === 'pending') return true;
    return entry?.state === 'fenced' && nowMs - entry.fencedAtMs > this.fenceHoldMs;
  }

  /** The owned tasks that may be restored now. */
  restorableTasks(nowMs: number): number[] {
    return this.owned().filter((task) => this.restorable(task, nowMs));
  }

  beginRestore(task: number, nowMs: number): void {
    if (!this.restorable(task, nowMs)) {
      const entry = this.entries.get(task);
      const state = entry?.state === 'fenced' ? 'fenced (still held)' : (entry?.state ?? 'not owned');
      throw new IllegalTaskTransition(task, state, 'beginRestore');
    }
    this.entries.get(task)!.state = 'restoring';
  }

  /** The restore succeeded: the task runs at a new generation, which this returns. */
  restored(task: number): number {
    const entry = this.expect(task, 'restoring', 'restored');
    entry.state = 'running';
    entry.generation = ++this.lastGeneration;
    return entry.generation;
  }

  restoreFailed(task: number): void {
    this.expect(task, 'restoring', 'restoreFailed').state = 'pending';
  }

  /**
   * A batch or transaction of `generation` failed: the task's memory is ahead of Kafka, so it goes back to
   * pending. False (and nothing changes) when that generation is no longer the running one.
   */
  failed(task: number, generation: number): boolean {
    if (!this.isCurrent(task, generation)) return false;
    this.entries.get(task)!.state = 'pending';
    return true;
  }

  /** A transaction of `generation` was fenced by a newer owner; false when that generation is dead. */
  fenced(task: number, generation: number, nowMs: number): boolean {
    if (!this.isCurrent(task, generation)) return false;
    const entry = this.entries.get(task)!;
    entry.state = 'fenced';
    entry.fencedAtMs = nowMs;
    return true;
  }

  private expect(task: number, state: TaskState, call: string): TaskEntry {
    const entry = this.entries.get(task);
    if (entry?.state !== state) throw new IllegalTaskTransition(task, entry?.state ?? 'not owned', call);
    return entry;
  }
}
