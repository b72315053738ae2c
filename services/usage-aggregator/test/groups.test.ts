import { describe, expect, it } from 'vitest';
import { GroupAccumulator, groupKey, sameGroup, usageEventId } from '../src/groups.js';
import type { GroupDims } from '../src/samples.js';

const dims = (over: Partial<GroupDims> = {}): GroupDims => ({
  subject: 'acme',
  clusterId: 'c1',
  project: 'p',
  department: 'd',
  workloadType: 'Training',
  gpuType: 'A100',
  ...over,
});

describe('sameGroup (how a record finds its group)', () => {
  it('holds exactly when groupKey is equal, including fields holding separators', () => {
    const all = [
      dims(),
      dims({ project: 'p\u0000d', department: '' }),
      dims({ project: 'p', department: '\u0000d' }),
      dims({ subject: 'acme\u0000c1', clusterId: '' }),
      dims({ subject: '', clusterId: 'acme' }),
      dims({ clusterId: 'c1\u0000p' }),
      dims({ gpuType: '' }),
      dims({ subject: 'x', project: '["acme","c1"' }),
    ];
    for (const a of all) for (const b of all) expect(sameGroup(a, b)).toBe(groupKey(a) === groupKey(b));
    expect(sameGroup(dims(), { ...dims() })).toBe(true);
  });

  it('a group keeps and emits only the dimensions of the record that started it', () => {
    const decoded = { ...dims(), id: 'sample-1', podName: 'pod-a', gpus: 2 };
    const event = new GroupAccumulator(decoded).toEvent(0, 60_000, 'event-id');
    expect(event).not.toHaveProperty('podName');
    expect(event).not.toHaveProperty('gpus');
    expect(event.id).not.toBe('sample-1');
    expect(event).toMatchObject(dims());
  });

  it("a usage event's id names its group, window and task: two tasks' parts of one window never collide", () => {
    const id = usageEventId(dims(), 0, 60_000, 0);
    expect(usageEventId({ ...dims() }, 0, 60_000, 0)).toBe(id);
    expect(usageEventId(dims(), 0, 60_000, 1)).not.toBe(id);
    expect(usageEventId(dims(), 60_000, 120_000, 0)).not.toBe(id);
    expect(usageEventId(dims({ gpuType: 'H100' }), 0, 60_000, 0)).not.toBe(id);
  });
});
