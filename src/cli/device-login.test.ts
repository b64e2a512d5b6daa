/**
 * `portcullis login --device` (RFC 8628) end to end: the real CLI binary, a real server and the
 * real demo IdP, whose code page a scripted person completes. Also the server's polling rules
 * (slow_down without asking the IdP, access_denied, expired_token), each audited.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCli } from '../../test-support/cli-entry.js';
import { approveDeviceCode } from '../../test-support/oidc-browser.js';
import { demoIdpSettings, MemoryEphemeralStore } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { waitFor } from '../../test-support/wait-for.js';
import { startDemoIdentityProvider } from '../identity/demo-identity-provider.js';
import { OidcLogin } from '../identity/oidc-login.js';
import { sessionPath } from './session-file.js';

describe('device login (RFC 8628)', () => {
  let h: Harness;
  let home: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'portcullis-device-'));
    h = await startHarness({ storage: 'sqlite' });
  });
  after(async () => {
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('the CLI prints the code, the person signs in elsewhere, the session is saved 0600 and audited', async () => {
    const login = startCli(['login', '--device', '--no-browser', '--profile', 'dev'], {
      PORTCULLIS_HOME: home,
      PORTCULLIS_SERVER: h.url,
    });
    const link = await waitFor(
      'the verification link',
      async () => /(http:\S+\/device\?user_code=\S+)/.exec(login.stderr())?.[1],
      20_000,
    );
    const code = /enter the code:\s+(\S+)/.exec(login.stderr())?.[1];
    assert.ok(code && link.includes(code), login.stderr());
    const page = await approveDeviceCode(link, { username: 'carol', password: 'carol-demo-password' });
    assert.match(page, /Signed in/);
    assert.equal(await login.exited, 0, login.stderr());
    assert.match(login.stdout(), /Signed in to .* as Carol .*\(demo:carol\)/);
    const file = sessionPath(home, 'dev');
    if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600);

    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    assert.ok(
      events.some(
        (e) =>
          e.type === 'auth.login' &&
          e.actor === 'demo:carol' &&
          (e.data as { client?: string }).client === 'cli-device',
      ),
    );
  });

  test('polling faster than the interval is slow_down, answered without the IdP; a refusal at the IdP is access_denied', async () => {
    const started = await h.api(null, 'POST', '/api/v1/auth/device', { idp: 'demo' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.interval, 5);
    const deviceId = started.body.device_id as string;
    const early = await h.api(null, 'POST', '/api/v1/auth/device/token', { device_id: deviceId });
    assert.deepEqual(early.body, { status: 'slow_down', interval: 10 });

    await approveDeviceCode(
      started.body.verification_uri_complete as string,
      {
        username: 'alice',
        password: 'alice-demo-password',
      },
      { abort: true },
    );
    await new Promise((r) => setTimeout(r, 10_000));
    const refused = await h.api(null, 'POST', '/api/v1/auth/device/token', { device_id: deviceId });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'login_failed');
    assert.equal(refused.body.reason, 'access_denied');
    const again = await h.api(null, 'POST', '/api/v1/auth/device/token', { device_id: deviceId });
    assert.equal(again.body.reason, 'code_invalid', 'a failed device login is over');
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    assert.ok(
      events.some(
        (e) => e.type === 'auth.login_failed' && (e.data as { client?: string }).client === 'cli-device',
      ),
    );
  });

  test('an unknown device id is refused', async () => {
    const unknown = await h.api(null, 'POST', '/api/v1/auth/device/token', { device_id: 'nope' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.reason, 'code_invalid');
    const noIdp = await h.api(null, 'POST', '/api/v1/auth/device', { idp: 'nope' });
    assert.equal(noIdp.status, 404);
  });
});

describe('OidcLogin device flow against a real oidc-provider', () => {
  test('a device code that expired before the sign-in is expired_token', async () => {
    const idp = await startDemoIdentityProvider({
      port: 0,
      redirectUris: ['http://127.0.0.1:1/cb'],
      // Long enough that the first poll is still in time on a loaded CI machine (1 s was not).
      deviceCodeTtlSeconds: 3,
    });
    try {
      const login = new OidcLogin(demoIdpSettings(idp), { ephemeral: new MemoryEphemeralStore() });
      const started = await login.beginDevice();
      assert.deepEqual(await login.pollDevice(started.deviceCode), { status: 'authorization_pending' });
      await new Promise((r) => setTimeout(r, 3500));
      await assert.rejects(login.pollDevice(started.deviceCode), (error: unknown) => {
        assert.equal((error as { details?: { reason?: string } }).details?.reason, 'expired_token');
        return true;
      });
    } finally {
      await idp.stop();
    }
  });
});
