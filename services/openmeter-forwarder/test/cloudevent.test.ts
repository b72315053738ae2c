import { describe, expect, it } from 'vitest';
import { USAGE_QUANTITIES } from '@gpu-meter/kit/contracts';
import { usageEventFixture } from '../../../test/support/fixtures.js';
import { invalidReason } from '../../../test/support/fake-openmeter.js';
import { toCloudEvent } from '../src/cloudevent.js';

const options = { type: 'gpu-usage', subjectMap: {} };

describe('toCloudEvent', () => {
  it('builds a CloudEvents 1.0 event: id = usage event id, time = window start', () => {
    const event = usageEventFixture();
    const cloudEvent = toCloudEvent(event, options);
    expect(cloudEvent).toMatchObject({
      specversion: '1.0',
      id: event.id,
      source: 'gpu-meter/cluster-a',
      type: 'gpu-usage',
      subject: 'acme',
      time: '2026-01-01T00:00:00.000Z',
    });
    expect(invalidReason(cloudEvent)).toBeUndefined();
  });

  it('carries the dimensions, every quantity as a number, and the window end', () => {
    const event = usageEventFixture({ gpuAllocationSeconds: 0.1 + 0.2 });
    const { data } = toCloudEvent(event, options);
    expect(data).toMatchObject({
      clusterId: 'cluster-a',
      project: 'team-a',
      department: 'research',
      workloadType: 'Training',
      gpuType: 'NVIDIA-A100-SXM4-80GB',
      windowEnd: '2026-01-01T00:01:00.000Z',
      windowEndMs: 1_767_225_660_000,
      sampleCount: 4,
      correction: false,
    });
    for (const quantity of USAGE_QUANTITIES) expect(data[quantity]).toBe(event[quantity]);
  });

  it('uses a configured source and type as given', () => {
    const cloudEvent = toCloudEvent(usageEventFixture(), { ...options, source: 'prod-eu', type: 'gpu' });
    expect(cloudEvent.source).toBe('prod-eu');
    expect(cloudEvent.type).toBe('gpu');
  });

  it('maps subjects through the subject map and passes unmapped ones unchanged', () => {
    const subjectMap = { acme: 'customer-0001' };
    expect(toCloudEvent(usageEventFixture(), { ...options, subjectMap }).subject).toBe('customer-0001');
    expect(toCloudEvent(usageEventFixture({ subject: 'globex' }), { ...options, subjectMap }).subject).toBe(
      'globex',
    );
  });

  it('is deterministic: the same usage event always gives the same CloudEvent (safe resends)', () => {
    expect(toCloudEvent(usageEventFixture(), options)).toEqual(toCloudEvent(usageEventFixture(), options));
  });
});
