/**
 * The names break-glass acts under: the emergency principal that holds an activation's grants,
 * a custodian as an audit actor, and a custodian as a WebAuthn user.
 */
import type { Activation } from '../../break-glass/activation.js';
import type { Principal } from '../../core/principal.js';

/**
 * The principal that holds an activation's grants: the initiator, as a break-glass identity of
 * that one activation. The activation id is part of it so that every later event of those grants
 * (activation, credentials, tokens, gateway sessions and statements, expiry) names the activation.
 */
export function emergencyPrincipalId(
  activation: Pick<Activation, 'id' | 'accountId' | 'initiatorId'>,
): string {
  return `break-glass:${emergencySubject(activation)}`;
}

function emergencySubject(activation: Pick<Activation, 'id' | 'accountId' | 'initiatorId'>): string {
  return `${activation.accountId}:${activation.initiatorId}:${activation.id}`;
}

export function emergencyPrincipal(activation: Activation): Principal {
  return {
    id: emergencyPrincipalId(activation),
    idp: 'break-glass',
    subject: emergencySubject(activation),
    displayName: `${activation.initiatorId} (break-glass ${activation.accountId})`,
    email: null,
    groups: [],
  };
}

/** A custodian as the actor of an audit event or a request review. */
export const custodianActor = (custodianId: string) => `break-glass:${custodianId}`;

/** The WebAuthn user of a custodian: one per account, so challenges and keys never cross accounts. */
export const webauthnUser = (accountId: string, custodianId: string) => `${accountId}/${custodianId}`;
