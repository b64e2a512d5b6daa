/**
 * The "source" that guessing limits and refusal budgets count by: an IPv4 address as it is, an
 * IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as its IPv4 address, and any other IPv6 address as
 * its /64 — one subscriber or host usually holds a whole /64, so counting single IPv6 addresses
 * would give an attacker 2^64 fresh sources. The audit log keeps the full address.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The counting key of a client address. `null` (no address) is `unknown`; anything that is not an
 * IP address is returned unchanged.
 *
 * @example guessingSource('2001:db8::c') === '2001:db8:0:0::/64'
 * @example guessingSource('::ffff:192.0.2.1') === '192.0.2.1'
 */
export function guessingSource(address: string | null): string {
  if (address === null || address === '') return 'unknown';
  if (isIPv4(address)) return address;
  // A zone index (`fe80::1%eth0`) names the interface, not the address.
  const bare = address.replace(/%.*$/, '');
  if (!isIPv6(bare)) return address;
  const hextets = expandIPv6(bare);
  const mapped = hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff;
  if (mapped) {
    const [high = 0, low = 0] = hextets.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${hextets
    .slice(0, 4)
    .map((h) => h.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (validated by `isIPv6` first). */
function expandIPv6(address: string): number[] {
  // The WHATWG URL parser writes the address canonically: lower-case hex groups only (an embedded
  // dotted IPv4 tail becomes two groups) and at most one `::`.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
}
