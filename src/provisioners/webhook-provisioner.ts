/**
 * The `webhook` provisioner: for targets Portcullis has no adapter of its own for (a cloud role, a
 * SaaS admin right, an internal tool), a service the operator runs does the work and Portcullis
 * calls it with signed JSON. The contract (docs/provisioners.md#webhook):
 *
 * - `POST` to the resource's URL, body `{version, operation, installation, resource, …}`, signed
 *   with `Portcullis-Signature` (src/webhooks/signed-webhook.ts), `Portcullis-Operation` naming the
 *   operation and an `Idempotency-Key` that is the same on every retry of one operation.
 * - `apply` answers 200/201 with `{artefacts?, credentials?}`: artefacts are kept in the grant and
 *   sent back with `revoke`; credentials are sealed and shown to the requester only.
 * - `revoke` answers 200 with `{"revoked": true}`, or 404/410 with `{"gone": true}` when the access
 *   is already gone: said in so many words, so that a route that moved or a proxy's error page is
 *   never taken for a revocation.
 * - `inspect` (only when the resource sets `inspect: true`) answers `{holdings: [{grant_id,
 *   artefacts}]}`: what the target holds for this resource and installation.
 * - `standing` (only with `standing: true`) answers `{standing: [{holder, via}]}`: who holds the
 *   resource's access at the target without any grant.
 *
 * Any other answer, no answer within the timeout, a redirect, or a body that is not the JSON the
 * operation expects is a `provisioning_failed` error; messages never contain the URL (it may embed
 * a token) or a credential. Retries are the access service's (src/app/access-service.ts).
 */
import { z } from 'zod';
import type { ProvisionContext, Provisioner, ProvisionResult } from '../app/ports.js';
import type { ConfiguredResource, WebhookTargetSettings } from '../config/load.js';
import type { TargetHolding } from '../core/drift.js';
import { PortcullisError } from '../core/errors.js';
import type { Artefacts, Grant } from '../core/grant.js';
import type { ResourceDefinition } from '../core/resource.js';
import { type StandingAccess, unacknowledgedStanding } from '../core/standing-access.js';
import { exchangeSignedJson, type SignedAnswer } from '../webhooks/signed-webhook.js';

/** The version of the request body; a target should refuse a version it does not know. */
export const webhookProvisionerVersion = 1;
export const idempotencyKeyHeader = 'idempotency-key';
export const operationHeader = 'portcullis-operation';

type Operation = 'apply' | 'revoke' | 'inspect' | 'standing';

/** Answers larger than this are refused unread. */
const maxAnswerBytes: Readonly<Record<Operation, number>> = {
  apply: 64 * 1024,
  revoke: 64 * 1024,
  inspect: 8 * 1024 * 1024,
  standing: 1024 * 1024,
};

const fieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a name of letters, digits and _');
const limitEntries =
  (max: number) =>
  (record: Record<string, unknown>): boolean =>
    Object.keys(record).length <= max;
const artefacts = z
  .record(fieldName, z.union([z.string().max(4096), z.number().finite(), z.boolean(), z.null()]))
  .refine(limitEntries(32), 'has more than 32 entries');
const applyAnswer = z.object({
  artefacts: artefacts.default({}),
  credentials: z
    .record(fieldName, z.string().max(16_384))
    .refine(limitEntries(32), 'has more than 32 entries')
    .optional(),
});
const standingAnswer = z.object({
  standing: z
    .array(
      z.object({
        holder: z.string().regex(/^[^\p{Cc}]{1,256}$/u, 'must be a name without control characters'),
        via: z.string().regex(/^[^\p{Cc}]{1,256}$/u, 'must be a name without control characters'),
      }),
    )
    .max(10_000),
});
const revokedAnswer = z.object({ revoked: z.literal(true) });
const goneAnswer = z.object({ gone: z.literal(true) });
const inspectAnswer = z.object({
  holdings: z
    .array(
      z.object({
        // Portcullis' own ids are UUIDs; this keeps a hostile answer from smuggling control
        // characters or huge keys into lookups and audit events.
        grant_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be a grant id'),
        artefacts: artefacts.default({}),
      }),
    )
    .max(10_000),
});

export interface WebhookProvisionerOptions {
  /** This installation's id (`Store.installationId()`): a target serving several tells them apart. */
  readonly installation: string;
  /** Epoch ms, for signature timestamps. */
  readonly now?: () => number;
}

export class WebhookProvisioner implements Provisioner {
  readonly kind = 'webhook';
  readonly activatesInProcess = false;
  readonly #options: WebhookProvisionerOptions;

  constructor(options: WebhookProvisionerOptions) {
    this.#options = options;
  }

  /** The target names what it creates; the grant id (in the idempotency key) ties retries together. */
  plan(_grant: Pick<Grant, 'id'>, _resource: ResourceDefinition): Artefacts {
    return {};
  }

  async apply(context: ProvisionContext): Promise<ProvisionResult> {
    const { grant } = context;
    const answer = await this.#call(context.resource, 'apply', `${grant.id}.apply`, {
      ...this.#access(context),
      principal: {
        id: grant.principalId,
        ...(context.principal
          ? { idp: context.principal.idp, subject: context.principal.subject, email: context.principal.email }
          : {}),
      },
    });
    if (answer.status !== 200 && answer.status !== 201)
      throw this.#refused(context.resource, 'apply', answer);
    const parsed = this.#parse(context.resource, 'apply', answer, applyAnswer);
    return {
      artefacts: parsed.artefacts,
      ...(parsed.credentials && Object.keys(parsed.credentials).length > 0
        ? { credentials: parsed.credentials }
        : {}),
    };
  }

  async revoke(context: ProvisionContext): Promise<void> {
    const { grant } = context;
    const takeBack = context.takeBack;
    const key = takeBack ? `${grant.id}.take-back.${takeBack.run}` : `${grant.id}.revoke`;
    const answer = await this.#call(context.resource, 'revoke', key, {
      ...this.#access(context),
      principal: { id: grant.principalId },
      ...(takeBack ? { take_back: { run: takeBack.run, drift: takeBack.drift } } : {}),
    });
    // Gone already: what revoking it would have achieved, when the service says so itself.
    if (answer.status === 404 || answer.status === 410) {
      this.#parse(context.resource, 'revoke', answer, goneAnswer);
      return;
    }
    if (answer.status !== 200) throw this.#refused(context.resource, 'revoke', answer);
    this.#parse(context.resource, 'revoke', answer, revokedAnswer);
  }

  async inspect(resource: ResourceDefinition): Promise<readonly TargetHolding[] | null> {
    if (!targetOf(resource).inspect) return null;
    const answer = await this.#call(resource, 'inspect', null, { resource: resourceJson(resource) });
    if (answer.status !== 200) throw this.#refused(resource, 'inspect', answer);
    return this.#parse(resource, 'inspect', answer, inspectAnswer).holdings.map((h) => ({
      grantId: h.grant_id,
      artefacts: h.artefacts,
    }));
  }

  /**
   * Who holds the resource's access at the target without a grant, as the service reports it; null
   * unless the resource sets `standing: true`.
   */
  async standing(resource: ResourceDefinition): Promise<readonly StandingAccess[] | null> {
    if (!targetOf(resource).standing) return null;
    const answer = await this.#call(resource, 'standing', null, {
      resource: resourceJson(resource),
      roles: [...resource.roles.values()].map((role) => ({ name: role.name, grants: role.grants })),
    });
    if (answer.status !== 200) throw this.#refused(resource, 'standing', answer);
    return unacknowledgedStanding(this.#parse(resource, 'standing', answer, standingAnswer).standing, []);
  }

  async close(): Promise<void> {}

  /** What `apply` and `revoke` both send: the grant, its resource and role. */
  #access(context: ProvisionContext): Record<string, unknown> {
    const { grant, resource, role } = context;
    return {
      resource: resourceJson(resource),
      role: { name: role.name, grants: role.grants },
      grant: {
        id: grant.id,
        request_id: grant.requestId,
        not_before: new Date(grant.notBefore).toISOString(),
        expires_at: new Date(grant.expiresAt).toISOString(),
        artefacts: grant.artefacts,
      },
    };
  }

  async #call(
    resource: ResourceDefinition,
    operation: Operation,
    idempotencyKey: string | null,
    fields: Record<string, unknown>,
  ): Promise<SignedAnswer> {
    const target = targetOf(resource);
    // The key is in the signed body too: the header alone could be changed or replayed unsigned.
    const body = JSON.stringify({
      version: webhookProvisionerVersion,
      operation,
      ...(idempotencyKey ? { idempotency_key: idempotencyKey } : {}),
      installation: this.#options.installation,
      ...fields,
    });
    try {
      return await exchangeSignedJson(
        {
          url: target.url.reveal(),
          secret: target.secret.reveal(),
          timeoutMs: target.timeoutMs,
          ...(this.#options.now ? { now: this.#options.now } : {}),
        },
        {
          label: `the webhook target of resource ${resource.id} (${operation})`,
          userAgent: `Portcullis-Provisioner/${webhookProvisionerVersion}`,
          headers: {
            [operationHeader]: operation,
            ...(idempotencyKey ? { [idempotencyKeyHeader]: idempotencyKey } : {}),
          },
        },
        body,
        maxAnswerBytes[operation],
      );
    } catch (error) {
      throw new PortcullisError('provisioning_failed', (error as Error).message, { resource: resource.id });
    }
  }

  #refused(resource: ResourceDefinition, operation: Operation, answer: SignedAnswer): PortcullisError {
    // The target's own words help whoever fixes it; cut short and on one line. Not for apply: an
    // unexpected answer to apply (a 202, a 409 "exists") may carry credentials.
    const said = answer.body.replace(/\s+/g, ' ').trim().slice(0, 300);
    const detail =
      operation === 'apply' ? (answer.mediaType ? ` (${answer.mediaType})` : '') : said ? `: ${said}` : '';
    return new PortcullisError(
      'provisioning_failed',
      `The webhook target of resource ${resource.id} answered ${operation} with HTTP ${answer.status}${detail}`,
      { resource: resource.id, status: answer.status },
    );
  }

  #parse<T>(
    resource: ResourceDefinition,
    operation: Operation,
    answer: SignedAnswer,
    schema: z.ZodType<T>,
  ): T {
    const invalid = (problem: string) =>
      new PortcullisError(
        'provisioning_failed',
        `The webhook target of resource ${resource.id} answered ${operation} with ${problem}`,
        { resource: resource.id },
      );
    let json: unknown = {};
    if (answer.body.trim() !== '') {
      if (answer.mediaType !== 'application/json' && !answer.mediaType.endsWith('+json')) {
        throw invalid(`content type "${answer.mediaType}", not application/json`);
      }
      try {
        json = JSON.parse(answer.body);
      } catch {
        throw invalid('a body that is not JSON');
      }
    }
    const result = schema.safeParse(json);
    if (!result.success) {
      // Paths and messages only: a value could be a credential.
      const issue = result.error.issues[0];
      throw invalid(`an unexpected body: ${issue?.path.join('.') || '(top)'} ${issue?.message ?? ''}`.trim());
    }
    return result.data;
  }
}

function resourceJson(resource: ResourceDefinition): Record<string, unknown> {
  return { id: resource.id, sensitivity: resource.sensitivity, labels: resource.labels };
}

/** The resource's target settings; a resource without them is a wiring fault. */
function targetOf(resource: ResourceDefinition): WebhookTargetSettings {
  const target = (resource as ConfiguredResource).webhook;
  if (!target) {
    throw new PortcullisError(
      'provisioning_failed',
      `Resource ${resource.id} (kind ${resource.kind}) has no webhook settings`,
    );
  }
  return target;
}
