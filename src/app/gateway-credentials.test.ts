import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Grant } from '../core/grant.js';
import { gatewayCredentials } from './gateway-credentials.js';

describe('gatewayCredentials', () => {
  const grant = { id: 'g-1', resourceId: 'orders-db' } as Grant;
  const token = { token: 'aaa.bbb.ccc', jti: 'j', expiresAt: Date.UTC(2026, 10, 23, 12) };
  it('a URL for libpq and node-postgres, TLS required when the gateway serves it, IPv6 bracketed', () => {
    const over = gatewayCredentials({ host: '2001:db8::1', port: 6432, tls: true }, grant, token);
    assert.equal(
      over.connection_string,
      'postgres://g-1:aaa.bbb.ccc@[2001:db8::1]:6432/orders-db?sslmode=require',
    );
    assert.equal(over.host, '2001:db8::1');
    assert.equal(over.via, 'gateway');
    assert.equal(over.password_expires_at, '2026-11-23T12:00:00.000Z');
  });
});
