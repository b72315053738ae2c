import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '@gpu-meter/kit/contracts';
import { repositoryFiles } from '../support/repo-files.js';
import { REPO_ROOT } from '../support/stack-env.js';
import { ERROR_REFERENCE_FILE, renderErrorReference } from '../docs/error-reference.js';

/**
 * Issue 14: error codes come from one typed catalogue (`services/kit/src/contracts/errors.ts`: code,
 * retriable, what it means), and what the docs say of them stays in step with it.
 */
const CATALOGUE_FILE = 'services/kit/src/contracts/errors.ts';
const catalogued = new Set(Object.values(ErrorCodes).map((entry) => entry.code));

const FILES = repositoryFiles();
const SOURCES = FILES.filter((path) => /^services\/[^/]+\/src\/.*\.ts$/.test(path));
const DOCS = FILES.filter(
  (path) =>
    path === 'README.md' || /^docs\/.*\.md$/.test(path) || /^services\/.*\/(README|DESIGN)\.md$/.test(path),
);

/** Each GPUM_ code a file names (a bare `GPUM_` prefix in prose is no code). */
function codesIn(path: string): string[] {
  return [...readFileSync(join(REPO_ROOT, path), 'utf8').matchAll(/\bGPUM_[A-Z][A-Z_]*[A-Z]\b/g)].map(
    (match) => match[0],
  );
}

describe('the error catalogue', () => {
  it('reads the sources and docs', () => {
    expect(SOURCES.length).toBeGreaterThan(50);
    expect(DOCS.length).toBeGreaterThan(10);
  });

  it('has every code that a source file or a doc names', () => {
    const unknown = [...SOURCES, ...DOCS].flatMap((path) =>
      codesIn(path)
        .filter((code) => !catalogued.has(code))
        .map((code) => `${code} (${path})`),
    );
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('is where the code takes its codes from: no source spells one as a string of its own', () => {
    const spelled = SOURCES.filter((path) => path !== CATALOGUE_FILE).flatMap((path) =>
      readFileSync(join(REPO_ROOT, path), 'utf8')
        .split('\n')
        .map((line, index) => ({ line, number: index + 1 }))
        .filter(({ line }) => /['"`]GPUM_[A-Z]/.test(line) && !line.trimStart().startsWith('*'))
        .map(({ number, line }) => `${path}:${number}: ${line.trim()}`),
    );
    expect(spelled).toEqual([]);
  });

  it('says of each code whether retrying helps, and what it means', () => {
    for (const [kind, entry] of Object.entries(ErrorCodes)) {
      expect(entry.code, kind).toBe(`GPUM_${kind}`);
      expect(typeof entry.retriable, kind).toBe('boolean');
      expect(entry.meaning.length, kind).toBeGreaterThan(20);
    }
  });

  it('is what docs/errors.md lists (regenerate with npm run docs)', () => {
    expect(readFileSync(ERROR_REFERENCE_FILE, 'utf8')).toBe(renderErrorReference());
  });
});
