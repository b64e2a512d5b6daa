/**
 * SCRAM-SHA-256 password verifiers (RFC 5802/7677) in PostgreSQL's stored format. The PostgreSQL
 * provisioner sends the verifier, never the password, in `CREATE ROLE … PASSWORD`, so a server that
 * logs DDL (`log_statement = 'ddl'`) or a statement in `pg_stat_activity` cannot reveal it
 * (the same reason `psql`'s `\password` hashes on the client).
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's default `scram_iterations`. */
export const defaultScramIterations = 4096;

/**
 * Returns `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for `password`.
 * Only printable ASCII is accepted: for it SASLprep is the identity, so the server and every
 * client derive the same key (the provisioner's base64url passwords always qualify).
 */
export async function scramSha256Verifier(
  password: string,
  options: { readonly iterations?: number; readonly salt?: Buffer } = {},
): Promise<string> {
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw new TypeError('SCRAM verifiers are only computed for non-empty printable ASCII passwords');
  }
  const iterations = options.iterations ?? defaultScramIterations;
  const salt = options.salt ?? randomBytes(16);
  const saltedPassword = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
