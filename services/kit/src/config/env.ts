import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../contracts/errors.js';

/**
 * Configuration from environment variables. A service declares one spec: for each field, the variable that
 * sets it and a zod schema that gives the type, the default and the validation. `readConfig` validates the
 * whole spec once at start-up and freezes the result; the first bad value throws a ConfigError naming the
 * variable. Secrets may come from `<VAR>_FILE` (a mounted file) instead of `<VAR>`.
 */
export interface EnvField<T extends z.ZodType = z.ZodType> {
  readonly variable: string;
  readonly schema: T;
  readonly secret: boolean;
  readonly doc: string;
}

export function env<T extends z.ZodType>(
  variable: string,
  schema: T,
  doc: string,
  options: { secret?: boolean } = {},
): EnvField<T> {
  return { variable, schema, secret: options.secret ?? false, doc };
}

export type ConfigSpec = Record<string, EnvField>;
export type ConfigOf<S extends ConfigSpec> = { readonly [K in keyof S]: z.output<S[K]['schema']> };

type Env = Record<string, string | undefined>;

function rawValue(field: EnvField, source: Env): string | undefined {
  const direct = source[field.variable];
  const file = source[`${field.variable}_FILE`];
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError(field.variable, `set either ${field.variable} or ${field.variable}_FILE, not both`);
  }
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError(`${field.variable}_FILE`, `cannot read ${file}: ${(error as Error).message}`);
    }
  }
  return direct;
}

export function readConfig<S extends ConfigSpec>(spec: S, source: Env = process.env): ConfigOf<S> {
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) {
    const parsed = field.schema.safeParse(rawValue(field, source));
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => issue.message).join('; ');
      // Never echo a secret's value back, even a wrong one.
      const shown = field.secret ? '' : ` (got ${JSON.stringify(source[field.variable] ?? null)})`;
      throw new ConfigError(field.variable, `${detail}${shown}`);
    }
    result[key] = parsed.data;
  }
  return Object.freeze(result) as ConfigOf<S>;
}

/** Cross-field rules live next to the spec; they throw ConfigError naming the variable to fix. */
export function requireWhen(condition: boolean, variable: string, detail: string): void {
  if (condition) throw new ConfigError(variable, detail);
}

// Reusable field schemas: environment values are strings, these turn them into typed values.
export const schemas = {
  nonEmpty: (fallback?: string) =>
    fallback === undefined
      ? z.string({ error: 'is required' }).trim().min(1, 'must not be empty')
      : z.string().trim().min(1, 'must not be empty').default(fallback),
  optionalString: () =>
    z
      .string()
      .optional()
      .transform((value) => (value === undefined || value === '' ? undefined : value)),
  list: (fallback?: string) =>
    (fallback === undefined ? z.string({ error: 'is required' }) : z.string().default(fallback))
      .transform((value) =>
        value
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item.length > 0),
      )
      .refine((items) => items.length > 0, 'must list at least one value'),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z
      .string()
      .default(String(fallback))
      .transform((value, ctx) => {
        const parsed = Number(value);
        if (!/^-?\d+$/.test(value.trim()) || parsed < min || parsed > max) {
          ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}` });
          return z.NEVER;
        }
        return parsed;
      }),
  bool: (fallback: boolean) =>
    z
      .string()
      .default(String(fallback))
      .transform((value, ctx) => {
        const normal = value.trim().toLowerCase();
        if (['true', '1', 'yes'].includes(normal)) return true;
        if (['false', '0', 'no', ''].includes(normal)) return false;
        ctx.addIssue({ code: 'custom', message: 'must be true or false' });
        return z.NEVER;
      }),
  oneOf: <const T extends readonly [string, ...string[]]>(values: T, fallback?: T[number]) =>
    fallback === undefined ? z.enum(values) : z.enum(values).default(fallback),
  url: (fallback?: string) =>
    (fallback === undefined ? z.string({ error: 'is required' }) : z.string().default(fallback)).refine(
      (value) => URL.canParse(value) && /^https?:/.test(value),
      'must be an http(s) URL',
    ),
  /** A JSON object of string → string, e.g. a project→customer map. */
  stringMap: () =>
    z
      .string()
      .default('{}')
      .transform((value, ctx) => {
        try {
          const parsed: unknown = JSON.parse(value);
          if (
            typeof parsed === 'object' &&
            parsed !== null &&
            !Array.isArray(parsed) &&
            Object.values(parsed).every((v) => typeof v === 'string')
          ) {
            return Object.freeze({ ...(parsed as Record<string, string>) });
          }
        } catch {
          // fall through to the issue below
        }
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object of strings, e.g. {"a":"b"}' });
        return z.NEVER;
      }),
};

/** Renders a spec as a Markdown table: the configuration reference in the README is generated from this. */
export function describeConfig(spec: ConfigSpec): string {
  const rows = Object.values(spec).map((field) => {
    const probe = field.schema.safeParse(undefined);
    const fallback = !probe.success
      ? 'required'
      : probe.data === undefined
        ? 'unset'
        : JSON.stringify(probe.data);
    return `| \`${field.variable}\`${field.secret ? ' (or `_FILE`)' : ''} | ${fallback} | ${field.doc} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
