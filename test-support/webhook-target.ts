/**
 * A real webhook provisioning target (node:http on 127.0.0.1), written the way
 * docs/provisioners.md#webhook tells operators to write one: verify `Portcullis-Signature` over the
 * raw bytes, answer a repeated `Idempotency-Key` with the first answer, keep what it grants per grant
 * id, revoke idempotently (404 when it holds nothing), and list its holdings for `inspect`.
 *
 * What it "grants" is an entry in its own table, with a random assignment id as the artefact and
 * a random API key as the credential: the test then sees the credential reach the requester and
 * the artefact come back with `revoke`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkSignature } from './webhook-receiver.js';

export interface TargetCall {
  readonly operation: string;
  readonly idempotencyKey: string | undefined;
  readonly body: Record<string, unknown>;
  readonly status: number;
  /** The raw request, for tests that look at headers or replay it. */
  readonly headers: IncomingMessage['headers'];
  readonly rawBody: Buffer;
}

export interface Assignment {
  readonly grantId: string;
  readonly assignmentId: string;
  readonly principal: Record<string, unknown>;
  readonly grants: readonly string[];
  readonly installation: string;
  readonly apiKey: string;
}

/** An answer of the target: `type` is its content type (default JSON when there is a body). */
export interface TargetAnswer {
  readonly status: number;
  readonly body: string;
  readonly type?: string;
  readonly location?: string;
}

export interface WebhookTarget {
  readonly url: string;
  readonly calls: TargetCall[];
  /** What the target holds now, by grant id. */
  readonly held: Map<string, Assignment>;
  /** What `standing` answers: access held at the target without any grant. */
  standingHolders: { holder: string; via: string }[];
  /**
   * Decides an answer before the normal handling (after the signature check): a status and body,
   * 'hang' to never answer, or undefined to go on.
   */
  respond: ((call: { operation: string }) => TargetAnswer | 'hang' | undefined) | undefined;
  close(): Promise<void>;
}

export async function startWebhookTarget(options: { readonly secret: string }): Promise<WebhookTarget> {
  const calls: TargetCall[] = [];
  const held = new Map<string, Assignment>();
  const answered = new Map<string, TargetAnswer>();
  const hanging: (() => void)[] = [];
  const target: WebhookTarget = {
    url: '',
    calls,
    held,
    standingHolders: [],
    respond: undefined,
    close: async () => {
      for (const end of hanging) end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const handle = (raw: Buffer, request: IncomingMessage): TargetAnswer | 'hang' => {
    const check = checkSignature(options.secret, request, raw);
    if (!check.valid) return { status: 401, body: JSON.stringify({ error: check.reason }) };
    const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (body.version !== 1) return { status: 400, body: JSON.stringify({ error: 'unknown version' }) };
    const operation = String(body.operation);
    const forced = target.respond?.({ operation });
    if (forced) return forced;
    const key = request.headers['idempotency-key'];
    const replay = typeof key === 'string' ? answered.get(key) : undefined;
    if (replay) return replay;
    const grant = body.grant as { id: string; artefacts: Record<string, unknown> } | undefined;
    let answer: TargetAnswer;
    if (operation === 'apply' && grant) {
      const assignment: Assignment = {
        grantId: grant.id,
        assignmentId: `asg-${randomBytes(6).toString('hex')}`,
        principal: body.principal as Record<string, unknown>,
        grants: (body.role as { grants: string[] }).grants,
        installation: String(body.installation),
        apiKey: randomBytes(18).toString('base64url'),
      };
      held.set(grant.id, assignment);
      answer = {
        status: 201,
        body: JSON.stringify({
          artefacts: { assignment_id: assignment.assignmentId },
          credentials: { api_key: assignment.apiKey },
        }),
      };
    } else if (operation === 'revoke' && grant) {
      const holding = held.get(grant.id);
      // Only the assignment the artefacts name: a stale revoke never removes a newer one.
      if (!holding || holding.assignmentId !== grant.artefacts.assignment_id) {
        answer = { status: 404, body: JSON.stringify({ gone: true }) };
      } else {
        held.delete(grant.id);
        answer = { status: 200, body: JSON.stringify({ revoked: true }) };
      }
    } else if (operation === 'standing') {
      answer = { status: 200, body: JSON.stringify({ standing: target.standingHolders }) };
    } else if (operation === 'inspect') {
      const holdings = [...held.values()]
        .filter((h) => h.installation === body.installation)
        .map((h) => ({ grant_id: h.grantId, artefacts: { assignment_id: h.assignmentId } }));
      answer = { status: 200, body: JSON.stringify({ holdings }) };
    } else {
      answer = { status: 400, body: JSON.stringify({ error: 'unknown operation' }) };
    }
    if (typeof key === 'string' && answer.status < 500) answered.set(key, answer);
    return answer;
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      const answer = handle(raw, request);
      if (answer === 'hang') {
        hanging.push(() => response.destroy());
        return;
      }
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        // recorded with an empty body
      }
      const key = request.headers['idempotency-key'];
      calls.push({
        operation: String(parsed.operation),
        idempotencyKey: typeof key === 'string' ? key : undefined,
        body: parsed,
        status: answer.status,
        headers: request.headers,
        rawBody: raw,
      });
      const headers = answer.body === '' ? {} : { 'content-type': answer.type ?? 'application/json' };
      response.writeHead(answer.status, headers).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (target as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/provision`;
  return target;
}
