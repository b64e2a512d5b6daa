/**
 * Break-glass test helpers: enrol custodians with light argon2 parameters (the production cost is
 * for real passphrases, not for test runs), and produce real TOTP codes for them — each a time step
 * later than the last one used, as an authenticator app would after waiting for the next code.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'otplib';
import { BreakGlassAdmin } from '../src/app/break-glass-admin.js';
import type { SecretBox, Store } from '../src/app/ports.js';
import type { BreakGlassSettings } from '../src/config/break-glass-config.js';
import { decodeKeyEncryptionKey } from '../src/config/load.js';
import { type Clock, systemClock } from '../src/core/clock.js';
import { JweSecretBox } from '../src/crypto/secret-box.js';
import type { Harness } from './portcullis-harness.js';

export const lightPassphraseParameters = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const;

/** The TOTP box exactly as the server builds it from the key-encryption-key file. */
export function totpBoxFromKekFile(path: string): SecretBox {
  const kek = decodeKeyEncryptionKey(readFileSync(path, 'utf8'));
  if (!kek) throw new Error('bad kek');
  return new JweSecretBox(kek).withPurpose('break-glass-totp');
}

export function secretOfUri(uri: string): string {
  const secret = new URL(uri).searchParams.get('secret');
  if (!secret) throw new Error(`no secret in ${uri}`);
  return secret;
}

/** One enrolled custodian: passphrase, TOTP secret, and fresh codes on demand. */
export class TestCustodian {
  #lastStep = Number.NEGATIVE_INFINITY;
  constructor(
    readonly id: string,
    readonly passphrase: string,
    readonly secret: string,
    private readonly clock: Clock,
    /**
     * With the system clock, wait for the next time step when every acceptable one is used, instead
     * of failing: a test of many CLI steps may need more fresh codes than one step offers.
     */
    private readonly waitForFreshSteps = false,
  ) {}

  /**
   * A valid code whose time step is later than any handed out before (within ±1 step of now) and
   * that stays valid for at least `minValidityMs` more: a code of step s is accepted until step
   * s + 1 ends, so the earliest step may have only moments left — too few for a client that still
   * has to start (a CLI process under a loaded CI machine).
   */
  async code(minValidityMs = 0): Promise<string> {
    const now = this.clock.now();
    const current = Math.floor(now / 30_000);
    let step = Math.max(current - 1, this.#lastStep + 1);
    if ((step + 2) * 30_000 - now < minValidityMs) step++;
    if (step > current + 1) {
      if (!this.waitForFreshSteps) throw new Error(`${this.id}: no fresh TOTP step left; advance the clock`);
      await new Promise((resolve) => setTimeout(resolve, (current + 1) * 30_000 - now + 50));
      return this.code(minValidityMs);
    }
    this.#lastStep = step;
    return generate({ secret: this.secret, epoch: step * 30 });
  }

  /** A code of a step already used (a replay). */
  async replayedCode(): Promise<string> {
    return generate({ secret: this.secret, epoch: this.#lastStep * 30 });
  }

  async proof(): Promise<{ custodianId: string; passphrase: string; totp: string }> {
    return { custodianId: this.id, passphrase: this.passphrase, totp: await this.code() };
  }

  /** The HTTP body fields. */
  async body(): Promise<{ custodian: string; passphrase: string; totp: string }> {
    return { custodian: this.id, passphrase: this.passphrase, totp: await this.code() };
  }
}

export async function enrolCustodians(
  store: Store,
  settings: BreakGlassSettings,
  totpSecrets: SecretBox,
  clock: Clock,
  accountId: string,
  ids: readonly string[],
): Promise<Record<string, TestCustodian>> {
  const admin = new BreakGlassAdmin({
    store,
    settings,
    totpSecrets,
    clock,
    passphraseParameters: lightPassphraseParameters,
  });
  const out: Record<string, TestCustodian> = {};
  for (const id of ids) {
    const passphrase = `${id} correct horse battery staple`;
    const { uri } = await admin.enroll(accountId, id, passphrase, 'operator:test');
    out[id] = new TestCustodian(id, passphrase, secretOfUri(uri), clock);
  }
  return out;
}

/**
 * Enrols custodians of `accountId` in a running test server, with the TOTP box its
 * key-encryption-key file gives (as `portcullis break-glass enroll` would on the host).
 */
export function enrolInHarness(
  h: Pick<Harness, 'portcullis' | 'dir'>,
  accountId: string,
  ids: readonly string[],
): Promise<Record<string, TestCustodian>> {
  return enrolCustodians(
    h.portcullis.store,
    h.portcullis.config.breakGlass,
    totpBoxFromKekFile(join(h.dir, 'kek')),
    systemClock,
    accountId,
    ids,
  );
}

/** The signing secret of {@link webhookChannelConfig} channels. */
export const testWebhookSecret = randomBytes(32).toString('base64url');

/** The secrets' directories: configurations are read as long as the test process runs, so they go at its exit. */
const secretDirs = new Set<string>();
function removeSecretDirs(): void {
  for (const dir of secretDirs) rmSync(dir, { recursive: true, force: true });
  secretDirs.clear();
}

/**
 * A `break_glass.alert_channels` entry: a signed webhook to `url` (a test receiver, or a closed
 * loopback port to simulate an outage), its secret in a file.
 */
export function webhookChannelConfig(name: string, url: string): Record<string, unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-alert-'));
  if (secretDirs.size === 0) process.once('exit', removeSecretDirs);
  secretDirs.add(dir);
  const file = join(dir, 'secret');
  writeFileSync(file, testWebhookSecret, { mode: 0o600 });
  return { name, type: 'webhook', url, secret: { file }, timeout: '2s' };
}

/**
 * A `break_glass.accounts` entry for the harness's `demo-db`: `readonly` only, at most 30 minutes,
 * a quorum of 2, alerts to the `ops` channel; `overrides` adds or replaces keys.
 */
export function demoDbEmergencyAccount(
  id: string,
  custodians: readonly (string | { id: string; principal: string })[],
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    scope: { resource: 'demo-db', roles: ['readonly'] },
    max_duration_minutes: 30,
    custodians,
    quorum: 2,
    alert_channels: ['ops'],
    ...overrides,
  };
}
