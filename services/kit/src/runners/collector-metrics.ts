import type { Registry } from 'prom-client';
import { metricsOn } from '../runtime/metrics.js';

/**
 * The metrics alike in every collector: what its sample publisher feeds (`PublisherMetrics`), the size of
 * the send buffer, its Kubernetes watches (`WatchCounters`) and the samples it could not attribute. The
 * collector's own metrics come beside them.
 */
export function sharedCollectorMetrics(registry: Registry, bufferSize: () => number) {
  const { counter, gauge } = metricsOn(registry);
  return {
    samplesPublished: counter(
      'gpumeter_samples_published_total',
      'Samples acknowledged by Kafka (acks=all).',
    ),
    samplesDropped: counter(
      'gpumeter_samples_dropped_total',
      'Samples never delivered, by reason: buffer_full (Kafka unreachable too long), shutdown (not acknowledged within the drain time), too_large (refused even alone, no dead-letter topic).',
      ['reason'],
    ),
    samplesDeadLettered: counter(
      'gpumeter_samples_dead_lettered_total',
      'Samples sent to the collector dead-letter topic, by reason: identity_too_long, message_too_large.',
      ['reason'],
    ),
    sampleFieldsTruncated: counter(
      'gpumeter_sample_fields_truncated_total',
      'String fields cut to SAMPLE_MAX_STRING_LENGTH (with a marker) before sending, by field.',
      ['field'],
    ),
    sendErrors: counter('gpumeter_send_errors_total', 'Failed sends to Kafka (retried).'),
    bufferSize: gauge('gpumeter_send_buffer_size', 'Samples waiting to be sent to Kafka.', [], {
      read: bufferSize,
    }),
    watchErrors: counter(
      'gpumeter_watch_errors_total',
      'Kubernetes list/watch failures (the informer restarts after a back-off).',
      ['kind'],
    ),
    lists: counter(
      'gpumeter_kubernetes_lists_total',
      'Kubernetes lists: the first, each periodic relist (WATCH_RELIST_INTERVALS), and each relist after 410 Gone or a failed list.',
      ['kind'],
    ),
    unattributedSamples: counter(
      'gpumeter_unattributed_samples_total',
      'Samples of pods with no project, billed to the fallback subject.',
    ),
  };
}
