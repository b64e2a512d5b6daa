/**
 * Builders of domain values for the storage tests. Test-only: nothing in production imports this.
 */
import type { StoredKey } from '../app/ports.js';
import { type AccessRequest, openRequest } from '../core/access-request.js';
import { type Grant, newGrant } from '../core/grant.js';
import type { ApprovalRoute } from '../core/policy-decision.js';
import { type Principal, principalId } from '../core/principal.js';

/** 2026-01-01T00:00:00Z: a fixed "now" for the storage tests. */
export const testEpoch = Date.UTC(2026, 0, 1);

export const testRoute: ApprovalRoute = {
  requiredApprovals: 1,
  approverGroups: ['sre'],
  maxDurationSeconds: 3600,
  autoApprove: false,
  policyId: 'prod-db-needs-sre',
};

export function testPrincipal(subject: string, groups: readonly string[] = ['engineering']): Principal {
  return {
    id: principalId('okta', subject),
    idp: 'okta',
    subject,
    displayName: subject.charAt(0).toUpperCase() + subject.slice(1),
    email: `${subject}@example.com`,
    groups,
  };
}

/** A pending request by `alice` for `prod-db/readonly`, 30 minutes, unless overridden. */
export function testRequest(id: string, overrides: Partial<AccessRequest> = {}): AccessRequest {
  const opened = openRequest(
    {
      id,
      requester: testPrincipal('alice'),
      resourceId: 'prod-db',
      role: 'readonly',
      durationSeconds: 1800,
      reason: 'migration INC-42',
      ticket: 'INC-42',
      source: 'cli',
      pendingTtlSeconds: 86_400,
    },
    testRoute,
    testEpoch,
  );
  return { ...opened, ...overrides };
}

/** An active grant for `request`, from `testEpoch` to its expiry, unless overridden. */
export function testGrant(id: string, request: AccessRequest, overrides: Partial<Grant> = {}): Grant {
  const grant = newGrant({
    id,
    requestId: request.id,
    principalId: request.requesterId,
    resourceId: request.resourceId,
    role: request.role,
    notBefore: testEpoch,
    expiresAt: testEpoch + request.durationSeconds * 1000,
    artefacts: { roleName: `pc_${id}`, attempts: 1, temporary: true, note: null },
  });
  return { ...grant, status: 'active', ...overrides };
}

export function testKey(kid: string, overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    kid,
    purpose: 'token',
    alg: 'EdDSA',
    publicJwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: kid }),
    sealedPrivateJwk: `sealed:${kid}`,
    createdAt: testEpoch,
    active: true,
    publishUntil: null,
    ...overrides,
  };
}
