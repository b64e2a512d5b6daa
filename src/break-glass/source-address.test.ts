import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guessingSource } from './source-address.js';

describe('the source that guessing limits count by', () => {
  const cases: [string, string | null, string][] = [
    ['IPv4 as it is', '203.0.113.9', '203.0.113.9'],
    ['no address', null, 'unknown'],
    ['IPv6 grouped into its /64', '2001:db8::1', '2001:db8:0:0::/64'],
    ['another address of the same /64', '2001:db8::c', '2001:db8:0:0::/64'],
    ['the full form of the same /64', '2001:0DB8:0000:0000:ffff:1:2:3', '2001:db8:0:0::/64'],
    ['`::` inside the /64 part', '2001:db8::5:0:0:1', '2001:db8:0:0::/64'],
    ['`::` at the end', '2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['a different /64', '2001:db8:0:1::1', '2001:db8:0:1::/64'],
    ['loopback', '::1', '0:0:0:0::/64'],
    ['IPv4-mapped, dotted', '::ffff:192.0.2.1', '192.0.2.1'],
    ['IPv4-mapped, hex', '::ffff:c000:201', '192.0.2.1'],
    ['an embedded IPv4 tail that is not mapped', '64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['a zone index is dropped', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['not an address: unchanged', 'not-an-ip', 'not-an-ip'],
  ];
  for (const [what, address, expected] of cases)
    it(what, () => {
      assert.equal(guessingSource(address), expected);
    });
});
