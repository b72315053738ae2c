import type { K8sObject } from './k8s-objects.js';

/**
 * The equality subset of Kubernetes label and field selectors: `k=v`, `k==v`, `k!=v`, and for labels also `k`
 * (exists) and `!k` (absent); requirements separated by commas must all hold.
 */
export type Matcher = (object: K8sObject) => boolean;

type Requirement = { key: string; op: '=' | '!=' | 'exists' | 'absent'; value?: string };

function parse(selector: string): Requirement[] {
  return selector
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part): Requirement => {
      const neq = /^([^!=]+)!=(.*)$/.exec(part);
      if (neq) return { key: neq[1]!.trim(), op: '!=', value: neq[2]!.trim() };
      const eq = /^([^!=]+)==?(.*)$/.exec(part);
      if (eq) return { key: eq[1]!.trim(), op: '=', value: eq[2]!.trim() };
      if (part.startsWith('!')) return { key: part.slice(1).trim(), op: 'absent' };
      return { key: part, op: 'exists' };
    });
}

function holds(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case '=':
      return value === r.value;
    case '!=':
      return value !== r.value;
    case 'exists':
      return value !== undefined;
    case 'absent':
      return value === undefined;
  }
}

function fieldValue(object: K8sObject, path: string): string | undefined {
  let current: unknown = object;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  // An absent field compares as '' (spec.nodeName= selects unscheduled pods, as in Kubernetes).
  return current === undefined ? '' : String(current);
}

export function matcher(labelSelector: string | undefined, fieldSelector: string | undefined): Matcher {
  const labels = parse(labelSelector ?? '');
  const fields = parse(fieldSelector ?? '');
  return (object) => {
    const objectLabels = (object.metadata.labels ?? {}) as Record<string, string>;
    return (
      labels.every((r) => holds(r, objectLabels[r.key])) &&
      fields.every((r) => holds(r, fieldValue(object, r.key)))
    );
  };
}
