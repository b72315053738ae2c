import { describe, expect, it } from 'vitest';
import { IllegalTaskTransition, TaskTable } from '../src/task-table.js';

const HOLD_MS = 60_000;

/** A table owning `tasks`, each restored once. */
function runningTable(...tasks: number[]): TaskTable {
  const table = new TaskTable(HOLD_MS);
  table.reassign(tasks);
  for (const task of tasks) {
    table.beginRestore(task, 0);
    table.restored(task);
  }
  return table;
}

describe('TaskTable: the legal ways of a task', () => {
  it('pending → restoring → running, at a new generation each restore', () => {
    const table = new TaskTable(HOLD_MS);
    table.reassign([0, 2]);
    expect(table.owned()).toEqual([0, 2]);
    expect(table.stateOf(0)).toBe('pending');
    expect(table.restorableTasks(0)).toEqual([0, 2]);
    table.beginRestore(0, 0);
    expect(table.stateOf(0)).toBe('restoring');
    const first = table.restored(0);
    expect(table.running()).toEqual([[0, first]]);
    expect(table.failed(0, first)).toBe(true);
    table.beginRestore(0, 0);
    const second = table.restored(0);
    expect(second).toBeGreaterThan(first);
    expect(table.isCurrent(0, first)).toBe(false);
    expect(table.isCurrent(0, second)).toBe(true);
  });

  it('a failed restore leaves the task pending, to be restored by a batch or the next tick', () => {
    const table = new TaskTable(HOLD_MS);
    table.reassign([1]);
    table.beginRestore(1, 0);
    table.restoreFailed(1);
    expect(table.stateOf(1)).toBe('pending');
    expect(table.restorable(1, 0)).toBe(true);
  });

  it('a rebalance forgets every state, fencing included, and names the tasks that were running', () => {
    const table = runningTable(0, 1, 2);
    const [, generationOf1] = table.running()[1]!;
    table.fenced(1, generationOf1, 1_000);
    expect(table.reassign([1, 3])).toEqual([0, 2]);
    expect(table.owned()).toEqual([1, 3]);
    expect(table.stateOf(1)).toBe('pending'); // restorable at once: this instance owns it again
    expect(table.stateOf(0)).toBeUndefined();
    expect(table.running()).toEqual([]);
  });

  it('generations are never reused, so an answer from before a rebalance never looks current', () => {
    const table = runningTable(0);
    const [[, before]] = table.running() as [[number, number]];
    table.reassign([0]);
    table.beginRestore(0, 0);
    const after = table.restored(0);
    expect(after).not.toBe(before);
    expect(table.failed(0, before)).toBe(false);
    expect(table.stateOf(0)).toBe('running');
  });
});

describe('TaskTable: fencing', () => {
  it('a fenced task is held for FENCE_HOLD_MS, then restorable again', () => {
    const table = runningTable(0);
    const generation = table.generationOf(0)!;
    expect(table.fenced(0, generation, 10_000)).toBe(true);
    expect(table.stateOf(0)).toBe('fenced');
    expect(table.restorable(0, 10_000 + HOLD_MS)).toBe(false);
    expect(() => table.beginRestore(0, 10_000 + HOLD_MS)).toThrow(
      'task 0: beginRestore is not allowed while it is fenced (still held)',
    );
    expect(table.restorableTasks(10_001 + HOLD_MS)).toEqual([0]);
    table.beginRestore(0, 10_001 + HOLD_MS);
    expect(table.stateOf(0)).toBe('restoring');
  });

  it('a fence or failure reported for a dead generation changes nothing', () => {
    const table = runningTable(0);
    const old = table.generationOf(0)!;
    table.failed(0, old);
    table.beginRestore(0, 0);
    const current = table.restored(0);
    expect(table.fenced(0, old, 5_000)).toBe(false);
    expect(table.failed(0, old)).toBe(false);
    expect(table.generationOf(0)).toBe(current);
  });
});

describe('TaskTable: illegal calls throw, naming the task, its state and the call', () => {
  // [what, the calls, the message]; each starts from task 0 running.
  const pendingAgain = (t: TaskTable) => t.failed(0, t.generationOf(0)!);
  it.each<[string, (t: TaskTable) => unknown, string]>([
    [
      'restoring a running task',
      (t) => t.beginRestore(0, 0),
      'task 0: beginRestore is not allowed while it is running',
    ],
    [
      'a second restore while one runs',
      (t) => (pendingAgain(t), t.beginRestore(0, 0), t.beginRestore(0, 0)),
      'task 0: beginRestore is not allowed while it is restoring',
    ],
    [
      'restored without a restore',
      (t) => t.restored(0),
      'task 0: restored is not allowed while it is running',
    ],
    [
      'a restore failing that never began',
      (t) => (pendingAgain(t), t.restoreFailed(0)),
      'task 0: restoreFailed is not allowed while it is pending',
    ],
    [
      'restoring a task not owned',
      (t) => t.beginRestore(7, 0),
      'task 7: beginRestore is not allowed while it is not owned',
    ],
    [
      'restored, of a task not owned',
      (t) => t.restored(7),
      'task 7: restored is not allowed while it is not owned',
    ],
  ])('%s', (_what, calls, message) => {
    const table = runningTable(0);
    expect(() => calls(table)).toThrow(IllegalTaskTransition);
    const again = runningTable(0);
    expect(() => calls(again)).toThrow(message);
  });

  it('an illegal call leaves the state as it was', () => {
    const table = runningTable(0);
    const generation = table.generationOf(0)!;
    expect(() => table.restoreFailed(0)).toThrow(IllegalTaskTransition);
    expect(table.stateOf(0)).toBe('running');
    expect(table.generationOf(0)).toBe(generation);
  });
});
