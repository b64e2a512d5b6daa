/** `portcullis policy test CASES.yaml`: a table of cases against the policy set, offline. */
import { readFile } from 'node:fs/promises';
import { exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { loadOfflineConfig } from '../offline-config.js';
import { sanitizeText } from '../output.js';

/** Runs the cases; returns exit 0 when all pass, 10 when any does not. */
export async function testPolicies(
  ctx: CliContext,
  casesFile: string,
  options: { config: string },
): Promise<number> {
  let text: string;
  try {
    text = await readFile(casesFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      `Cannot read ${casesFile}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(error))}`,
    );
  }
  const { CedarPolicyEngine } = await import('../../policy/cedar-policy-engine.js');
  const { formatPolicyCaseResults, runPolicyCases } = await import('../../policy/policy-cases.js');

  const config = await loadOfflineConfig(options.config, ctx.io.env);
  const engine = CedarPolicyEngine.fromFiles(config.policyFiles, { timeZone: config.timeZone });
  const results = runPolicyCases(engine, text, config.resources, casesFile);
  const failed = results.filter((result) => !result.passed).length;
  ctx.output.result({ cases: results.length, passed: results.length - failed, failed, results }, () =>
    ctx.output.line(sanitizeText(formatPolicyCaseResults(results), { multiline: true })),
  );
  return failed === 0 ? exitCodes.ok : exitCodes.verificationFailed;
}
