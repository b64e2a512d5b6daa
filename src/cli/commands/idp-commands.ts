/**
 * `portcullis idp test IDP --claims FILE`: what an identity provider's rules make of a set of
 * claims (OIDC) or attributes (SAML), offline, from the configuration file. Exit 0 when the user
 * may sign in, 4 when the rules refuse them.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { loadOfflineConfig } from '../offline-config.js';
import { sanitizeText } from '../output.js';

export async function testIdentityProvider(
  ctx: CliContext,
  idp: string,
  options: { claims: string; config: string },
): Promise<number> {
  let claims: unknown;
  try {
    claims = parse(await readFile(options.claims, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      `Cannot read ${options.claims}: ${code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message)}`,
    );
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims))
    throw usageError(`${options.claims} must hold one object of claims (JSON or YAML)`);
  const config = await loadOfflineConfig(options.config, ctx.io.env);
  const settings = config.identityProviders.find((p) => p.id === idp);
  if (!settings) {
    throw usageError(
      `No identity provider "${idp}" in ${options.config}`,
      `configured: ${config.identityProviders.map((p) => p.id).join(', ') || 'none'}`,
    );
  }
  const { explainSignIn } = await import('../../identity/sign-in-explain.js');
  const result = explainSignIn(settings, claims as Record<string, unknown>);
  ctx.output.result(result, () => {
    const lines = [
      `identity provider  ${result.idp} (${result.type})`,
      `principal          ${result.principal ?? '(no usable subject)'}`,
      `e-mail             ${result.email ?? '(none)'}`,
      `sign-in            ${result.allowed ? 'allowed' : 'DENIED'} (${result.reason})`,
      `groups             ${result.groups.length > 0 ? result.groups.join(', ') : '(none)'}`,
      ...result.explanation.map((line) => `  ${line}`),
    ];
    ctx.output.line(sanitizeText(lines.join('\n'), { multiline: true }));
  });
  return result.allowed ? exitCodes.ok : exitCodes.forbidden;
}
