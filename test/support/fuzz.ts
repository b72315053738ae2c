import fc from 'fast-check';
import {
  ConfigError,
  GpuMeterError,
  PoisonRecordError,
  USAGE_QUANTITIES,
  type UsageEvent,
} from '@gpu-meter/kit/contracts';
import { usageEventFixture } from './fixtures.js';

/**
 * Shared pieces of the fuzz tests (`*.fuzz.test.ts`): a bounded, reproducible runner and mutation
 * arbitraries that start from valid inputs (fixtures, simulator objects, real exposition text) and break
 * them the ways a wire, a buggy producer or a hand edit would.
 *
 * Budget: each property runs `numRuns` cases (scaled by FUZZ_RUNS_SCALE, default 1). Seed: FUZZ_SEED fixes
 * it; unset, every run draws a fresh seed and a failure names it, so any failure is replayable with
 * `FUZZ_SEED=<seed> npx vitest run --project unit <file>`.
 */
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const SCALE = Number(process.env.FUZZ_RUNS_SCALE ?? 1);

function parameters(numRuns: number): { seed: number; numRuns: number } {
  const seed = SEED ?? (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  return { seed, numRuns: Math.max(1, Math.round(numRuns * SCALE)) };
}

function withSeed(error: unknown, seed: number): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`fuzz failure, reproduce with FUZZ_SEED=${seed}\n${message}`, { cause: error });
}

export function fuzz<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  const params = parameters(numRuns);
  try {
    fc.assert(property, params);
  } catch (error) {
    throw withSeed(error, params.seed);
  }
}

export async function fuzzAsync<Ts>(property: fc.IAsyncProperty<Ts>, numRuns: number): Promise<void> {
  const params = parameters(numRuns);
  try {
    await fc.assert(property, params);
  } catch (error) {
    throw withSeed(error, params.seed);
  }
}

/**
 * Runs `fn`; returns its value, or undefined when it threw one of the project's clear errors (a kit error
 * with a code and a message, or one of `allowed`). Anything else is rethrown so the property fails on it.
 */
export function clearOutcome<T>(
  fn: () => T,
  allowed: ReadonlyArray<new (...args: never[]) => Error> = [],
): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (isClearError(error, allowed)) return undefined;
    throw error;
  }
}

export function isClearError(
  error: unknown,
  allowed: ReadonlyArray<new (...args: never[]) => Error> = [],
): boolean {
  const known = [PoisonRecordError, ConfigError, GpuMeterError, ...allowed];
  return known.some((type) => error instanceof type) && (error as Error).message.trim().length > 0;
}

// ---------------------------------------------------------------------------------------------- bytes

type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'varint'; at: number; length: number }
  | { op: 'schemaId'; id: number };

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  // A run of continuation bytes: the longest varints (lengths, longs) a corrupt record can carry.
  fc.record({ op: fc.constant('varint' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ op: fc.constant('schemaId' as const), id: fc.nat() }),
);

function applyByteMutation(input: Buffer, m: ByteMutation): Buffer {
  const at = input.length === 0 ? 0 : m.op === 'schemaId' ? 0 : m.at % (input.length + 1);
  switch (m.op) {
    case 'flip': {
      if (input.length === 0) return input;
      const out = Buffer.from(input);
      out[at % out.length]! ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      if (input.length === 0) return input;
      const out = Buffer.from(input);
      out[at % out.length] = m.byte;
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.length)]);
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.length), input.subarray(at)]);
    case 'varint':
      return Buffer.concat([input.subarray(0, at), Buffer.alloc(m.length, 0xff), input.subarray(at)]);
    case 'schemaId': {
      if (input.length < 5) return input;
      const out = Buffer.from(input);
      out.writeUInt32BE(m.id >>> 0, 1);
      return out;
    }
  }
}

/** A valid byte string with one to four mutations applied. */
export function mutatedBytes(valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(byteMutation, { minLength: 1, maxLength: 4 }))
    .map(([bytes, mutations]) => mutations.reduce(applyByteMutation, bytes));
}

// ----------------------------------------------------------------------------------------------- text

/** Tokens that matter to line-oriented text formats (Prometheus exposition) and to number parsers. */
const TEXT_GARBAGE = [
  '{',
  '}',
  '"',
  '\\',
  '\\"',
  '\n',
  '\r\n',
  '#',
  '# TYPE ',
  '# HELP ',
  ' ',
  '\t',
  '=',
  ',',
  '=""',
  'NaN',
  '+Inf',
  '-Inf',
  '-1',
  '1e309',
  '-0',
  '0x10',
  '1_000',
  '',
  '\u0000',
  '\u00e9',
  '\ud83d\ude80',
  '\ud800',
  'UUID="',
  'GPU_I_ID="',
  'pod=""',
  '} 1 1700000000000\n',
  '{{',
  '}}',
];

type TextMutation =
  | { op: 'insert'; at: number; text: string }
  | { op: 'delete'; at: number; length: number }
  | { op: 'truncate'; at: number }
  | { op: 'replace'; at: number; char: string }
  | { op: 'duplicateLine'; line: number }
  | { op: 'dropLine'; line: number }
  | { op: 'swapLines'; a: number; b: number };

const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(
      fc.constantFrom(...TEXT_GARBAGE),
      fc.string({ maxLength: 8 }),
      fc.string({ unit: 'binary', maxLength: 4 }),
    ),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('replace' as const),
    at: fc.nat(),
    char: fc.constantFrom('"', '{', '}', ' ', '\n', 'x', '9', '-', '.', 'e'),
  }),
  fc.record({ op: fc.constant('duplicateLine' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('dropLine' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
);

function applyTextMutation(input: string, m: TextMutation): string {
  const at = 'at' in m ? m.at % (input.length + 1) : 0;
  const lines = input.split('\n');
  switch (m.op) {
    case 'insert':
      return input.slice(0, at) + m.text + input.slice(at);
    case 'delete':
      return input.slice(0, at) + input.slice(at + m.length);
    case 'truncate':
      return input.slice(0, at);
    case 'replace':
      return input.slice(0, at) + m.char + input.slice(at + 1);
    case 'duplicateLine': {
      const i = m.line % lines.length;
      lines.splice(i, 0, lines[i]!);
      return lines.join('\n');
    }
    case 'dropLine':
      lines.splice(m.line % lines.length, 1);
      return lines.join('\n');
    case 'swapLines': {
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
  }
}

/** Valid text with one to six mutations applied. */
export function mutatedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.array(textMutation, { minLength: 1, maxLength: 6 }))
    .map(([text, mutations]) => mutations.reduce(applyTextMutation, text));
}

// ----------------------------------------------------------------------------------------------- JSON

/** Values a wrong-typed or hand-edited field may hold. */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    undefined,
    '',
    ' ',
    'abc',
    '-1',
    '-0.5',
    'NaN',
    'Infinity',
    '1e400',
    '0x10',
    '{',
    '{}',
    '[]',
    'null',
    '1Gi',
    '100m',
  ),
  fc.constantFrom(
    0,
    -1,
    -0.5,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e308,
    2 ** 53,
  ),
  fc.constantFrom(true, false, [], {}, ['a'], { a: 1 }),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.double(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);

type JsonMutation =
  | { op: 'drop'; path: number }
  | { op: 'set'; path: number; value: unknown }
  | { op: 'retype'; path: number }
  | { op: 'add'; path: number; key: string; value: unknown };

const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), path: fc.nat() }),
  fc.record({ op: fc.constant('set' as const), path: fc.nat(), value: weirdValue }),
  fc.record({ op: fc.constant('retype' as const), path: fc.nat() }),
  fc.record({
    op: fc.constant('add' as const),
    path: fc.nat(),
    key: fc.string({ maxLength: 10 }),
    value: weirdValue,
  }),
);

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) in the value, depth first, so a mutation can address any field. */
function slots(
  value: unknown,
  out: Array<[Container, string | number]> = [],
): Array<[Container, string | number]> {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push([value, i]);
      slots(item, out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      out.push([value as Record<string, unknown>, key]);
      slots(item, out);
    }
  }
  return out;
}

function retype(value: unknown): unknown {
  if (typeof value === 'string') return Number.isNaN(Number(value)) ? value.length : Number(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return Object.fromEntries(value.map((v, i) => [String(i), v]));
  if (typeof value === 'object' && value !== null) return Object.values(value);
  return 'null';
}

/** Keeps the JSON type of the field it replaces (a string stays a string, with any content). */
function sameType(previous: unknown, value: unknown): unknown {
  if (typeof previous === 'string') return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  if (typeof previous === 'number') return typeof value === 'number' && Number.isFinite(value) ? value : -1;
  if (typeof previous === 'boolean') return Boolean(value);
  return previous;
}

function applyJsonMutation(root: unknown, m: JsonMutation, keepTypes: boolean): unknown {
  const all = slots(root);
  if (all.length === 0) return root;
  const [container, key] = all[m.path % all.length]!;
  const record = container as Record<string | number, unknown>;
  if (keepTypes) {
    if (m.op === 'retype') return root;
    if (m.op === 'set') {
      record[key] = sameType(record[key], m.value);
      return root;
    }
    if (m.op === 'add') {
      const target = record[key];
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
        (target as Record<string, unknown>)[m.key] = sameType('', m.value);
      }
      return root;
    }
  }
  // Inserted values are copied: generated constants are shared between runs (and could form cycles).
  switch (m.op) {
    case 'drop':
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete record[key];
      break;
    case 'set':
      record[key] = structuredClone(m.value);
      break;
    case 'retype':
      record[key] = retype(record[key]);
      break;
    case 'add': {
      const target = record[key];
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
        (target as Record<string, unknown>)[m.key] = structuredClone(m.value);
      } else record[key] = structuredClone(m.value);
      break;
    }
  }
  return root;
}

/**
 * A deep copy of a valid object with one to four field mutations (drop, set weird, change type, add).
 * `keepTypes`: only what the producer's own schema allows (drop fields, any content of the same JSON type),
 * e.g. the pods an API server can send, whose annotations are strings but may say anything.
 */
export function mutatedJson<T>(
  valid: fc.Arbitrary<T>,
  options: { keepTypes?: boolean } = {},
): fc.Arbitrary<T> {
  return fc
    .tuple(valid, fc.array(jsonMutation, { minLength: 1, maxLength: 4 }))
    .map(
      ([value, mutations]) =>
        mutations.reduce(
          (root, m) => applyJsonMutation(root, m, options.keepTypes ?? false),
          structuredClone(value) as unknown,
        ) as T,
    );
}

/** Strings that stress encoders and mappings: empty, blank, unicode, lone surrogates, very long. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'acme',
    '\u0000',
    '\ud800',
    'e\u0301',
    '\ud83d\ude80',
    '"\\\n',
    'a'.repeat(70_000),
    'constructor',
    'toString',
    '__proto__',
    'hasOwnProperty',
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
);

/** Doubles including the ones billing must never see: NaN, infinities, -0, huge, tiny, negative. */
export const nastyDouble: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    2 ** 53,
    1e300,
  ),
  fc.double(),
  fc.double({ min: 0, max: 1e12, noNaN: true }),
);

/** avsc reads and writes longs only within ±(2^53 - 2) ("potential precision loss" beyond). */
export const AVRO_LONG_MAX = 9_007_199_254_740_990;

/** Longs as avsc hands them over, with the edges and wall-clock values weighted in. */
export const nastyLong: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    AVRO_LONG_MAX,
    -AVRO_LONG_MAX,
    8.64e15,
    8.64e15 + 1,
    2 ** 32 * 1000,
    1_767_225_600_000,
  ),
  fc.integer({ min: -AVRO_LONG_MAX, max: AVRO_LONG_MAX }),
  fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
);

// ------------------------------------------------------------------------------------- usage events

/**
 * Usage events as Avro decoding can hand them over: any strings, any doubles (NaN, infinities, huge,
 * negative), longs within avsc's range, any boolean; the other fields from the realistic fixture.
 */
export const usageEventArb: fc.Arbitrary<UsageEvent> = fc
  .tuple(
    fc.record(
      {
        id: fc.oneof(fc.constant(usageEventFixture().id), nastyString),
        subject: nastyString,
        clusterId: nastyString,
        project: nastyString,
        department: nastyString,
        workloadType: nastyString,
        gpuType: nastyString,
        windowStartMs: fc.oneof(nastyLong, fc.integer({ min: 0, max: 4_102_444_800_000 })),
        windowEndMs: fc.oneof(nastyLong, fc.integer({ min: 0, max: 4_102_444_800_000 })),
        sampleCount: fc.oneof(nastyLong, fc.nat({ max: 10_000 })),
        correction: fc.boolean(),
        ...Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, nastyDouble])),
      },
      { requiredKeys: [] },
    ),
    // Half the time a well-formed one-minute window, so that the rest of the event gets exercised too.
    fc.boolean(),
  )
  .map(([overrides, minute]) => {
    const event = usageEventFixture(overrides as Partial<UsageEvent>);
    return minute ? { ...event, windowEndMs: event.windowStartMs + 60_000 } : event;
  });
