import { describe, expect, it } from 'vitest';
import { parseDcgm } from '../src/dcgm.js';

/** Trimmed from a real dcgm-exporter page (pod mapping on, one shared GPU, one MIG instance). */
const PAGE = `# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",DCGM_FI_DRIVER_VERSION="535.104.05",container="main",namespace="runai-team-a",pod="train-1-0-0"} 40000
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-bbbb",device="nvidia1",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",DCGM_FI_DRIVER_VERSION="535.104.05",container="runai-reservation",namespace="runai-reservation",pod="runai-reservation-gpu-dgx-01-1-0"} 1024
DCGM_FI_DEV_FB_USED{gpu="3",UUID="GPU-dddd",device="nvidia3",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",GPU_I_PROFILE="1g.10gb",GPU_I_ID="2",DCGM_FI_DRIVER_VERSION="535.104.05"} 0
# HELP DCGM_FI_PROF_NVLINK_TX_BYTES The rate of data transmitted over NVLink, not including protocol headers, in bytes per second.
# TYPE DCGM_FI_PROF_NVLINK_TX_BYTES gauge
DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",container="main",namespace="runai-team-a",pod="train-1-0-0"} 2.5e+09
DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="1",UUID="GPU-bbbb",device="nvidia1",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",container="runai-reservation",namespace="runai-reservation",pod="runai-reservation-gpu-dgx-01-1-0"} 1000
DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="2",UUID="GPU-cccc",device="nvidia2",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01"} NaN
# TYPE DCGM_FI_PROF_PCIE_RX_BYTES gauge
DCGM_FI_PROF_PCIE_RX_BYTES{gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",container="main",namespace="runai-team-a",pod="train-1-0-0"} 123456
DCGM_FI_PROF_PCIE_RX_BYTES{gpu="3",UUID="GPU-dddd",device="nvidia3",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01",GPU_I_PROFILE="1g.10gb",GPU_I_ID="2"} 77
# TYPE DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL counter
DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01"} 2500
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="dgx-01"} 99
`;

describe('parseDcgm', () => {
  const { devices, skipped } = parseDcgm(PAGE);
  const byKey = new Map(devices.map((d) => [d.key, d]));

  it('groups series into one reading per GPU, with the documented units', () => {
    expect(byKey.get('GPU-aaaa')).toEqual({
      key: 'GPU-aaaa',
      gpuUuid: 'GPU-aaaa',
      gpuIndex: 0,
      migInstanceId: null,
      migProfile: null,
      hostname: 'dgx-01',
      gpuType: 'NVIDIA-A100-SXM4-80GB',
      pod: { namespace: 'runai-team-a', name: 'train-1-0-0' },
      nvlinkTx: 2.5e9,
      nvlinkRx: 0,
      pcieTx: 0,
      pcieRx: 123456,
      fbUsedMiB: 40000,
    });
  });

  it('keys a MIG instance by GPU uuid and GPU_I_ID, with its profile', () => {
    expect(byKey.get('GPU-dddd/2')).toMatchObject({
      migInstanceId: '2',
      migProfile: '1g.10gb',
      gpuIndex: 3,
      pcieRx: 77,
      pod: undefined,
    });
  });

  it('keeps the reservation pod a shared GPU names, and skips non-numeric values', () => {
    expect(byKey.get('GPU-bbbb')?.pod).toEqual({
      namespace: 'runai-reservation',
      name: 'runai-reservation-gpu-dgx-01-1-0',
    });
    expect(byKey.has('GPU-cccc')).toBe(false);
    expect(skipped).toBe(1);
  });

  it('accepts the lower-case hostname label of newer exporters and escaped label values', () => {
    const page =
      '# TYPE DCGM_FI_DEV_FB_USED gauge\nDCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-e",modelName="Tesla T4",hostname="n\\"1"} 5\n';
    expect(parseDcgm(page).devices[0]).toMatchObject({ hostname: 'n"1', gpuType: 'Tesla-T4', fbUsedMiB: 5 });
  });
});

// Issue 13 point 7: one line the parser rejects must not lose the exporter's whole interval.
describe('parseDcgm with unparsable lines', () => {
  const good = parseDcgm(PAGE);
  const lines = PAGE.split('\n');
  const broken = [
    ...lines.slice(0, 3),
    'DCGM_FI_DEV_FB_USED{gpu="9",UUID="GPU-zzzz" 12', // unterminated label set
    ...lines.slice(3, 8),
    'this is { not a metric',
    ...lines.slice(8),
  ].join('\n');

  it('skips and counts each bad line and keeps every reading of the good ones', () => {
    const result = parseDcgm(broken);
    expect(result.devices).toEqual(good.devices);
    expect(result.badLines).toBe(2);
    expect(result.skipped).toBe(good.skipped + 2);
  });

  it('keeps CRLF pages and a page of only bad lines', () => {
    expect(parseDcgm(PAGE.replace(/\n/g, '\r\n')).devices).toEqual(good.devices);
    expect(parseDcgm('}{\n"\n')).toMatchObject({ devices: [], badLines: 2 });
  });
});
