import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startService } from '../../../test/support/processes.js';

// Played as a real process, as the collectors' integration tests can run it.
describe('simulator process', () => {
  it('plays a scenario live and logs where it serves', async () => {
    // Started a minute in the past: every change of this 30 s scenario is already due, so nothing here races the clock.
    const startMs = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const sim = startService('simulator', {
      SCENARIO_FILE: 'test/scenarios/short-mixed.json',
      SIMULATOR_K8S_PORT: '0',
      SIMULATOR_DCGM_PORT: '0',
      SIMULATOR_START_MS: String(startMs),
    });
    const ready = JSON.parse(await sim.waitForLog(/simulator ready/)) as {
      k8sUrl: string;
      dcgmUrl: string;
      startMs: number;
    };
    expect(ready.startMs).toBe(startMs);
    const pods = (await (await fetch(`${ready.k8sUrl}/api/v1/namespaces/runai-ops/pods`)).json()) as {
      items: { metadata: { name: string }; status: { phase: string } }[];
    };
    // cpu-only was deleted at 26 s; the others ended.
    expect(pods.items.map((p) => `${p.metadata.name} ${p.status.phase}`).sort()).toEqual([
      'quick Succeeded',
      'share-1 Succeeded',
      'share-2 Succeeded',
      'waits Succeeded',
    ]);
    const metrics = await (await fetch(ready.dcgmUrl.replace('<node>', 'node-s'))).text();
    expect(metrics).toContain('# TYPE DCGM_FI_PROF_PCIE_TX_BYTES gauge');
    await sim.kill('SIGTERM');
    expect(sim.output.some((line) => line.includes('shutting down'))).toBe(true);
  });

  it('exits 1 naming the problem when the scenario is invalid', async () => {
    const file = join(tmpdir(), `bad-scenario-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ clusterId: 'c', nodes: [] }));
    onTestFinished(() => rmSync(file, { force: true }));
    const sim = startService('simulator', {
      SCENARIO_FILE: file,
      SIMULATOR_K8S_PORT: '0',
      SIMULATOR_DCGM_PORT: '0',
    });
    expect(await sim.waitForExit()).toBe(1);
    expect(sim.output.join('\n')).toContain('nodes: Too small: expected array to have >=1 items');
  });

  it('exits 1 naming the variable when SCENARIO_FILE is missing', async () => {
    const sim = startService('simulator', { SCENARIO_FILE: '' });
    expect(await sim.waitForExit()).toBe(1);
    expect(sim.output.join('\n')).toContain('SCENARIO_FILE');
  });
});
