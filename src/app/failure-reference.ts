/**
 * A short random reference to a target's failure: what requesters and approvers are shown instead
 * of the target's own text, which goes in full to the server log and the audit log under it.
 */
export function failureReference(newId: () => string): string {
  return newId()
    .replace(/[^0-9a-z]/gi, '')
    .slice(0, 12)
    .toLowerCase();
}
