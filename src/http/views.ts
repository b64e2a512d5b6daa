/** Response shapes of the API: snake_case JSON, ISO-8601 times, nothing secret. */
import { z } from 'zod';
import type { AccessRequest } from '../core/access-request.js';
import { type Grant, lastErrorNotice } from '../core/grant.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const reviewView = z.object({
  reviewer: z.string(),
  verdict: z.enum(['approve', 'deny']),
  reason: z.string(),
  at: z.string(),
});

export const requestView = z.object({
  id: z.string(),
  requester: z.string(),
  resource: z.string(),
  role: z.string(),
  duration_seconds: z.number().int(),
  reason: z.string(),
  ticket: z.string().nullable(),
  state: z.string(),
  approvals_required: z.number().int(),
  approver_groups: z.array(z.string()),
  policy_id: z.string(),
  reviews: z.array(reviewView),
  grant_id: z.string().nullable(),
  created_at: z.string(),
  /** When a request still pending lapses without its reviews (`requests.pending_ttl`); null if it never waited. */
  review_by: z.string().nullable(),
  activated_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
});
export type RequestView = z.infer<typeof requestView>;

export function toRequestView(request: AccessRequest, grantId: string | null): RequestView {
  return {
    id: request.id,
    requester: request.requesterId,
    resource: request.resourceId,
    role: request.role,
    duration_seconds: request.durationSeconds,
    reason: request.reason,
    ticket: request.ticket,
    state: request.state,
    approvals_required: request.route.requiredApprovals,
    approver_groups: [...request.route.approverGroups],
    policy_id: request.route.policyId,
    reviews: request.reviews.map((r) => ({
      reviewer: r.reviewerId,
      verdict: r.verdict,
      reason: r.reason,
      at: iso(r.at) ?? '',
    })),
    grant_id: grantId,
    created_at: iso(request.createdAt) ?? '',
    review_by: iso(request.reviewBy ?? null),
    activated_at: iso(request.activatedAt),
    expires_at: iso(request.expiresAt),
    ended_at: iso(request.endedAt),
    end_reason: request.endReason,
  };
}

export const grantView = z.object({
  id: z.string(),
  request_id: z.string(),
  principal: z.string(),
  resource: z.string(),
  role: z.string(),
  status: z.string(),
  not_before: z.string(),
  expires_at: z.string(),
  artefacts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  revoke_attempts: z.number().int(),
  /**
   * The last failure. A target system's own text is shown to administrators only; everyone else
   * reads a notice naming `last_error_reference`, under which the audit log holds the text.
   */
  last_error: z.string().nullable(),
  last_error_reference: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type GrantView = z.infer<typeof grantView>;

/**
 * `viewer.admin`: an administrator, shown a target system's own error text in `last_error`;
 * everyone else (the requester, resource owners) reads a notice with its reference instead.
 */
export function toGrantView(grant: Grant, viewer: { readonly admin: boolean }): GrantView {
  return {
    id: grant.id,
    request_id: grant.requestId,
    principal: grant.principalId,
    resource: grant.resourceId,
    role: grant.role,
    status: grant.status,
    not_before: iso(grant.notBefore) ?? '',
    expires_at: iso(grant.expiresAt) ?? '',
    artefacts: { ...grant.artefacts },
    revoke_attempts: grant.revokeAttempts,
    last_error: viewer.admin ? grant.lastError : lastErrorNotice(grant),
    last_error_reference: grant.lastErrorReference,
    revoked_at: iso(grant.revokedAt),
  };
}

export const problemView = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string(),
    instance: z.string(),
  })
  .catchall(z.unknown());

/** The problems a request or grant route may answer with, for its `response` schema. */
export const accessProblemResponses = {
  400: problemView,
  401: problemView,
  403: problemView,
  404: problemView,
  409: problemView,
  503: problemView,
};
