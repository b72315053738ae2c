/**
 * What a task writes next to each committed offset (atomically, in the transaction's TxnOffsetCommit):
 * enough to replay from that offset and make every decision the first run made.
 */
export interface OffsetMetadata {
  /** Watermark (max observedAtMs) of this input just before the committed offset; null if none yet. */
  readonly wm: number | null;
  /** End of the task's last closed window; null if none closed yet. */
  readonly closed: number | null;
  /** Offset after the last record processed when this was committed. */
  readonly through: number;
  /** The deployment's task count (TASKS) when this was committed; absent in metadata of older releases. */
  readonly tasks?: number;
}

const VERSION = 1;

export function encodeOffsetMetadata(m: OffsetMetadata): string {
  return JSON.stringify({ v: VERSION, wm: m.wm, closed: m.closed, through: m.through, tasks: m.tasks });
}

/** Undefined for absent or foreign metadata: the caller then starts that input without replay knowledge. */
export function decodeOffsetMetadata(text: string | null | undefined): OffsetMetadata | undefined {
  if (!text) return undefined;
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    const nullableInt = (v: unknown) => v === null || Number.isSafeInteger(v);
    if (
      raw.v !== VERSION ||
      !nullableInt(raw.wm) ||
      !nullableInt(raw.closed) ||
      !Number.isSafeInteger(raw.through) ||
      (raw.tasks !== undefined && !Number.isSafeInteger(raw.tasks))
    )
      return undefined;
    return {
      wm: raw.wm as number | null,
      closed: raw.closed as number | null,
      through: raw.through as number,
      ...(raw.tasks === undefined ? {} : { tasks: raw.tasks as number }),
    };
  } catch {
    return undefined;
  }
}
