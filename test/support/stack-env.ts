import { existsSync, readFileSync } from 'node:fs';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const STACK_ENV_FILE = `${REPO_ROOT}.stack/env`;

/** The addresses every integration test needs. */
export interface StackEndpoints {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  CLICKHOUSE_URL: string;
  CLICKHOUSE_USER: string;
  CLICKHOUSE_PASSWORD: string;
}

export const ENDPOINT_KEYS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL'] as const;

/** KEY=VALUE lines written by `npm run stack:up`. */
export function readStackEnvFile(path = STACK_ENV_FILE): Record<string, string> {
  if (!existsSync(path)) return {};
  const values: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

/** Environment first, then .stack/env: an operator can point tests at any running services. */
export function endpointsFromEnvironment(
  environment: Record<string, string | undefined> = process.env,
): Partial<StackEndpoints> & Record<string, string> {
  const file = readStackEnvFile();
  const merged: Record<string, string> = { ...file };
  for (const [key, value] of Object.entries(environment)) {
    if (
      value !== undefined &&
      value !== '' &&
      (key in file || (ENDPOINT_KEYS as readonly string[]).includes(key))
    ) {
      merged[key] = value;
    }
  }
  return merged;
}
