/**
 * The static import graph of services/*\/src and test/simulator/src: no cycle anywhere, each of the kit's
 * folders imports only the folders below it, and the pure modules (the aggregator's core, the kit's
 * contracts, config and runai folders) load no I/O library.
 *
 * The graph is read from the source with the TypeScript parser (nothing is imported or run). Every static
 * `import`/`export ... from` is an edge; `@gpu-meter/kit/...` resolves through the kit's package.json
 * `exports`, relative specifiers to the .ts file. For cycles every edge counts, type-only ones too (a cycle of
 * types still ties the files together). For purity only edges that load code at run time count: an
 * `import type`/`export type` is erased, but under `verbatimModuleSyntax` an `import { type A }` is kept as
 * `import {} from`, which loads the module, so it counts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/stack-env.js';

const ROOT = resolve(REPO_ROOT);
const SERVICES = join(ROOT, 'services');

/** Libraries that talk to the network (or are clients of a networked system). */
const IO_LIBRARIES = [
  'kafkajs',
  '@clickhouse/client',
  'fastify',
  '@kubernetes/client-node',
  '@kafkajs/confluent-schema-registry',
  'node:http',
  'node:https',
  'node:net',
  'node:tls',
];

/** Modules that must stay pure: importing one loads none of IO_LIBRARIES, directly or transitively. */
const PURE_MODULES = [
  // The aggregator's core: samples, dedupe, windows, groups, tasks, the synchronous driver and its protocol,
  // and the task state table.
  'services/usage-aggregator/src/samples.ts',
  'services/usage-aggregator/src/dedupe-index.ts',
  'services/usage-aggregator/src/windows.ts',
  'services/usage-aggregator/src/groups.ts',
  'services/usage-aggregator/src/offset-metadata.ts',
  'services/usage-aggregator/src/task.ts',
  'services/usage-aggregator/src/driver.ts',
  'services/usage-aggregator/src/decode.ts',
  'services/usage-aggregator/src/batch-transfer.ts',
  'services/usage-aggregator/src/driver-protocol.ts',
  'services/usage-aggregator/src/fencing.ts',
  'services/usage-aggregator/src/task-table.ts',
  // The kit's pure folders, through their entry points.
  'services/kit/src/contracts/index.ts',
  'services/kit/src/config/index.ts',
  'services/kit/src/runai/index.ts',
];

/**
 * What each of the kit's folders may import of the others (services/kit/README.md has the same map): a lower
 * layer never reaches up, so a pure folder stays pure and the runners sit on top.
 */
const KIT_FOLDERS: Record<string, readonly string[]> = {
  contracts: [],
  config: ['contracts'],
  runai: ['contracts'],
  runtime: ['contracts', 'config'],
  kafka: ['contracts', 'config', 'runtime'],
  clickhouse: ['contracts', 'config', 'runtime'],
  kubernetes: ['contracts', 'config', 'runtime', 'runai'],
  runners: ['contracts', 'config', 'runtime', 'runai', 'kafka', 'clickhouse', 'kubernetes'],
};

interface Edge {
  readonly to: string; // a repo-relative .ts path, or a bare package name
  readonly typeOnly: boolean;
}

const kitExports = (
  JSON.parse(readFileSync(join(SERVICES, 'kit/package.json'), 'utf8')) as { exports: Record<string, string> }
).exports;

function packageName(specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
  // A bare Node built-in ('http') is the same module as 'node:http'.
  return ['http', 'https', 'net', 'tls'].includes(name) ? `node:${name}` : name;
}

function resolveSpecifier(from: string, specifier: string): string {
  if (specifier === '@gpu-meter/kit' || specifier.startsWith('@gpu-meter/kit/')) {
    const target = kitExports[`.${specifier.slice('@gpu-meter/kit'.length)}`];
    if (target === undefined) throw new Error(`${from}: ${specifier} is not in the kit's exports`);
    return relative(ROOT, join(SERVICES, 'kit', target));
  }
  if (!specifier.startsWith('.')) return packageName(specifier);
  const base = resolve(dirname(join(ROOT, from)), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  const found = candidates.find((candidate) => existsSync(candidate) && candidate.endsWith('.ts'));
  if (found === undefined) throw new Error(`${from}: cannot resolve ${specifier}`);
  return relative(ROOT, found);
}

const edgeCache = new Map<string, Edge[]>();

function edgesOf(file: string): Edge[] {
  const cached = edgeCache.get(file);
  if (cached) return cached;
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest);
  const edges: Edge[] = [];
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const typeOnly = statement.importClause?.isTypeOnly ?? false;
      edges.push({ to: resolveSpecifier(file, statement.moduleSpecifier.text), typeOnly });
    } else if (
      ts.isExportDeclaration(statement) &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      edges.push({
        to: resolveSpecifier(file, statement.moduleSpecifier.text),
        typeOnly: statement.isTypeOnly,
      });
    }
  }
  edgeCache.set(file, edges);
  return edges;
}

const isSource = (to: string): boolean => to.endsWith('.ts');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(ROOT, path)] : [];
  });
}

/** The services' sources, and the simulator's: a test tool, but one that must not grow a cycle either. */
const ALL_SOURCES = [
  ...readdirSync(SERVICES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(SERVICES, entry.name, 'src')))
    .flatMap((entry) => sourceFiles(join(SERVICES, entry.name, 'src'))),
  ...sourceFiles(join(ROOT, 'test/simulator/src')),
];

/** Every cycle's path, found by depth-first search (one representative per back edge). */
function findCycles(files: readonly string[]): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const { to } of edgesOf(file)) {
      if (!isSource(to)) continue;
      const seen = state.get(to);
      if (seen === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to]);
      else if (seen === undefined) visit(to);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

/** The I/O libraries `file` loads at run time, each with one import chain that reaches it. */
function ioLibrariesLoadedBy(file: string): string[] {
  const chains: string[] = [];
  const via = new Map<string, string[]>([[file, [file]]]);
  const queue = [file];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const chain = via.get(next) ?? [next];
    for (const { to, typeOnly } of edgesOf(next)) {
      if (typeOnly || via.has(to)) continue;
      via.set(to, [...chain, to]);
      if (isSource(to)) queue.push(to);
      else if (IO_LIBRARIES.includes(to)) chains.push([...chain, to].join(' → '));
    }
  }
  return chains;
}

describe('the import graph of services/*/src and test/simulator/src', () => {
  it('reads every source file', () => {
    expect(ALL_SOURCES.length).toBeGreaterThan(50);
  });

  it('has no import cycle', () => {
    expect(findCycles(ALL_SOURCES).map((cycle) => cycle.join(' → '))).toEqual([]);
  });
});

describe("the kit's folders", () => {
  const KIT_SRC = 'services/kit/src/';
  const folderOf = (file: string): string | undefined =>
    file.startsWith(KIT_SRC) ? file.slice(KIT_SRC.length).split('/')[0] : undefined;

  it('are all in the map', () => {
    const folders = new Set(ALL_SOURCES.map(folderOf).filter((folder) => folder !== undefined));
    expect([...folders].sort()).toEqual(Object.keys(KIT_FOLDERS).sort());
  });

  it.each(Object.entries(KIT_FOLDERS))('%s imports only %j of the others', (folder, allowed) => {
    const reached = new Set<string>();
    for (const file of ALL_SOURCES.filter((source) => folderOf(source) === folder))
      for (const { to } of edgesOf(file)) {
        const target = folderOf(to);
        if (target !== undefined && target !== folder) reached.add(`${target} (from ${file})`);
        else if (isSource(to) && target === undefined) reached.add(`${to} (from ${file})`);
      }
    expect([...reached].filter((entry) => !allowed.includes(entry.split(' ')[0] ?? ''))).toEqual([]);
  });
});

describe('a pure module loads no I/O library', () => {
  it.each(PURE_MODULES)('%s', (file) => {
    expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true);
    expect(ioLibrariesLoadedBy(file)).toEqual([]);
  });
});
