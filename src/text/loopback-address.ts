/** Whether an IP address (as a socket reports it) is a loopback address: 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * Whether a URL names a host on the loopback interface (`localhost`, 127.0.0.0/8, `[::1]`): where
 * plain http is allowed because nothing on a network can read or change it.
 */
export function isLoopbackUrl(url: URL): boolean {
  return (
    url.hostname === 'localhost' ||
    url.hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname)
  );
}
