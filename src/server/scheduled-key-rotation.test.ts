/**
 * `tokens.rotation_interval` in a running server: once the token key is older than the interval,
 * the maintenance tick rotates it; tokens the old key signed keep working through the overlap.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { demoApiAccessToken } from '../../test-support/requests.js';
import { waitFor } from '../../test-support/wait-for.js';
import { ManualClock } from '../core/clock.js';

const hour = 3600 * 1000;

/** `portcullis_signing_key_age_seconds{purpose="token"}` as /metrics shows it. */
async function tokenKeyAge(h: Harness): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = /^portcullis_signing_key_age_seconds\{purpose="token"\} (\S+)$/m.exec(text);
  assert.ok(line, 'no token key age in /metrics');
  return Math.round(Number(line[1]));
}

describe('scheduled token-key rotation', () => {
  const clock = new ManualClock(Date.now());
  let h: Harness;
  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      clock,
      tokenOverrides: { rotation_interval: '2h', session_ttl: '8h' },
    });
  });
  after(() => h.close());

  test('rotates the key once it is 2 h old; the old key keeps verifying its tokens', async () => {
    const session = await h.login('alice');
    const before = await demoApiAccessToken(h, session, 'before the rotation');
    const oldKid = decodeProtectedHeader(before).kid;
    const jwks = async () =>
      ((await h.api(null, 'GET', '/.well-known/jwks.json')).body.keys as { kid: string }[]).map((k) => k.kid);
    assert.deepEqual(await jwks(), [oldKid]);

    clock.advance(hour + 1000);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few maintenance ticks: nothing due
    assert.deepEqual(await jwks(), [oldKid]);
    assert.equal(await tokenKeyAge(h), 3601);

    clock.advance(hour);
    const published = await waitFor('the scheduled rotation', async () => {
      const kids = await jwks();
      return kids.length === 2 ? kids : undefined;
    });
    assert.equal(published[1], oldKid);
    const after = await demoApiAccessToken(h, session, 'after the rotation');
    assert.equal(decodeProtectedHeader(after).kid, published[0]);
    // The session token, signed by the retired key 2 h ago, still works inside the overlap.
    assert.equal(decodeProtectedHeader(session).kid, oldKid);
    assert.equal((await h.api(session, 'GET', '/api/v1/me')).status, 200);
    assert.equal(await tokenKeyAge(h), 0);

    const events = (await h.portcullis.store.auditLog.read(0, 1000)).filter((e) => e.type === 'keys.rotated');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.actor, 'system');
    assert.equal((events[0]?.data as { trigger: string }).trigger, 'schedule');
  });
});
