import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunaiPod } from '@gpu-meter/kit/runai';
import { buildModel, parseScenario, renderMetrics } from '@gpu-meter/simulator';
import { fuzz, mutatedText } from '../../../test/support/fuzz.js';
import { attributeDevice } from '../src/attribution.js';
import { parseDcgm, type DeviceReading } from '../src/dcgm.js';

/**
 * The exporter page under random and mutated text. parseDcgm returns well-formed readings or throws the
 * parser's InvalidLineError (the collector counts the scrape as failed and bills nothing for it); readings
 * then attribute to samples with valid spans and shares.
 */
const model = buildModel(
  parseScenario(JSON.parse(readFileSync(new URL('./scenario.json', import.meta.url), 'utf8')) as unknown),
);
const nodes = model.scenario.nodes.map((n) => n.name);
/** Real pages: every node at times across the scenario (pods starting, sharing, ending). */
const pages = fc
  .tuple(fc.constantFrom(...nodes), fc.integer({ min: 0, max: model.scenario.durationMs }))
  .map(([node, t]) => renderMetrics(model, node, t)!);

const text = fc.oneof(
  { weight: 6, arbitrary: mutatedText(pages) },
  { weight: 1, arbitrary: pages },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 2,
    // Lines that look like DCGM series, with random labels and values.
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom(
            'DCGM_FI_DEV_FB_USED',
            'DCGM_FI_PROF_NVLINK_TX_BYTES',
            'DCGM_FI_PROF_PCIE_RX_BYTES',
            'DCGM_X',
          ),
          fc.dictionary(
            fc.constantFrom('UUID', 'gpu', 'GPU_I_ID', 'pod', 'namespace', 'modelName', 'Hostname'),
            fc.string({ maxLength: 6 }),
            { maxKeys: 5 },
          ),
          fc.oneof(fc.double().map(String), fc.constantFrom('NaN', '+Inf', '-Inf', '1e309', 'abc', '')),
        ),
        { maxLength: 8 },
      )
      .map((lines) =>
        lines
          .map(
            ([name, labels, value]) =>
              `${name}{${Object.entries(labels)
                .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '')}"`)
                .join(',')}} ${value}`,
          )
          .join('\n'),
      ),
  },
);

function parsedOrParserError(page: string) {
  try {
    return parseDcgm(page);
  } catch (error) {
    // The parser's own error names the line; nothing else may escape.
    expect(
      (error as Error).name === 'InvalidLineError' || /invalid line/i.test((error as Error).message),
      String(error),
    ).toBe(true);
    return undefined;
  }
}

function expectWellFormed(reading: DeviceReading): void {
  expect(reading.gpuUuid.length).toBeGreaterThan(0);
  expect(reading.key).toBe(
    reading.migInstanceId === null ? reading.gpuUuid : `${reading.gpuUuid}/${reading.migInstanceId}`,
  );
  expect(Number.isInteger(reading.gpuIndex)).toBe(true);
  for (const q of ['nvlinkTx', 'nvlinkRx', 'pcieTx', 'pcieRx', 'fbUsedMiB'] as const)
    expect(Number.isFinite(reading[q]), q).toBe(true);
  expect(reading.gpuType).not.toMatch(/\s/);
  if (reading.pod) expect(reading.pod.name.length).toBeGreaterThan(0);
}

describe('parseDcgm under random and mutated exposition text', () => {
  it('reads real pages completely', () => {
    fuzz(
      fc.property(pages, (page) => {
        const { devices, skipped } = parseDcgm(page);
        expect(skipped).toBe(0);
        expect(devices.length).toBeGreaterThan(0);
        devices.forEach(expectWellFormed);
      }),
      50,
    );
  });

  it('returns well-formed, unique readings or the parser error', () => {
    fuzz(
      fc.property(text, (page) => {
        const result = parsedOrParserError(page);
        if (!result) return;
        expect(Number.isInteger(result.skipped) && result.skipped >= 0).toBe(true);
        expect(new Set(result.devices.map((d) => d.key)).size).toBe(result.devices.length);
        result.devices.forEach(expectWellFormed);
      }),
      1500,
    );
  });
});

const I = 1_000;
const T = 1_767_225_600_000;
const holder = fc.record({
  uid: fc.string({ minLength: 1, maxLength: 4 }),
  start: fc.integer({ min: -2 * I, max: 2 * I }),
  end: fc.option(fc.integer({ min: -2 * I, max: 2 * I }), { nil: null }),
  started: fc.boolean(),
  fraction: fc.option(fc.constantFrom(0, -0.5, 0.25, 0.5, 1, 1e-9), { nil: undefined }),
});

describe('attribution of parsed readings', () => {
  it('splits each device into samples with valid spans, shares in [0, 1] and rates = reading x share', () => {
    fuzz(
      fc.property(text, fc.array(holder, { maxLength: 5 }), (page, holders) => {
        const devices = parsedOrParserError(page)?.devices ?? [];
        const unique = [...new Map(holders.map((h) => [h.uid, h])).values()];
        const asHolders = unique.map((h) => ({
          pod: {
            uid: h.uid,
            subject: 's',
            span: h.started
              ? { startMs: T + h.start, endMs: h.end === null ? null : T + Math.max(h.start, h.end) }
              : undefined,
          } as unknown as RunaiPod,
          fraction: h.fraction,
        }));
        for (const reading of devices) {
          const samples = attributeDevice(reading, asHolders, T, {
            clusterId: 'c',
            intervalMs: I,
            observer: 'o',
          });
          expect(samples.length).toBeGreaterThan(0);
          let covered = 0;
          for (const s of samples) {
            expect(s.spanEndMs).toBeGreaterThan(s.spanStartMs);
            expect(s.spanStartMs).toBeGreaterThanOrEqual(T - I);
            expect(s.spanEndMs).toBeLessThanOrEqual(T);
            expect(s.share >= 0 && s.share <= 1 + 1e-12, `share ${s.share}`).toBe(true);
            expect(s.pcieRxBytesPerSecond).toBe(reading.pcieRx * s.share);
            covered += s.share * (s.spanEndMs - s.spanStartMs);
          }
          // The device's interval is attributed exactly once (to holders or to `unallocated`).
          expect(Math.abs(covered - I)).toBeLessThan(1e-6);
        }
      }),
      800,
    );
  });
});
