import { readdirSync, readFileSync } from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroType, SCHEMA_FILES, SCHEMAS_DIR, type SchemaName } from '@gpu-meter/kit/contracts';
import {
  bandwidthFixture,
  podAllocationFixture,
  usageEventFixture,
} from '../../../../test/support/fixtures.js';

const fixtures: Record<SchemaName, () => object> = {
  podAllocationSample: podAllocationFixture,
  bandwidthSample: bandwidthFixture,
  usageEvent: usageEventFixture,
};

function released(name: SchemaName): Array<{ version: number; schema: avro.Schema }> {
  const folder = new URL(`released/${SCHEMA_FILES[name].replace('.avsc', '')}/`, SCHEMAS_DIR);
  return readdirSync(folder)
    .map((file) => ({ version: Number(/^v(\d+)\.avsc$/.exec(file)?.[1]), file }))
    .filter(({ version }) => Number.isInteger(version))
    .sort((a, b) => a.version - b.version)
    .map(({ version, file }) => ({
      version,
      schema: JSON.parse(readFileSync(new URL(file, folder), 'utf8')),
    }));
}

describe.each(Object.keys(SCHEMA_FILES) as SchemaName[])('%s contract', (name) => {
  it('parses with avsc and documents every field', () => {
    const type = avroType(name) as avro.types.RecordType;
    expect(type.typeName).toBe('record');
    for (const field of type.fields) {
      const declared = (
        JSON.parse(readFileSync(new URL(SCHEMA_FILES[name], SCHEMAS_DIR), 'utf8')) as {
          fields: Array<{ name: string; doc?: string }>;
        }
      ).fields.find((candidate) => candidate.name === field.name);
      expect(declared?.doc, `${name}.${field.name} has a doc`).toMatch(/\S{3}/);
    }
  });

  it('round-trips its fixture unchanged, with the TypeScript shape naming exactly the Avro fields', () => {
    const type = avroType(name) as avro.types.RecordType;
    const fixture = fixtures[name]();
    expect(Object.keys(fixture).sort()).toEqual(type.fields.map((field) => field.name).sort());
    expect(type.isValid(fixture)).toBe(true);
    expect(type.fromBuffer(type.toBuffer(fixture))).toEqual(fixture);
  });

  it('is backward compatible with every released version (new readers read old data)', () => {
    const versions = released(name);
    expect(versions.length).toBeGreaterThan(0);
    const current = avroType(name);
    for (const { schema } of versions) {
      const writer = avro.Type.forSchema(schema);
      expect(() => current.createResolver(writer)).not.toThrow();
    }
    // Each released version also reads its predecessor, so the history itself was compatible.
    for (let i = 1; i < versions.length; i += 1) {
      const reader = avro.Type.forSchema(versions[i]!.schema);
      expect(() => reader.createResolver(avro.Type.forSchema(versions[i - 1]!.schema))).not.toThrow();
    }
  });

  it('equals its newest released version (release a schema change by adding released/vN+1)', () => {
    const newest = released(name).at(-1)!;
    expect(avro.Type.forSchema(newest.schema).equals(avroType(name))).toBe(true);
  });
});

describe('schema evolution check', () => {
  it('rejects a change that removes a field without a default (the check can fail)', () => {
    const writer = avroType('usageEvent');
    const schema = JSON.parse(JSON.stringify(writer.schema())) as { fields: Array<{ name: string }> };
    const reader = avro.Type.forSchema({
      ...schema,
      fields: [...schema.fields, { name: 'region', type: 'string' }],
    } as avro.Schema);
    expect(() => reader.createResolver(writer)).toThrow();
  });

  it.each([
    { name: 'usageEvent', field: 'correction', value: false },
    { name: 'bandwidthSample', field: 'observer', value: '' },
  ] as const)('reads a v1 $name (without `$field`) as the current schema with $field=$value', (added) => {
    const v1 = avro.Type.forSchema(released(added.name)[0]!.schema);
    const { [added.field]: _dropped, ...legacy } = fixtures[added.name]() as Record<string, unknown>;
    const current = avroType(added.name);
    expect(current.fromBuffer(v1.toBuffer(legacy), current.createResolver(v1))).toEqual({
      ...legacy,
      [added.field]: added.value,
    });
  });
});
