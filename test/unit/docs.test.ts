import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REFERENCE_FILE, renderConfigReference } from '../docs/config-reference.js';

describe('docs/configuration.md', () => {
  it("is what the services' config specs say (regenerate with npm run docs)", async () => {
    const rendered = await renderConfigReference();
    expect(rendered).toContain('`KAFKA_BROKERS`');
    expect(readFileSync(REFERENCE_FILE, 'utf8')).toBe(rendered);
  });
});
