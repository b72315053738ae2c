import avro from 'avsc';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { GpuMeterError, PoisonRecordError } from '../contracts/errors.js';
import type { Logger } from '../runtime/logger.js';
import {
  answerWithin,
  CONTROL_LOOKUP_TTL_MS,
  ControlLookup,
  ensureCompatibility,
  isNotFoundAnswer,
  registerSchema,
  unknownSchemaIdError,
  valueSubject,
  type RegistrySettings,
} from './registry.js';
import { retryWhileRetriable } from '../runtime/startup.js';
import { avroType, readSchemaText, type SchemaName } from '../contracts/schemas.js';

/** Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the Avro binary body. */
export const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

// Kept importable from here, where the kit's callers have always found them.
export {
  createSchemaRegistry,
  REGISTRY_TIMEOUT_MS,
  valueSubject,
  type RegistrySettings,
} from './registry.js';

export interface TopicSerdeOptions {
  /**
   * Decode only these fields (a projection of the local schema): the others are skipped in the bytes, never
   * turned into strings or objects. For a hot consumer that needs a few fields of a wide record.
   */
  readonly readFields?: readonly string[];
}

/**
 * Encodes and decodes one topic's values. `register` puts the local schema under the topic's subject and
 * keeps its id; `encode` is then pure and synchronous. `decode` accepts any schema id the registry knows,
 * resolving older writer schemas to the local (reader) schema, with writer types and resolvers cached.
 * An id the registry answers "not found" for is poison only if a control look-up of the topic's subject
 * proves the registry healthy; otherwise it is an outage (retriable), so nothing is dead-lettered for it.
 */
export class TopicSerde<T> {
  private schemaId: number | undefined;
  private readonly localType: avro.Type;
  private readonly readerType: avro.Type;
  private readonly resolvers = new Map<number, avro.Resolver | null>();
  private readonly control: ControlLookup;
  /** Writer ids proven unknown, until when that verdict holds (see CONTROL_LOOKUP_TTL_MS). */
  private readonly unknownIds = new Map<number, { readonly error: GpuMeterError; readonly until: number }>();

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly settings: RegistrySettings,
    readonly topic: string,
    readonly schemaName: SchemaName,
    options: TopicSerdeOptions = {},
  ) {
    this.localType = avroType(schemaName);
    this.readerType = options.readFields ? projection(this.localType, options.readFields) : this.localType;
    this.control = new ControlLookup(registry, valueSubject(topic));
  }

  get subject(): string {
    return valueSubject(this.topic);
  }

  /**
   * Gives the subject the configured compatibility rule if it has none (`ensureCompatibility`), then
   * registers the local schema and keeps its id.
   */
  async register(): Promise<number> {
    await ensureCompatibility(this.settings, this.subject);
    const id = await registerSchema(this.settings, this.subject, readSchemaText(this.schemaName));
    this.schemaId = id;
    this.resolvers.set(id, this.resolverFor(this.localType));
    return id;
  }

  /**
   * `register`, retried by the kit's start-up policy (`retryWhileRetriable`) while the registry fails in a
   * retriable way (unreachable, answers 5xx or does not answer in time); anything else, e.g. an
   * incompatible schema (409), is thrown naming the subject.
   */
  registerRetrying(logger: Logger): Promise<number> {
    return retryWhileRetriable(`schema registry subject ${this.subject}`, () => this.register(), { logger });
  }

  get registeredId(): number {
    if (this.schemaId === undefined) {
      throw new GpuMeterError('ILLEGAL_STATE', `schema for ${this.subject} used before register()`);
    }
    return this.schemaId;
  }

  encode(value: T): Buffer {
    const body = this.localType.toBuffer(value);
    const message = Buffer.allocUnsafe(HEADER_BYTES + body.length);
    message.writeUInt8(MAGIC_BYTE, 0);
    message.writeUInt32BE(this.registeredId, 1);
    body.copy(message, HEADER_BYTES);
    return message;
  }

  /** Throws PoisonRecordError for bytes that can never decode; registry outages throw retriable errors. */
  async decode(message: Buffer | null): Promise<T> {
    const schemaId = readSchemaId(message);
    if (!this.resolvers.has(schemaId)) await this.loadResolver(schemaId);
    return this.decodeBody(message as Buffer, schemaId);
  }

  /** Synchronous decode for the common case of an already-known schema id (the hot path). */
  decodeKnown(message: Buffer | null): T | undefined {
    const schemaId = readSchemaId(message);
    if (!this.resolvers.has(schemaId)) return undefined;
    return this.decodeBody(message as Buffer, schemaId);
  }

  /** True when the message at [start, end) of `bytes` has a wire header with a writer schema id known here. */
  knowsSchemaOf(bytes: Buffer, start: number, end: number): boolean {
    return (
      end - start >= HEADER_BYTES &&
      bytes[start] === MAGIC_BYTE &&
      this.resolvers.has(bytes.readUInt32BE(start + 1))
    );
  }

  /**
   * `decodeKnown` of the message at [start, end) of `bytes` (e.g. a batch's values packed into one buffer):
   * the same result and the same errors as on that slice, without allocating one when the message is good.
   */
  decodeKnownAt(bytes: Buffer, start: number, end: number): T | undefined {
    const schemaId = readSchemaIdAt(bytes, start, end);
    if (!this.resolvers.has(schemaId)) return undefined;
    try {
      const resolver = this.resolvers.get(schemaId) ?? undefined;
      const { value, offset } = this.readerType.decode(bytes, start + HEADER_BYTES, resolver);
      // A good message ends exactly at its end, having read nothing beyond it.
      if (offset === end && this.readerType.isValid(value)) return value as T;
    } catch {
      // poison: reported below
    }
    // Poison. Decoded alone, so the reason never depends on the bytes that happen to follow it.
    return this.decodeBody(bytes.subarray(start, end), schemaId);
  }

  private decodeBody(message: Buffer, schemaId: number): T {
    try {
      return checked<T>(
        this.readerType,
        this.readerType.fromBuffer(
          message.subarray(HEADER_BYTES),
          this.resolvers.get(schemaId) ?? undefined,
          false,
        ),
      );
    } catch (error) {
      throw new PoisonRecordError(
        'DECODE_FAILED',
        `Avro body does not decode with schema id ${schemaId}: ${(error as Error).message}`,
        error,
      );
    }
  }

  private async loadResolver(schemaId: number): Promise<avro.Resolver | null> {
    const unknown = this.unknownIds.get(schemaId);
    if (unknown && Date.now() < unknown.until) throw unknown.error;
    let writerType: avro.Type;
    try {
      // The client hands back its own avsc Type; rebuild it from its schema so we do not depend on which
      // copy of avsc the client loaded.
      const schema = (await answerWithin(
        this.registry.getSchema(schemaId),
        `fetching schema id ${schemaId}`,
      )) as unknown as { schema(): avro.Schema };
      writerType = avro.Type.forSchema(schema.schema());
    } catch (error) {
      if (isNotFoundAnswer(error)) {
        const verdict = unknownSchemaIdError(schemaId, this.subject, await this.control.outcome(), error);
        if (verdict instanceof PoisonRecordError) this.rememberUnknown(schemaId, verdict);
        throw verdict;
      }
      throw new GpuMeterError(
        'SCHEMA_REGISTRY',
        `cannot fetch schema id ${schemaId}: ${(error as Error).message}`,
        {
          cause: error,
          retriable: true,
        },
      );
    }
    let resolver: avro.Resolver | null;
    try {
      resolver = this.resolverFor(writerType);
    } catch (error) {
      throw new PoisonRecordError(
        'DECODE_FAILED',
        `schema id ${schemaId} is not readable as ${this.schemaName}`,
        error,
      );
    }
    this.resolvers.set(schemaId, resolver);
    return resolver;
  }

  private rememberUnknown(schemaId: number, error: GpuMeterError): void {
    // Bounded: random bytes after a 0 byte name any id; forgetting early only costs a look-up.
    if (this.unknownIds.size >= 1024) this.unknownIds.clear();
    this.unknownIds.set(schemaId, { error, until: Date.now() + CONTROL_LOOKUP_TTL_MS });
  }

  private resolverFor(writerType: avro.Type): avro.Resolver | null {
    return writerType.equals(this.readerType) ? null : this.readerType.createResolver(writerType);
  }
}

/** The record schema with only `fields` (same name, so any version of the full schema resolves to it). */
function projection(type: avro.Type, fields: readonly string[]): avro.Type {
  const schema = type.schema() as avro.schema.RecordType;
  const known = new Set(schema.fields.map((f) => f.name));
  const unknown = fields.filter((name) => !known.has(name));
  if (unknown.length > 0) throw new Error(`not fields of ${schema.name}: ${unknown.join(', ')}`);
  return avro.Type.forSchema({ ...schema, fields: schema.fields.filter((f) => fields.includes(f.name)) });
}

/**
 * avsc reads an over-long int varint (corrupt bytes) as a number outside int32, even NaN or Infinity, without
 * complaint; such a value is not one of the schema's and must not reach a sink (found by serde.fuzz.test.ts).
 */
function checked<T>(type: avro.Type, value: unknown): T {
  if (!type.isValid(value)) throw new Error('decoded value does not match the schema (int out of range)');
  return value as T;
}

export function readSchemaId(message: Buffer | null): number {
  if (message === null) return readSchemaIdAt(Buffer.alloc(0), 0, 0);
  return readSchemaIdAt(message, 0, message.length);
}

function readSchemaIdAt(bytes: Buffer, start: number, end: number): number {
  if (end - start < HEADER_BYTES) {
    throw new PoisonRecordError(
      'DECODE_FAILED',
      `message of ${Math.max(0, end - start)} bytes is shorter than the 5-byte wire header`,
    );
  }
  if (bytes[start] !== MAGIC_BYTE) {
    throw new PoisonRecordError('DECODE_FAILED', `bad magic byte ${bytes[start]} (expected ${MAGIC_BYTE})`);
  }
  return bytes.readUInt32BE(start + 1);
}
