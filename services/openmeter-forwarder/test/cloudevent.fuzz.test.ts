import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PoisonRecordError, USAGE_QUANTITIES } from '@gpu-meter/kit/contracts';
import { invalidReason } from '../../../test/support/fake-openmeter.js';
import { fuzz, nastyString, usageEventArb } from '../../../test/support/fuzz.js';
import { toCloudEvent } from '../src/cloudevent.js';

/**
 * The forwarder maps each decoded usage event inside `decode`: a throw there that is not PoisonRecordError
 * is retried forever and stalls the partition. So the mapping either produces an event OpenMeter accepts
 * (checked with the fake OpenMeter's validation, after the JSON round trip the request makes) and that
 * carries every quantity as a number, or throws PoisonRecordError (dead letter).
 */
const options = fc.record({
  source: fc.option(fc.constantFrom('gpu-meter/eu-1', 'x'), { nil: undefined }),
  type: fc.constantFrom('gpu-usage', 'gpu.usage.v1'),
  subjectMap: fc.dictionary(fc.oneof(fc.constant('acme'), nastyString), fc.constantFrom('customer-1', 'ü'), {
    noNullPrototype: true,
  }),
});

describe('usage event → CloudEvent under random events', () => {
  it('yields an event OpenMeter accepts with every quantity intact, or a poison error', () => {
    fuzz(
      fc.property(usageEventArb, options, (event, mapping) => {
        let cloudEvent;
        try {
          cloudEvent = toCloudEvent(event, mapping);
        } catch (error) {
          expect(error).toBeInstanceOf(PoisonRecordError);
          expect((error as PoisonRecordError).message.length).toBeGreaterThan(0);
          return;
        }
        const sent = JSON.parse(JSON.stringify(cloudEvent)) as {
          subject: string;
          id: string;
          data: Record<string, unknown>;
        };
        const reason = invalidReason(sent);
        // An empty id or subject is refused by OpenMeter with a 400; the forwarder bisects the batch and
        // dead-letters that one event (bisect.test.ts), so it is a dead-letter path too, not a stall.
        if (reason !== undefined) {
          expect(reason).toMatch(/^(id|subject) is required$/);
          expect(sent.id === '' || sent.subject === '').toBe(true);
          return;
        }
        expect(Date.parse(cloudEvent.time)).toBe(event.windowStartMs);
        // `===`: JSON writes -0 as 0, the same amount.
        for (const q of USAGE_QUANTITIES)
          expect(sent.data[q] === event[q], `${q}: ${String(sent.data[q])}`).toBe(true);
      }),
      2000,
    );
  });
});
