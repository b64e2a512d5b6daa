/**
 * Loading the configuration for the offline commands (`policy test`, `keys rotate`). They need a
 * few fields, not the secrets of every identity provider and database: an operator rotating keys
 * or a CI job testing policies should not have to hold IdP client secrets. Secrets named by
 * environment variables that are unset are filled with a placeholder; a command that needs a real
 * secret checks it with {@link requireRealSecret}.
 */
import type { Config, Environment } from '../config/load.js';
import type { Secret } from '../config/secret.js';
import { CliError, exitCodes } from './cli-error.js';

/** 32 zero bytes in hex: also passes the key-encryption-key format check, and can never be the real one. */
const placeholder = '0'.repeat(64);

/** `env` where every unset (or empty) variable reads as the placeholder. */
function withPlaceholders(env: Environment): Environment {
  return new Proxy(env, {
    get: (target, name) => (typeof name === 'string' ? target[name] || placeholder : undefined),
  });
}

/** Loads and validates `file` like the server does, minus the secrets the environment lacks. */
export async function loadOfflineConfig(file: string, env: Environment): Promise<Config> {
  const { loadConfig } = await import('../config/load.js');
  return loadConfig(file, withPlaceholders(env));
}

/** Throws (exit 2) when `secret` is a placeholder, i.e. its environment variable is not set. */
export function requireRealSecret(secret: Secret, path: string): string {
  const value = secret.reveal();
  if (value === placeholder) {
    throw new CliError(
      'config_invalid',
      `${path} comes from the environment variable ${secret.label}, which is not set`,
      exitCodes.usage,
    );
  }
  return value;
}
