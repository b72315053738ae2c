import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repositoryFiles } from '../support/repo-files.js';

/**
 * Every pointer a newcomer follows must lead somewhere: "DESIGN.md §6.7" in a comment names section 6, item
 * 7 of the contract (docs/DESIGN.md, or a service's own DESIGN.md next to its README), and a relative
 * Markdown link names a file in the repository.
 */
const ROOT = resolve(import.meta.dirname, '../..');

function trackedFiles(): string[] {
  return repositoryFiles().filter((path) => /\.(ts|md|sh|yaml|yml|json)$/.test(path));
}

/** Section numbers of a design document: "## 6. Invariants" → 6, with the count of its numbered items. */
function sections(markdown: string): Map<number, number> {
  const found = new Map<number, number>();
  let current: number | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^## (\d+)\. /.exec(line);
    if (heading) {
      current = Number(heading[1]);
      found.set(current, 0);
      continue;
    }
    const item = /^(\d+)\. /.exec(line);
    if (item && current !== undefined) found.set(current, Math.max(found.get(current)!, Number(item[1])));
  }
  return found;
}

/** "DESIGN.md §6.7" and "DESIGN.md §2" references, with the file they occur in and where. */
function designReferences(files: string[]) {
  const references: { file: string; line: number; section: number; item?: number }[] = [];
  for (const file of files) {
    readFileSync(join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((text, index) => {
        for (const match of text.matchAll(/DESIGN\.md §(\d+)(?:\.(\d+))?/g)) {
          references.push({
            file,
            line: index + 1,
            section: Number(match[1]),
            item: match[2] === undefined ? undefined : Number(match[2]),
          });
        }
      });
  }
  return references;
}

describe('cross-references', () => {
  const files = trackedFiles();

  it('every "DESIGN.md §n[.m]" names a section (and item) of docs/DESIGN.md', () => {
    const design = join(ROOT, 'docs/DESIGN.md');
    expect(existsSync(design), 'docs/DESIGN.md').toBe(true);
    const known = sections(readFileSync(design, 'utf8'));
    const references = designReferences(files);
    expect(references.length).toBeGreaterThan(10);
    const broken = references
      .filter(({ section, item }) => {
        const items = known.get(section);
        return items === undefined || (item !== undefined && item > items);
      })
      .map(({ file, line, section, item }) => `${file}:${line} §${section}${item ? `.${item}` : ''}`);
    expect(broken).toEqual([]);
  });

  it('every relative Markdown link names a file or folder in the repository', () => {
    const broken: string[] = [];
    let links = 0;
    for (const file of files.filter((path) => path.endsWith('.md'))) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const match of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        const target = match[1]!;
        if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
        links += 1;
        if (!existsSync(resolve(ROOT, dirname(file), target))) broken.push(`${file} → ${target}`);
      }
    }
    expect(links).toBeGreaterThan(5);
    expect(broken).toEqual([]);
  });
});
