import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isConsolePath } from '../../app/session-service.js';
import { consoleCookies, csrfTokenFor } from './console-session.js';

test('a sign-in lands only on a console path of this server', () => {
  for (const path of [
    '/console',
    '/console/approvals',
    '/console/requests/3f0c-11',
    '/console/requests?scope=all',
  ])
    assert.ok(isConsolePath(path), path);
  for (const path of [
    'https://evil.example/console',
    '//evil.example/console',
    '/\\evil.example',
    '/consoled',
    '/console/../api/v1/me',
    '/console/%2e%2e/auth',
    '/console/a b',
    '/console/"><script>',
    `/console/${'a'.repeat(520)}`,
    '',
  ])
    assert.ok(!isConsolePath(path), path);
});

test('the session cookie: __Host- and Secure over https, HttpOnly and SameSite=Lax always', () => {
  const https = consoleCookies(true);
  assert.equal(
    https.set('t.o.k', 3600.7),
    '__Host-portcullis_session=t.o.k; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=3600',
  );
  assert.equal(
    https.clear(),
    '__Host-portcullis_session=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0',
  );
  assert.equal(
    consoleCookies(false).set('t', -5),
    'portcullis_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=0',
  );
});

test('the CSRF token is fixed for a session and differs between sessions', () => {
  assert.equal(csrfTokenFor('session-a'), csrfTokenFor('session-a'));
  assert.notEqual(csrfTokenFor('session-a'), csrfTokenFor('session-b'));
  assert.match(csrfTokenFor('session-a'), /^[A-Za-z0-9_-]{43}$/);
});
