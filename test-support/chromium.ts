/**
 * Debian's Chromium for the browser tests (playwright-core drives it): where it is, and why a test
 * skips without it — except with CI=true, where .ci/run installs it and its absence is a failure.
 */
import { existsSync } from 'node:fs';

export const chromiumPath = process.env.PORTCULLIS_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumSkipReason(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  const reason = `no Chromium at ${chromiumPath} (apt-get install chromium, or set PORTCULLIS_CHROMIUM)`;
  if (process.env.CI === 'true') throw new Error(reason);
  return reason;
}
