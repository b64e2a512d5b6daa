/**
 * Every schema migration, in order. Listed in code rather than read from the directory so the
 * set is the same under tsx, in a build and in a bundle. A new migration is a new file here, named
 * `NNNN-what-it-does.ts`, added to this list; migrations already released are never edited.
 */
import type { Migration } from 'kysely';
import * as initial from './0001-initial.js';
import * as breakGlass from './0002-break-glass.js';
import * as scim from './0003-scim.js';
import * as grantErrorReference from './0004-grant-error-reference.js';
import * as auditAppendFunction from './0005-audit-append-function.js';
import * as principalLocks from './0006-principal-locks.js';
import * as notificationCursors from './0007-notification-cursors.js';
import * as oneDrillPerActivation from './0008-one-drill-per-activation.js';
import * as requestSource from './0009-request-source.js';
import * as requestReviewDeadline from './0010-request-review-deadline.js';
import * as installation from './0011-installation.js';
import * as auditRetention from './0012-audit-retention.js';
import * as grantsByResourceDeadline from './0013-grants-by-resource-deadline.js';

export const migrations: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
  '0002-break-glass': breakGlass,
  '0003-scim': scim,
  '0004-grant-error-reference': grantErrorReference,
  '0005-audit-append-function': auditAppendFunction,
  '0006-principal-locks': principalLocks,
  '0007-notification-cursors': notificationCursors,
  '0008-one-drill-per-activation': oneDrillPerActivation,
  '0009-request-source': requestSource,
  '0010-request-review-deadline': requestReviewDeadline,
  '0011-installation': installation,
  '0012-audit-retention': auditRetention,
  '0013-grants-by-resource-deadline': grantsByResourceDeadline,
};
