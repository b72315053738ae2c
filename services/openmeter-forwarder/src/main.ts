import { ErrorCodes } from '@gpu-meter/kit/contracts';
import { deadLetterMessage } from '@gpu-meter/kit/kafka';
import { runUsageEventsSink } from '@gpu-meter/kit/runners/usage-sink';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { deliverBisecting } from './bisect.js';
import { RejectionBreaker } from './breaker.js';
import { toCloudEvent } from './cloudevent.js';
import { loadConfig, SERVICE_NAME } from './config.js';
import { OpenMeterClient } from './openmeter-client.js';
import { DeliveryRetryError, RESPONSE_BODY_HEADER } from './outcome.js';

runUsageEventsSink({
  service: SERVICE_NAME,
  loadConfig,
  setup: async ({ config, logger, metrics, sendDeadLetters }) => {
    const { counter, gauge } = metricsOn(metrics);
    const delivered = counter('gpumeter_forwarder_events_delivered_total', 'Events OpenMeter accepted.');
    const deadLettered = counter(
      'gpumeter_forwarder_dead_letters_total',
      'Events dead-lettered, by reason.',
      ['reason'],
    );
    const retries = counter('gpumeter_forwarder_retries_total', 'Failed attempts, by stage.', ['stage']);
    const requests = counter('gpumeter_forwarder_requests_total', 'POSTs to OpenMeter, by outcome.', [
      'outcome',
    ]);

    const breakerOpen = gauge(
      'gpumeter_forwarder_breaker_open',
      '1 while OpenMeter rejects most of what it is sent (treated as an outage: nothing dead-lettered).',
    );
    const breakerTrips = counter(
      'gpumeter_forwarder_breaker_trips_total',
      'Times the rejection circuit breaker opened.',
    );
    const breaker = new RejectionBreaker<object>({
      rejectPercent: config.breakerRejectPercent,
      minEvents: config.breakerMinEvents,
      consecutiveBatches: config.breakerConsecutiveBatches,
    });
    // Parts of a batch OpenMeter took before a retry: the retry must not post them again.
    const deliveredItems = new WeakSet<object>();

    const client = new OpenMeterClient({
      url: config.openmeterUrl,
      token: config.openmeterToken,
      timeoutMs: config.requestTimeoutMs,
      retryAfterMaxMs: config.retryAfterMaxMs,
    });
    const mapping = { source: config.eventSource, type: config.eventType, subjectMap: config.subjectMap };

    return {
      maxBatch: config.batchMaxEvents,
      map: (event) => toCloudEvent(event, mapping),
      flush: async (items) => {
        const pending = items.filter((item) => !deliveredItems.has(item));
        let unconfirmed = 0;
        const rejected = await deliverBisecting(
          pending,
          async (part) => {
            const outcome = await client.post(part.map((item) => item.value));
            requests.inc({ outcome: outcome.kind });
            if (outcome.kind === 'retry') {
              logger.warn(
                { status: outcome.status, retryAfterMs: outcome.retryAfterMs, events: part.length },
                `OpenMeter: ${outcome.reason}`,
              );
            }
            return outcome;
          },
          {
            onDelivered: (part) => {
              breaker.accepted();
              for (const item of part) deliveredItems.add(item);
              delivered.inc(part.length);
            },
            // Judged at the moment of the rejection: an acceptance since its first rejection proves it bad.
            onRejected: (item) => {
              if (!breaker.confirmRejection(item)) unconfirmed += 1;
            },
            stopWhen: (count) => breaker.exceeded(count, pending.length),
          },
        );
        const { hold, changed } = breaker.judge(
          rejected.length,
          pending.length,
          unconfirmed,
          rejected[0]?.status,
        );
        breakerOpen.set(breaker.open ? 1 : 0);
        if (changed && breaker.open) {
          breakerTrips.inc();
          logger.error(
            { rejected: rejected.length, events: pending.length },
            `OpenMeter circuit breaker open: ${breaker.reason}`,
          );
        } else if (changed) {
          logger.info('OpenMeter circuit breaker closed: batches go through again');
        }
        if (hold) {
          const error = new DeliveryRetryError({
            kind: 'retry',
            ...(rejected[0] ? { status: rejected[0].status } : {}),
            reason:
              breaker.reason ??
              `${unconfirmed} rejected events not yet confirmed bad: held until rejected again after OpenMeter accepted others`,
          });
          // A rejection is proven only by OpenMeter accepting newer events: let the consumer take some.
          error.wantsMoreRecords = true;
          throw error;
        }
        for (const { item, status, body } of rejected) {
          const message = deadLetterMessage(item.source, {
            code: ErrorCodes.SINK_REJECTED.code,
            message: `OpenMeter answered ${status} for event ${item.value.id}`,
            service: SERVICE_NAME,
          });
          message.headers = { ...message.headers, [RESPONSE_BODY_HEADER]: body.slice(0, 8000) };
          await sendDeadLetters([message]);
          deadLettered.inc({ reason: 'rejected' });
          logger.warn(
            {
              topic: item.source.topic,
              partition: item.source.partition,
              offset: item.source.offset,
              id: item.value.id,
              status,
            },
            'OpenMeter rejected an event; dead-lettered',
          );
        }
      },
      onFlushed: (events, ms) => {
        if (events > 0) logger.info({ events, ms }, 'batch delivered');
      },
      onRetry: (stage, error) => {
        retries.inc({ stage });
        if (error instanceof DeliveryRetryError && (error.status === 401 || error.status === 403)) {
          logger.error({ status: error.status }, 'OpenMeter refused the token; check OPENMETER_TOKEN');
        }
      },
      onDeadLettered: () => deadLettered.inc({ reason: 'undecodable' }),
      readiness: {
        openmeter: () => (breaker.open ? { ready: false, reason: breaker.reason } : true),
      },
      describe: { endpoint: config.openmeterUrl },
    };
  },
});
