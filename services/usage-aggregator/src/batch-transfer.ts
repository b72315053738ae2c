/**
 * A fetched batch's record values packed into one transferable buffer, so handing a batch to the driver
 * worker costs one copy instead of one structured clone per record. Null values (tombstones) keep their
 * place as length -1 and reach the driver as poison, like any other undecodable record.
 */
export interface PackedValues {
  readonly bytes: ArrayBuffer;
  readonly lengths: Int32Array;
}

export function packValues(values: ReadonlyArray<Buffer | null>): PackedValues {
  const lengths = new Int32Array(values.length);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    lengths[i] = value ? value.length : -1;
    total += value ? value.length : 0;
  }
  const bytes = new ArrayBuffer(total);
  const view = new Uint8Array(bytes);
  let at = 0;
  for (const value of values) {
    if (!value) continue;
    view.set(value, at);
    at += value.length;
  }
  return { bytes, lengths };
}

/** The packed values as one Buffer: value i is bytes[starts[i], starts[i] + lengths[i]), null when lengths[i] < 0. */
export interface PackedView {
  readonly bytes: Buffer;
  readonly starts: Int32Array;
  readonly lengths: Int32Array;
}

export function viewValues({ bytes, lengths }: PackedValues): PackedView {
  const starts = new Int32Array(lengths.length);
  let at = 0;
  for (let i = 0; i < lengths.length; i++) {
    starts[i] = at;
    at += Math.max(0, lengths[i]!);
  }
  return { bytes: Buffer.from(bytes), starts, lengths };
}
