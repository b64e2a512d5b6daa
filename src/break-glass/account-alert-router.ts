/**
 * Sends each alert to the channels its account names (`break_glass.accounts[].alert_channels`),
 * through one retrying dispatcher per account, and always to the log as well. An alert about an
 * account that does not exist (someone probing ids) goes to the log and the audit log only, so
 * that probing cannot flood the on-call channels.
 */
import type { AlertChannel, AlertDispatcher, BreakGlassAlert } from './ports.js';

export interface ClosableAlertDispatcher extends AlertDispatcher {
  close?(): Promise<void>;
}

export class AccountAlertRouter implements AlertDispatcher {
  readonly #byAccount = new Map<string, ClosableAlertDispatcher>();
  readonly #log: AlertDispatcher;

  constructor(
    accounts: readonly { readonly id: string; readonly alertChannels: readonly string[] }[],
    channels: readonly AlertChannel[],
    dispatcherFor: (channels: readonly AlertChannel[]) => ClosableAlertDispatcher,
    log: AlertDispatcher,
  ) {
    this.#log = log;
    for (const account of accounts) {
      const chosen = channels.filter((c) => account.alertChannels.includes(c.name));
      if (chosen.length > 0) this.#byAccount.set(account.id, dispatcherFor(chosen));
    }
  }

  dispatch(alert: BreakGlassAlert): void {
    this.#log.dispatch(alert);
    this.#byAccount.get(alert.accountId)?.dispatch(alert);
  }

  async settle(): Promise<void> {
    await Promise.all([this.#log.settle(), ...[...this.#byAccount.values()].map((d) => d.settle())]);
  }

  /** Stops retrying (shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.#byAccount.values()].map((d) => d.close?.() ?? d.settle()));
  }
}
