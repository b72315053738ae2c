import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './stack-env.js';

/**
 * The repository's files as git sees them (tracked, and new ones it does not ignore), repo-relative and
 * present in the working tree: what the repository-wide checks (cross-references, error codes) read.
 */
export function repositoryFiles(): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((path) => path !== '' && existsSync(join(REPO_ROOT, path)));
}
