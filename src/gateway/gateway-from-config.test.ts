import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GatewayConfig } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { publicGatewayEndpoint } from './gateway-from-config.js';

const gateway = (overrides: Partial<GatewayConfig> = {}): GatewayConfig => ({
  host: '127.0.0.1',
  port: 6432,
  publicHost: undefined,
  publicPort: undefined,
  tls: null,
  allowPlaintextOnLoopback: false,
  recordParameters: false,
  maxMessageBytes: 1_048_576,
  maxConnections: 10_000,
  maxLoginsPerAddress: 256,
  livenessCheckIntervalSeconds: 1,
  ...overrides,
});

describe('publicGatewayEndpoint', () => {
  const url = 'https://access.example.com';
  it('public_host and public_port win; else the listening host and the bound port', () => {
    const tls = { cert: new Secret('c', 'cert'), key: new Secret('k', 'key') };
    assert.deepEqual(
      publicGatewayEndpoint(gateway({ publicHost: 'gw.example.com', publicPort: 5433, tls }), url, 41000),
      {
        host: 'gw.example.com',
        port: 5433,
        tls: true,
      },
    );
    assert.deepEqual(publicGatewayEndpoint(gateway({ port: 0 }), url, 41000), {
      host: '127.0.0.1',
      port: 41000,
      tls: false,
    });
  });
  it('a wildcard listening host gives the public URL host', () => {
    for (const host of ['0.0.0.0', '::', ''])
      assert.equal(publicGatewayEndpoint(gateway({ host }), url, undefined).host, 'access.example.com');
    assert.equal(
      publicGatewayEndpoint(gateway({ host: '::' }), 'http://[2001:db8::1]:8080', undefined).host,
      '2001:db8::1',
    );
  });
});
