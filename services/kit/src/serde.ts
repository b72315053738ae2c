import avro from 'avsc';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { GpuMeterError, PoisonRecordError } from './errors.js';
import type { Logger } from './logger.js';
import { retryWhileRetriable } from './startup.js';
import { avroType, readSchemaText, type SchemaName } from './schemas.js';

/** Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the Avro binary body. */
export const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

export interface RegistrySettings {
  schemaRegistryUrl: string;
  schemaRegistryUsername?: string | undefined;
  schemaRegistryPassword?: string | undefined;
}

/** TopicNameStrategy: the value schema of topic T lives under subject `T-value`. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

export function createSchemaRegistry(settings: RegistrySettings): SchemaRegistry {
  const auth =
    settings.schemaRegistryUsername !== undefined
      ? { username: settings.schemaRegistryUsername, password: settings.schemaRegistryPassword ?? '' }
      : undefined;
  return new SchemaRegistry({ host: settings.schemaRegistryUrl, ...(auth ? { auth } : {}) });
}

function authHeader(settings: RegistrySettings): Record<string, string> {
  if (settings.schemaRegistryUsername === undefined) return {};
  const token = Buffer.from(`${settings.schemaRegistryUsername}:${settings.schemaRegistryPassword ?? ''}`);
  return { authorization: `Basic ${token.toString('base64')}` };
}

/** A registry call with no answer after this is abandoned as a retriable error instead of awaited forever. */
export const REGISTRY_TIMEOUT_MS = 15_000;

function answerWithin<T>(call: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new GpuMeterError('SCHEMA_REGISTRY', `${what}: no answer within ${REGISTRY_TIMEOUT_MS} ms`, {
            retriable: true,
          }),
        ),
      REGISTRY_TIMEOUT_MS,
    );
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Sets the subject's compatibility to BACKWARD before registering. Done here rather than by the client's
 * `register({ compatibility })`: that reads `GET /config/{subject}` and only writes the config when the
 * answer is 404, and registries disagree on that answer (Apicurio's ccompat API answers differently from
 * Confluent's), so we always PUT, which both accept and which is idempotent.
 */
export async function setBackwardCompatibility(settings: RegistrySettings, subject: string): Promise<void> {
  const url = `${settings.schemaRegistryUrl.replace(/\/$/, '')}/config/${encodeURIComponent(subject)}`;
  const put = () =>
    answerWithin(
      fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', ...authHeader(settings) },
        body: JSON.stringify({ compatibility: 'BACKWARD' }),
        signal: AbortSignal.timeout(REGISTRY_TIMEOUT_MS),
      }),
      `PUT ${url}`,
    );
  let response = await put();
  // Two services starting together both create the new subject's rule; Apicurio answers the second 409
  // ("rule already exists"). Now that it exists, the same PUT updates it.
  if (response.status === 409) {
    await response.body?.cancel();
    response = await put();
  }
  if (!response.ok) {
    throw new GpuMeterError(
      'SCHEMA_REGISTRY',
      `PUT ${url} answered ${response.status}: ${await response.text()}`,
      { retriable: response.status >= 500 },
    );
  }
}

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
 */
export class TopicSerde<T> {
  private schemaId: number | undefined;
  private readonly localType: avro.Type;
  private readonly readerType: avro.Type;
  private readonly resolvers = new Map<number, avro.Resolver | null>();

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly settings: RegistrySettings,
    readonly topic: string,
    readonly schemaName: SchemaName,
    options: TopicSerdeOptions = {},
  ) {
    this.localType = avroType(schemaName);
    this.readerType = options.readFields ? projection(this.localType, options.readFields) : this.localType;
  }

  get subject(): string {
    return valueSubject(this.topic);
  }

  async register(): Promise<number> {
    await setBackwardCompatibility(this.settings, this.subject);
    const { id } = await answerWithin(
      this.registry.register(
        { type: SchemaType.AVRO, schema: readSchemaText(this.schemaName) },
        { subject: this.subject, compatibility: 'BACKWARD' as never },
      ),
      `registering ${this.subject}`,
    );
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
      const status = (error as { status?: number }).status;
      if (status === 404 || status === 422) {
        throw new PoisonRecordError('DECODE_FAILED', `unknown schema id ${schemaId}`, error);
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
