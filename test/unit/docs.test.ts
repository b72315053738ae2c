import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_MODULES, REFERENCE_FILE, renderConfigReference, specOf } from '../docs/config-reference.js';
import { REPO_ROOT } from '../support/stack-env.js';

describe('docs/configuration.md', () => {
  it("is what the services' config specs say (regenerate with npm run docs)", async () => {
    const rendered = await renderConfigReference();
    expect(rendered).toContain('`KAFKA_BROKERS`');
    expect(readFileSync(REFERENCE_FILE, 'utf8')).toBe(rendered);
  });

  // Hand-copied tables drifted from the specs (issue 14): a README links to its generated section instead.
  it.each(Object.keys(CONFIG_MODULES))(
    "%s's README links to its section of the reference and copies no variable table",
    async (service) => {
      const readme = readFileSync(`${REPO_ROOT}${dirname(CONFIG_MODULES[service]!)}/../README.md`, 'utf8');
      expect(readme).toContain(`docs/configuration.md#${service}`);
      const variables = new Set(Object.values(await specOf(CONFIG_MODULES[service]!)).map((f) => f.variable));
      expect(variables.size).toBeGreaterThan(0);
      const configuration = /^## Configuration\n[\s\S]*?(?=^## |(?![\s\S]))/m.exec(readme)?.[0] ?? '';
      const copiedRows = [...configuration.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)]
        .map((match) => match[1]!)
        .filter((variable) => variables.has(variable));
      expect(copiedRows).toEqual([]);
    },
  );
});
