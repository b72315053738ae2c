import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

/**
 * The structure of docker/ (no Docker engine needed): compose.yaml and the Kubernetes manifests are parsed, and
 * every environment variable they set is checked against the config spec of the service that reads it - so a
 * renamed or misspelt variable, or a new required one, fails here instead of at `docker compose up`.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The processes of gpu-meter itself (the local build), and the module whose exported spec each one reads. */
const SPEC_MODULES: Record<string, string> = {
  'runai-collector': 'services/runai-collector/src/config.ts',
  'bandwidth-collector': 'services/bandwidth-collector/src/config.ts',
  'usage-aggregator': 'services/usage-aggregator/src/config.ts',
  'clickhouse-sink': 'services/clickhouse-sink/src/config.ts',
  'openmeter-forwarder': 'services/openmeter-forwarder/src/config.ts',
  simulator: 'test/simulator/src/config.ts',
  'fake-openmeter': 'test/support/fake-openmeter-main.ts',
};
const ENTRY_POINTS: Record<string, string> = {
  ...Object.fromEntries(Object.keys(SPEC_MODULES).map((name) => [name, `services/${name}/src/main.ts`])),
  simulator: 'test/simulator/src/main.ts',
  'fake-openmeter': 'test/support/fake-openmeter-main.ts',
};
const INFRASTRUCTURE = ['kafka', 'kafka-init', 'schema-registry', 'clickhouse'];
const LOCAL_IMAGE = 'gpu-meter:dev';
/** An exact release: name:MAJOR.MINOR.PATCH[...], never a moving tag. */
const PINNED = /^[a-z0-9./_-]+:\d+\.\d+\.\d+[\w.-]*$/;

interface Field {
  variable: string;
  schema: { safeParse(value: unknown): { success: boolean } };
}
interface Spec {
  variables: Set<string>;
  required: string[];
  fields: Field[];
  loadConfig?: (env: Record<string, string>) => unknown;
}

const isField = (value: unknown): value is Field =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Field).variable === 'string' &&
  typeof (value as Field).schema?.safeParse === 'function';

/** Every exported config spec of the module (an object whose values are all EnvFields), merged. */
async function loadSpec(service: string): Promise<Spec> {
  const path = SPEC_MODULES[service]!;
  expect(existsSync(join(ROOT, path)), `${path} must exist and export the config spec of ${service}`).toBe(
    true,
  );
  const module = (await import(pathToFileURL(join(ROOT, path)).href)) as Record<string, unknown>;
  const fields = Object.values(module)
    .filter(
      (value): value is Record<string, Field> =>
        typeof value === 'object' &&
        value !== null &&
        Object.keys(value).length > 0 &&
        Object.values(value).every(isField),
    )
    .flatMap((spec) => Object.values(spec));
  expect(fields.length, `${path} exports no config spec (an object of env(...) fields)`).toBeGreaterThan(0);
  return {
    fields,
    variables: new Set(fields.map((field) => field.variable)),
    // Required: the schema refuses "not set".
    required: fields
      .filter((field) => !field.schema.safeParse(undefined).success)
      .map((field) => field.variable),
    loadConfig:
      typeof module.loadConfig === 'function' ? (module.loadConfig as Spec['loadConfig']) : undefined,
  };
}

/** Names are ones the spec reads (or their *_FILE form), required ones are set, and the values validate. */
function expectEnvMatchesSpec(where: string, env: Record<string, string>, spec: Spec): void {
  // NAME_FILE is the kit's file form of NAME (a secret mounted as a file), unless NAME_FILE is itself a variable.
  const fileFormOf = (name: string) =>
    !spec.variables.has(name) && name.endsWith('_FILE') && spec.variables.has(name.slice(0, -5))
      ? name.slice(0, -5)
      : undefined;
  const unknown = Object.keys(env).filter(
    (name) => !spec.variables.has(name) && fileFormOf(name) === undefined,
  );
  expect(unknown, `${where}: variables no config spec reads`).toEqual([]);
  const missing = spec.required.filter(
    (name) => env[name] === undefined && env[`${name}_FILE`] === undefined,
  );
  expect(missing, `${where}: required variables not set`).toEqual([]);
  // Values: files referenced by *_FILE only exist at run time, so stand in for them.
  const values = Object.fromEntries(
    Object.entries(env).map(([name, value]) => [
      fileFormOf(name) ?? name,
      fileFormOf(name) ? 'from-a-file' : value,
    ]),
  );
  for (const field of spec.fields) {
    if (values[field.variable] === undefined) continue;
    expect(
      field.schema.safeParse(values[field.variable]).success,
      `${where}: ${field.variable}=${values[field.variable]}`,
    ).toBe(true);
  }
  // Cross-field rules (e.g. SAMPLE_DELAY_MS below SAMPLING_INTERVAL_MS) live in loadConfig.
  if (spec.loadConfig) expect(() => spec.loadConfig!(values), where).not.toThrow();
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  restart?: string;
  environment?: Record<string, string | number | boolean>;
  healthcheck?: { test: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
  volumes?: string[];
  ports?: string[];
}

const compose = parse(read('docker/compose.yaml'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const composeEnv = (name: string) =>
  Object.fromEntries(
    Object.entries(services[name]?.environment ?? {}).map(([key, value]) => [key, String(value)]),
  );
const healthTest = (service: ComposeService) =>
  Array.isArray(service.healthcheck?.test)
    ? service.healthcheck.test.join(' ')
    : String(service.healthcheck?.test ?? '');
const longRunning = (service: ComposeService) => service.restart !== 'no';

describe('docker/compose.yaml', () => {
  it('runs everything gpu-meter needs', () => {
    expect(Object.keys(services).sort()).toEqual([...INFRASTRUCTURE, ...Object.keys(SPEC_MODULES)].sort());
  });

  it('pins every image to an exact release, or builds docker/Dockerfile', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) {
        expect(service.build, name).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
        expect(service.image, name).toBe(LOCAL_IMAGE);
      } else {
        expect(service.image, name).toMatch(PINNED);
      }
    }
    expect(read('docker/Dockerfile')).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-[a-z]+-slim$/m);
  });

  it('starts each gpu-meter process from its own entry point', () => {
    for (const [name, entry] of Object.entries(ENTRY_POINTS)) {
      expect(services[name]?.image, name).toBe(LOCAL_IMAGE);
      expect(services[name]?.command, name).toEqual([entry]);
      expect(existsSync(join(ROOT, entry)), `${entry} exists`).toBe(true);
    }
  });

  it('gives every long-running service a healthcheck, on its ops port for gpu-meter services', () => {
    for (const [name, service] of Object.entries(services).filter(([, s]) => longRunning(s))) {
      expect(service.healthcheck?.disable, name).not.toBe(true);
      expect(healthTest(service), name).toMatch(/^CMD(-SHELL)? /);
    }
    for (const name of [
      'runai-collector',
      'bandwidth-collector',
      'usage-aggregator',
      'clickhouse-sink',
      'openmeter-forwarder',
    ]) {
      const port = composeEnv(name).OPS_PORT ?? '9464';
      expect(healthTest(services[name]!), name).toContain(`http://127.0.0.1:${port}/readyz`);
      expect(
        services[name]!.ports?.some((mapping) => mapping.endsWith(`:${port}`)),
        `${name} publishes its ops port`,
      ).toBe(true);
    }
  });

  it('orders start-up by health: every dependency has a condition its target can meet', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.depends_on === undefined) continue;
      expect(Array.isArray(service.depends_on), `${name}: depends_on needs conditions`).toBe(false);
      for (const [target, { condition }] of Object.entries(
        service.depends_on as Record<string, { condition: string }>,
      )) {
        const dependency = services[target];
        expect(dependency, `${name} depends on unknown ${target}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(dependency!.healthcheck, `${target} has a healthcheck`).toBeDefined();
        else if (condition === 'service_completed_successfully')
          expect(dependency!.restart, `${target} is one-shot`).toBe('no');
        else expect.fail(`${name} -> ${target}: condition ${condition}`);
      }
    }
    // Topics come from the aggregator (AUTO_CREATE_TOPICS): nobody reads or writes them before it is up.
    expect(composeEnv('usage-aggregator').AUTO_CREATE_TOPICS).toBe('true');
    for (const name of ['runai-collector', 'bandwidth-collector', 'clickhouse-sink', 'openmeter-forwarder']) {
      expect(services[name]!.depends_on, name).toHaveProperty(
        'usage-aggregator.condition',
        'service_healthy',
      );
    }
  });

  it('keeps Kafka and ClickHouse data in named volumes', () => {
    for (const [name, path] of [
      ['kafka', '/var/lib/kafka/data'],
      ['clickhouse', '/var/lib/clickhouse'],
    ] as const) {
      const mount = services[name]!.volumes?.find((volume) => volume.endsWith(`:${path}`));
      expect(mount, name).toBeDefined();
      expect(Object.keys(compose.volumes)).toContain(mount!.split(':')[0]);
    }
    expect(composeEnv('kafka').KAFKA_LOG_DIRS).toBe('/var/lib/kafka/data');
  });

  it.each(Object.keys(SPEC_MODULES))('sets only variables %s reads, and all it requires', async (name) => {
    expectEnvMatchesSpec(`compose ${name}`, composeEnv(name), await loadSpec(name));
  });

  it('plays a demo scenario the simulator accepts', async () => {
    const file = composeEnv('simulator').SCENARIO_FILE!;
    const simulator = (await import(pathToFileURL(join(ROOT, 'test/simulator/src/index.ts')).href)) as {
      loadScenario(path: string): { durationMs: number; clusterId: string };
    };
    const scenario = simulator.loadScenario(join(ROOT, file));
    expect(scenario.durationMs).toBeGreaterThanOrEqual(3_600_000);
    expect(composeEnv('runai-collector').CLUSTER_ID).toBe(scenario.clusterId);
  });
});

type K8sObject = { kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown };
const manifests: K8sObject[] = readdirSync(join(ROOT, 'docker/kubernetes'))
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(read(`docker/kubernetes/${file}`)).map((document) => {
      expect(document.errors, file).toEqual([]);
      return document.toJS() as K8sObject;
    }),
  );
const ofKind = (kind: string) => manifests.filter((object) => object.kind === kind);

interface Container {
  image: string;
  args: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: unknown }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: {
    allowPrivilegeEscalation: boolean;
    readOnlyRootFilesystem: boolean;
    capabilities: { drop: string[] };
  };
}
interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    template: {
      spec: { serviceAccountName: string; securityContext: Record<string, unknown>; containers: Container[] };
    };
  };
}

describe('docker/kubernetes', () => {
  it('grants the collectors only get/list/watch on pods and nodes', () => {
    expect(ofKind('Role')).toEqual([]);
    expect(ofKind('RoleBinding')).toEqual([]);
    const [role, ...others] = ofKind('ClusterRole') as (K8sObject & { rules: Record<string, string[]>[] })[];
    expect(others).toEqual([]);
    expect(role!.rules).toHaveLength(1);
    const rule = role!.rules[0]!;
    expect(Object.keys(rule).sort()).toEqual(['apiGroups', 'resources', 'verbs']);
    expect(rule.apiGroups).toEqual(['']);
    expect([...rule.resources!].sort()).toEqual(['nodes', 'pods']);
    expect([...rule.verbs!].sort()).toEqual(['get', 'list', 'watch']);
    const [binding] = ofKind('ClusterRoleBinding') as (K8sObject & {
      roleRef: { name: string };
      subjects: unknown[];
    })[];
    expect(binding!.roleRef.name).toBe(role!.metadata.name);
    const [account] = ofKind('ServiceAccount');
    expect(binding!.subjects).toEqual([
      { kind: 'ServiceAccount', name: account!.metadata.name, namespace: account!.metadata.namespace },
    ]);
  });

  it.each(['runai-collector', 'bandwidth-collector'])(
    'runs %s locked down, probed on its ops port',
    (name) => {
      const deployment = ofKind('Deployment').find((object) => object.metadata.name === name) as
        Deployment | undefined;
      expect(deployment).toBeDefined();
      const pod = deployment!.spec.template.spec;
      expect(pod.serviceAccountName).toBe(ofKind('ServiceAccount')[0]!.metadata.name);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
      expect(deployment!.spec.replicas).toBeGreaterThanOrEqual(2);
      const [container] = pod.containers;
      expect(container!.image).toMatch(PINNED);
      expect(container!.args).toEqual([ENTRY_POINTS[name]]);
      expect(container!.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      for (const kind of ['requests', 'limits'] as const)
        expect(Object.keys(container!.resources[kind]).sort()).toEqual(['cpu', 'memory']);
      const ops = container!.ports.find((port) => port.name === 'ops')!;
      expect(container!.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'ops' });
      expect(container!.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'ops' });
      expect(String(ops.containerPort)).toBe(deploymentEnv(container!).OPS_PORT ?? '9464');
    },
  );

  it.each(['runai-collector', 'bandwidth-collector'])(
    'sets only variables %s reads, and all it requires',
    async (name) => {
      const deployment = ofKind('Deployment').find((object) => object.metadata.name === name) as Deployment;
      const env = deploymentEnv(deployment.spec.template.spec.containers[0]!);
      // In a cluster the API server comes from the service account, never from a URL.
      expect(env.K8S_API_URL).toBeUndefined();
      expectEnvMatchesSpec(`kubernetes ${name}`, env, await loadSpec(name));
    },
  );
});

/** A container's environment: its env entries and the data of the ConfigMaps it takes whole (envFrom). */
function deploymentEnv(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    // Only ConfigMaps defined here: their keys must be checkable.
    expect(source.secretRef, 'envFrom secretRef hides its variable names').toBeUndefined();
    const map = ofKind('ConfigMap').find((object) => object.metadata.name === source.configMapRef?.name) as
      (K8sObject & { data: Record<string, string> }) | undefined;
    expect(map, `ConfigMap ${source.configMapRef?.name}`).toBeDefined();
    Object.assign(env, map!.data);
  }
  for (const entry of container.env ?? []) env[entry.name] = entry.value ?? 'from-a-reference';
  return env;
}
