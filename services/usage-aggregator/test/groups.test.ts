import { describe, expect, it } from 'vitest';
import { groupKey, groupMapKey } from '../src/groups.js';
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

describe('groupMapKey (the per-record map key)', () => {
  it('is equal exactly when groupKey is, including fields holding the separator', () => {
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
    for (const a of all)
      for (const b of all) expect(groupMapKey(a) === groupMapKey(b)).toBe(groupKey(a) === groupKey(b));
    expect(groupMapKey(dims())).toBe(groupMapKey({ ...dims() }));
  });
});
