import { PoisonRecordError, USAGE_QUANTITIES, type UsageEvent } from '@gpu-meter/kit/contracts';

/** A CloudEvents 1.0 event as OpenMeter ingests it (JSON format). */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: Record<string, string | number | boolean>;
}

export interface CloudEventOptions {
  /** Fixed source; undefined = `gpu-meter/<clusterId>` of each event. */
  source?: string | undefined;
  type: string;
  subjectMap: Readonly<Record<string, string>>;
}

/**
 * Pure mapping usage event → CloudEvent. The id is the usage event's id and the source is stable, so a
 * resend (retry, restart, replay) is the same (source, id) and OpenMeter counts it once. `time` is the
 * window start: OpenMeter puts the whole quantity in the window the event's time falls in.
 */
export function toCloudEvent(event: UsageEvent, options: CloudEventOptions): CloudEvent {
  checkMappable(event);
  const data: CloudEvent['data'] = {
    clusterId: event.clusterId,
    project: event.project,
    department: event.department,
    workloadType: event.workloadType,
    gpuType: event.gpuType,
    windowStart: new Date(event.windowStartMs).toISOString(),
    windowEnd: new Date(event.windowEndMs).toISOString(),
    windowStartMs: event.windowStartMs,
    windowEndMs: event.windowEndMs,
    sampleCount: event.sampleCount,
    correction: event.correction,
  };
  for (const quantity of USAGE_QUANTITIES) data[quantity] = event[quantity];
  return {
    specversion: '1.0',
    id: event.id,
    source: options.source ?? `gpu-meter/${event.clusterId}`,
    type: options.type,
    // Own keys only: a subject named "constructor" or "toString" must not pick up Object.prototype's.
    subject: Object.hasOwn(options.subjectMap, event.subject)
      ? options.subjectMap[event.subject]!
      : event.subject,
    time: new Date(event.windowStartMs).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

/**
 * What JSON and Date cannot carry is poison, not a retry: a window outside Date's range would throw a
 * RangeError on every attempt (stalling the partition), and a NaN or infinite quantity would be sent as
 * null and silently not billed (both found by cloudevent.fuzz.test.ts).
 */
function checkMappable(event: UsageEvent): void {
  const problems: string[] = [];
  for (const bound of ['windowStartMs', 'windowEndMs'] as const) {
    if (Number.isNaN(new Date(event[bound]).getTime()))
      problems.push(`${bound} ${event[bound]} is not a date`);
  }
  for (const quantity of USAGE_QUANTITIES) {
    if (!Number.isFinite(event[quantity])) problems.push(`${quantity} is not a finite number`);
  }
  if (problems.length > 0) {
    throw new PoisonRecordError('VALIDATION_FAILED', `usage event ${event.id}: ${problems.join('; ')}`);
  }
}
