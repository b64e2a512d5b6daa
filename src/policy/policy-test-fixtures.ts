/**
 * Shared fixtures for the policy tests and the policy bench: the demo resources, principals and a
 * context builder. Not part of the engine.
 */
import type { PolicyContext } from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition, Sensitivity } from '../core/resource.js';

export function testRole(name: string): RoleDefinition {
  return { name, description: '', grants: [] };
}

export function testResource(
  id: string,
  fields: {
    kind?: string;
    sensitivity?: Sensitivity;
    owners?: string[];
    labels?: Record<string, string>;
    roles: string[];
  },
): ResourceDefinition {
  return {
    id,
    kind: fields.kind ?? 'postgres',
    description: '',
    sensitivity: fields.sensitivity ?? 'medium',
    labels: fields.labels ?? {},
    owners: fields.owners ?? [],
    roles: new Map(fields.roles.map((name) => [name, testRole(name)])),
  };
}

/** The resources of the demo configuration (examples/demo). */
export const demoResources: ReadonlyMap<string, ResourceDefinition> = new Map([
  [
    'demo-db',
    testResource('demo-db', {
      kind: 'postgres',
      sensitivity: 'high',
      owners: ['dba'],
      labels: { env: 'demo' },
      roles: ['readonly', 'readwrite'],
    }),
  ],
  [
    'demo-api',
    testResource('demo-api', {
      kind: 'token',
      sensitivity: 'low',
      owners: ['sre'],
      roles: ['reader', 'operator'],
    }),
  ],
  [
    'demo-hosts',
    testResource('demo-hosts', { kind: 'ssh', sensitivity: 'high', owners: ['sre'], roles: ['ops'] }),
  ],
]);

export function testPrincipal(name: string, groups: string[], idp = 'demo'): Principal {
  return {
    id: `${idp}:${name}`,
    idp,
    subject: name,
    displayName: name,
    email: `${name}@example.com`,
    groups,
  };
}

export const demoPrincipals = {
  alice: testPrincipal('alice', ['engineering']),
  bob: testPrincipal('bob', ['sre']),
  carol: testPrincipal('carol', ['dba']),
  dave: testPrincipal('dave', ['admins']),
} as const;

/** A context on a Tuesday at 10:00 for 30 minutes with a reason and no ticket, unless overridden. */
export function testContext(overrides: Partial<PolicyContext> = {}): PolicyContext {
  return {
    durationMinutes: 30,
    hour: 10,
    weekday: 'tue',
    reason: 'investigating an incident',
    ticket: '',
    sensitivity: 'medium',
    source: 'cli',
    requesterId: 'demo:alice',
    ...overrides,
  };
}
