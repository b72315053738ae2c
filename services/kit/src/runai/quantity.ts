/**
 * Kubernetes resource quantities (`resource.Quantity`): a signed decimal number with an optional suffix,
 * binary (Ki Mi Gi Ti Pi Ei), decimal SI (n u m k M G T P E) or a decimal exponent (e3, E-2). Returns the
 * value in base units (cores for CPU, bytes for memory). Throws on text that is not a quantity, so a
 * malformed request is reported rather than silently billed as zero.
 */
const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E)?)$/;

export class QuantityError extends Error {
  constructor(readonly text: string) {
    super(`not a Kubernetes quantity: ${JSON.stringify(text)}`);
    this.name = 'QuantityError';
  }
}

export function parseQuantity(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = QUANTITY.exec(text.trim());
  if (!match) throw new QuantityError(text);
  const [, number, binary, exponent, decimal] = match;
  const value = binary
    ? Number(number) * BINARY[binary]!
    : scaleDecimal(number!, exponent ? Number(exponent.slice(1)) : DECIMAL[decimal ?? '']!);
  // "1e400" matches the grammar but is no amount (Infinity would be billed).
  if (!Number.isFinite(value)) throw new QuantityError(text);
  return value;
}

/**
 * Multiplies by 10^exponent through the decimal text, not floating point: "100m" is exactly 0.1 and
 * "1.5G" exactly 1500000000, as a bill needs.
 */
function scaleDecimal(number: string, exponent: number): number {
  if (exponent === 0) return Number(number);
  return Number(`${number}e${exponent}`);
}

/** Bytes from a quantity, rounded to a whole byte (Kubernetes rounds memory up to an integer too). */
export function parseBytes(text: string | number): number {
  return Math.ceil(parseQuantity(text));
}

/**
 * An amount a tenant writes in an annotation (`runai-allocated-gpus: "0.5"`, `gpu-memory: "40960"`): plain
 * decimal digits with an optional fraction, nothing else. Number() would take "0x10" as 16, "1e17",
 * " 1 " and "Infinity"; Run:ai never writes those, so such text is no amount. undefined when it is none.
 */
const DECIMAL_AMOUNT = /^\d+(?:\.\d+)?$/;

export function parseDecimal(text: string): number | undefined {
  if (!DECIMAL_AMOUNT.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
