import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createSeal, formatShare, openSeal, parseShare, type Seal } from './sealed-shares.js';

const t0 = Date.UTC(2025, 0, 6, 3, 0, 0);
let seal: Seal;
let shares: string[];
let secret: Uint8Array;
let otherShares: string[];

before(async () => {
  ({ seal, shares, secret } = await createSeal('prod-db-breakglass', 3, 5, t0));
  ({ shares: otherShares } = await createSeal('billing-breakglass', 3, 5, t0));
});

const at = (i: number) => shares[i] as string;
/** The share as someone might type it: base32 parts in lower case, account id untouched. */
const lowerBase32 = (share: string) =>
  share
    .split(':')
    .map((p, i) => (i >= 2 ? p.toLowerCase() : p))
    .join(':');

function mistype(share: string): string {
  const parts = share.split(':');
  const payload = parts[4] as string;
  const c = payload[0] === 'A' ? 'B' : 'A';
  parts[4] = c + payload.slice(1);
  return parts.join(':');
}

describe('sealed shares', () => {
  it('keeps only a verifier: the seal holds neither the secret nor a share', () => {
    const stored = JSON.stringify(seal);
    assert.ok(!stored.includes(Buffer.from(secret).toString('base64url')));
    assert.ok(!stored.includes(Buffer.from(secret).toString('hex')));
    assert.equal(shares.length, 5);
    assert.match(at(0), /^bg1:prod-db-breakglass:[A-Z2-7]+:1:/);
  });

  const refusals: ReadonlyArray<{ name: string; given: () => string[]; code: string }> = [
    { name: 'too few shares', given: () => [at(0), at(1)], code: 'shares_insufficient' },
    { name: 'the same share twice', given: () => [at(0), at(0), at(1)], code: 'shares_duplicated' },
    {
      name: 'a share from another account',
      given: () => [at(0), at(1), otherShares[2] as string],
      code: 'share_wrong_account',
    },
    { name: 'a mistyped share', given: () => [at(0), at(1), mistype(at(2))], code: 'share_invalid' },
    { name: 'garbage', given: () => [at(0), at(1), 'hello'], code: 'share_invalid' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => await assert.rejects(openSeal(seal, r.given()), { code: r.code }));
  }

  it('refuses a well-formed share that does not belong to the combination', async () => {
    const forged = formatShare({ ...parseShare(at(2)), bytes: new Uint8Array(33).fill(7) });
    await assert.rejects(openSeal(seal, [at(0), at(1), forged]), { code: 'shares_mismatch' });
  });

  it('refuses shares of an older seal of the same account', async () => {
    const { seal: rotated } = await createSeal('prod-db-breakglass', 3, 5, t0);
    await assert.rejects(openSeal(rotated, [at(0), at(1), at(2)]), { code: 'share_wrong_account' });
  });

  it('opens with any k of n in any order, tolerating case and spacing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray([0, 1, 2, 3, 4], { minLength: 3, maxLength: 5 }),
        async (picked) => {
          const opened = await openSeal(
            seal,
            picked.map((i) => ` ${lowerBase32(at(i))} `),
          );
          assert.deepEqual(opened, secret);
        },
      ),
      { numRuns: 30 },
    );
  });
});
