import { readFileSync } from 'node:fs';
import { checkScenario } from './scenario-rules.js';
import { scenarioSchema, type ParsedScenario, type Scenario } from './scenario-schema.js';

/** Reads a scenario file: its shape checked by scenario-schema.ts, its cross-field rules by scenario-rules.ts. */

export * from './scenario-schema.js';

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid scenario:\n  - ${problems.join('\n  - ')}`);
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out || '(root)';
}

/** Parses and checks a scenario; throws ScenarioError listing every problem with its JSON path. */
export function parseScenario(json: unknown): Scenario {
  const parsed = scenarioSchema.safeParse(json);
  if (!parsed.success) {
    throw new ScenarioError(parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`));
  }
  const problems = checkScenario(parsed.data);
  if (problems.length > 0) throw new ScenarioError(problems);
  const durationMs = parsed.data.durationMs ?? latestOffset(parsed.data);
  return Object.freeze({ ...parsed.data, durationMs }) as Scenario;
}

export function loadScenario(file: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ScenarioError([`${file}: ${(error as Error).message}`]);
  }
  return parseScenario(json);
}

function latestOffset(s: ParsedScenario): number {
  let latest = 0;
  for (const p of s.pods)
    latest = Math.max(
      latest,
      p.createdMs ?? 0,
      p.startMs,
      p.endMs ?? 0,
      p.deletedMs ?? 0,
      p.deleteRequestedMs ?? 0,
    );
  for (const m of s.gpuMetrics) for (const seg of m.segments) latest = Math.max(latest, seg.fromMs);
  return latest;
}
