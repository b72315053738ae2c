import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { errorMessage, GpuMeterError, PoisonRecordError } from '../contracts/errors.js';

// The schema registry's HTTP side (Confluent API; Apicurio through /apis/ccompat/v7): the client, calls that
// must not hang, the compatibility rule of a new subject, and what a "not found" from the registry means.

export interface RegistrySettings {
  schemaRegistryUrl: string;
  schemaRegistryUsername?: string | undefined;
  schemaRegistryPassword?: string | undefined;
  /** The rule given to a subject that has none (default BACKWARD); `none`: never write a rule. */
  schemaCompatibility?: SchemaCompatibility | undefined;
}

/** The registry's compatibility levels a service may give a new subject (NONE, "no checks", is not one). */
export const COMPATIBILITY_LEVELS = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];
/** A level, or `none`: write no rule at all (the registry's own default then applies). */
export type SchemaCompatibility = CompatibilityLevel | 'none';
/** Confluent's default level, and what `schemas/README.md` promises consumers. */
export const DEFAULT_SCHEMA_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

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

export function registryAuthHeader(settings: RegistrySettings): Record<string, string> {
  if (settings.schemaRegistryUsername === undefined) return {};
  const token = Buffer.from(`${settings.schemaRegistryUsername}:${settings.schemaRegistryPassword ?? ''}`);
  return { authorization: `Basic ${token.toString('base64')}` };
}

export function registryUrl(settings: RegistrySettings, path: string): string {
  return `${settings.schemaRegistryUrl.replace(/\/$/, '')}${path}`;
}

/** A registry call with no answer after this is abandoned as a retriable error instead of awaited forever. */
export const REGISTRY_TIMEOUT_MS = 15_000;

export function answerWithin<T>(call: Promise<T>, what: string): Promise<T> {
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

/** A registry answer: its status and its body (JSON when it parses, else the text). */
export interface RegistryAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * One registry request, answered within REGISTRY_TIMEOUT_MS. An unreachable registry or one that does not
 * answer in time throws a retriable GpuMeterError; any HTTP answer is returned, for the caller to judge.
 */
export async function registryRequest(
  settings: RegistrySettings,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  body?: unknown,
): Promise<RegistryAnswer> {
  const url = registryUrl(settings, path);
  const what = `${method} ${url}`;
  let response: Response;
  try {
    response = await answerWithin(
      fetch(url, {
        method,
        headers: {
          accept: 'application/vnd.schemaregistry.v1+json, application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/vnd.schemaregistry.v1+json' }),
          ...registryAuthHeader(settings),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REGISTRY_TIMEOUT_MS),
      }),
      what,
    );
  } catch (error) {
    if (error instanceof GpuMeterError) throw error;
    // undici's "fetch failed" says nothing; its cause (ECONNREFUSED, ENOTFOUND...) does.
    const cause = (error as { cause?: unknown }).cause;
    throw new GpuMeterError('SCHEMA_REGISTRY', `${what}: ${errorMessage(cause ?? error)}`, {
      cause: error,
      retriable: true,
    });
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (a proxy's error page): kept as text
  }
  return { status: response.status, body: parsed };
}

/** The error for an answer the caller cannot use: retriable for 5xx, 408 and 429, as `isRetriable` says. */
export function registryAnswerError(what: string, answer: RegistryAnswer): GpuMeterError {
  const { status } = answer;
  const detail = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  return new GpuMeterError(
    status === 409 ? 'SCHEMA_INCOMPATIBLE' : 'SCHEMA_REGISTRY',
    `${what} answered ${status}: ${detail}`,
    { retriable: status >= 500 || status === 408 || status === 429 },
  );
}

/**
 * Whether `GET /config/{subject}`'s answer shows a rule we must leave alone. 200: Confluent answers it only
 * for the subject's own rule; Apicurio also for a subject not yet created whose rule an operator set, and,
 * for an existing subject without one, with its configured global default (test/stack/apicurio.sh), which
 * we leave alone as well: it is the operator's. 404 (Apicurio 40401: no such subject and no rule; Confluent
 * 40401 or 40408: no subject-level config): no rule of its own. Anything else is an error.
 */
export function subjectHasRule(what: string, answer: RegistryAnswer): boolean {
  if (answer.status === 200) return true;
  if (answer.status === 404) return false;
  throw registryAnswerError(what, answer);
}

/** What `ensureCompatibility` did. */
export type CompatibilityOutcome = 'kept the existing rule' | 'set' | 'not managed';

/**
 * Gives `subject` the configured compatibility level when it has no rule of its own; never replaces one,
 * so a stricter rule an operator set stays, and a service needs registry write access to config only for
 * a subject that has none. With `none`, asks nothing (the registry's default applies).
 */
export async function ensureCompatibility(
  settings: RegistrySettings,
  subject: string,
): Promise<CompatibilityOutcome> {
  const level = settings.schemaCompatibility ?? DEFAULT_SCHEMA_COMPATIBILITY;
  if (level === 'none') return 'not managed';
  const path = `/config/${encodeURIComponent(subject)}`;
  if (subjectHasRule(`GET ${path}`, await registryRequest(settings, 'GET', path))) {
    return 'kept the existing rule';
  }
  const written = await registryRequest(settings, 'PUT', path, { compatibility: level });
  // Two services starting together both find no rule and both create it; Apicurio answers the second 409
  // ("rule already exists"). The rule exists now, and is not ours to replace.
  if (written.status === 409) return 'kept the existing rule';
  if (written.status !== 200) throw registryAnswerError(`PUT ${path}`, written);
  return 'set';
}

/**
 * Registers `schemaText` (Avro) under `subject` and returns its id; the same schema again returns the same
 * id. Not the client's `register`: that reads the subject's config and throws unless its level equals the
 * one asked for, i.e. on any subject an operator gave a stricter rule.
 */
export async function registerSchema(
  settings: RegistrySettings,
  subject: string,
  schemaText: string,
): Promise<number> {
  const path = `/subjects/${encodeURIComponent(subject)}/versions`;
  const answer = await registryRequest(settings, 'POST', path, { schema: schemaText });
  const id = (answer.body as { id?: unknown } | null)?.id;
  if (answer.status !== 200 || typeof id !== 'number') throw registryAnswerError(`POST ${path}`, answer);
  return id;
}

/**
 * Whether an error of the registry client's look-up of a schema id is the registry saying it does not know
 * the id: 404 (Confluent and Apicurio: error_code 40403), or 422 from registries that call an id they do not
 * have invalid.
 */
export function isNotFoundAnswer(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return status === 404 || status === 422;
}

/**
 * How long the answer of a control look-up is trusted, and a writer schema id it proved unknown stays
 * unknown without asking again: a flood of records costs the registry two requests per id and period.
 */
export const CONTROL_LOOKUP_TTL_MS = 5_000;

/** What a look-up of something that must exist found: `healthy` when the registry answered it. */
export interface ControlOutcome {
  readonly healthy: boolean;
  readonly detail: string;
}

/**
 * What "not found" for writer schema id `schemaId` means, given the control look-up of `subject`: a
 * registry that still answers for our own subject really does not know the id (the record is poison); one
 * that does not (lost storage, a blue/green switch to an empty registry, down) is an outage, retried.
 */
export function unknownSchemaIdError(
  schemaId: number,
  subject: string,
  control: ControlOutcome,
  cause?: unknown,
): GpuMeterError {
  if (control.healthy) {
    return new PoisonRecordError(
      'DECODE_FAILED',
      `unknown schema id ${schemaId}: the registry does not know it, though it answers for ${subject} ` +
        `(control look-up: ${control.detail})`,
      cause,
    );
  }
  return new GpuMeterError(
    'SCHEMA_REGISTRY',
    `schema id ${schemaId} not found, and the control look-up of ${subject} failed too ` +
      `(${control.detail}): taken for a registry outage or data loss, not a poison record`,
    { cause, retriable: true },
  );
}

/**
 * The control look-up of one subject: its latest version. Every producer of the topic registered under it,
 * so a registry holding the topic's schemas answers it (the aggregator's decoders register nothing, so no
 * id of their own is at hand). Asked through the client, which caches no subject look-up. The outcome is
 * kept CONTROL_LOOKUP_TTL_MS from its answer; callers meanwhile, and while it is in flight, share it.
 */
export class ControlLookup {
  private cached: { readonly outcome: Promise<ControlOutcome>; until: number } | undefined;

  constructor(
    private readonly registry: SchemaRegistry,
    readonly subject: string,
  ) {}

  outcome(): Promise<ControlOutcome> {
    if (this.cached && Date.now() < this.cached.until) return this.cached.outcome;
    const entry = { outcome: this.lookUp(), until: Infinity };
    this.cached = entry;
    void entry.outcome.then(() => (entry.until = Date.now() + CONTROL_LOOKUP_TTL_MS));
    return entry.outcome;
  }

  private async lookUp(): Promise<ControlOutcome> {
    try {
      const id = await answerWithin(
        this.registry.getLatestSchemaId(this.subject),
        `control look-up of ${this.subject}`,
      );
      return { healthy: true, detail: `its latest version has schema id ${id}` };
    } catch (error) {
      const status = (error as { status?: unknown } | null)?.status;
      return {
        healthy: false,
        detail: `${typeof status === 'number' ? `${status}: ` : ''}${errorMessage(error)}`,
      };
    }
  }
}
