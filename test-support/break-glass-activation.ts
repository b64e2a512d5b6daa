/**
 * Break-glass activations over the HTTP API of a test server: initiate (asserting 201) and confirm
 * (asserting 200), for tests whose subject is what comes after.
 */
import assert from 'node:assert/strict';
import type { TestCustodian } from './break-glass-fixtures.js';
import type { Harness } from './portcullis-harness.js';

export interface InitiatedActivation {
  readonly id: string;
  /** The initiator's handle, sent as `x-break-glass-handle`. */
  readonly handle: string;
  readonly state: string;
}

export async function initiateActivation(
  h: Harness,
  account: string,
  initiator: TestCustodian,
  details: { readonly reason: string; readonly incident: string; readonly duration_minutes: number },
): Promise<InitiatedActivation> {
  const initiated = await h.api(null, 'POST', '/api/v1/break-glass/activations', {
    account,
    ...(await initiator.body()),
    ...details,
  });
  assert.equal(initiated.status, 201, JSON.stringify(initiated.body));
  const activation = initiated.body.activation as { id: string; state: string };
  return { id: activation.id, handle: initiated.body.handle as string, state: activation.state };
}

/** Another custodian confirms; the activation's state after it. */
export async function confirmActivation(h: Harness, id: string, confirmer: TestCustodian): Promise<string> {
  const confirmed = await h.api(
    null,
    'POST',
    `/api/v1/break-glass/activations/${id}/confirm`,
    await confirmer.body(),
  );
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  return confirmed.body.state as string;
}
