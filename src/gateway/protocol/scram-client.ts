/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) for the proxy's upstream authentication, on
 * node:crypto primitives. Without channel binding (gs2 header `n,,`) PostgreSQL accepts the plain
 * `SCRAM-SHA-256` mechanism over TLS or not; with `channelBinding` (over TLS), the exchange is
 * `SCRAM-SHA-256-PLUS` bound to the server certificate (`tls-server-end-point`, RFC 5929), so a
 * machine in the middle that terminates TLS with another certificate cannot relay the login.
 *
 * The exchange refuses a server that does not extend the client nonce, a salt that is not base64, an
 * iteration count outside [4096, `maxIterations`], and, above all, a server signature that does not
 * match (compared in constant time): a server that cannot prove it knows the password is treated as
 * an impostor, and the proxy must not talk to it.
 *
 * PostgreSQL ignores the SCRAM user name (it uses the startup packet's `user`), so it is sent empty.
 * The password is used as UTF-8 after NFKC normalisation when it is not ASCII, an approximation of
 * SASLprep (RFC 4013) that is exact for ASCII passwords such as the ones Portcullis generates.
 *
 * @example
 * const scram = startScram(password);
 * upstream.write(encodeSaslInitialResponse(SCRAM_SHA_256, scram.clientFirstMessage));
 * // AuthenticationSASLContinue:
 * const final = await scram.next(auth.data);
 * upstream.write(encodeSaslResponse(final.clientFinalMessage));
 * // AuthenticationSASLFinal:
 * final.verify(auth.data); // throws ProtocolError scram_server_signature_mismatch for an impostor
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from './protocol-error.js';

/** The SASL mechanism name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** The mechanism name with channel binding. */
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
/** RFC 7677's minimum iteration count (PostgreSQL's default). */
export const MIN_SCRAM_ITERATIONS = 4096;
/** Default cap on the iteration count a server may ask for (about a second of PBKDF2). */
export const DEFAULT_MAX_SCRAM_ITERATIONS = 1_000_000;

const GS2_HEADER = 'n,,';
const GS2_HEADER_BOUND = 'p=tls-server-end-point,,';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/; // printable ASCII except ','

export interface ScramOptions {
  /** The client nonce; random (18 bytes, base64) by default. Set only in tests. */
  readonly clientNonce?: string;
  /** The SCRAM user name (default empty, as PostgreSQL ignores it). */
  readonly username?: string;
  /** Largest iteration count accepted (default {@link DEFAULT_MAX_SCRAM_ITERATIONS}). */
  readonly maxIterations?: number;
  /**
   * Derives SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations, 32). Defaults to node's
   * asynchronous `pbkdf2` (on the libuv thread pool, off the event loop). The proxy may pass a cached
   * derivation: the result depends only on the password, salt and iteration count.
   */
  readonly deriveKey?: (password: Buffer, salt: Buffer, iterations: number) => Promise<Buffer>;
  /**
   * Binds the exchange to the TLS connection (`SCRAM-SHA-256-PLUS`): the `tls-server-end-point`
   * data, the hash of the server certificate ({@link tlsServerEndPoint}).
   */
  readonly channelBinding?: Buffer;
}

export interface ScramExchange {
  /** client-first-message, e.g. `n,,n=,r=<nonce>`: the data of the SASLInitialResponse. */
  readonly clientFirstMessage: string;
  /**
   * Takes the server-first-message (AuthenticationSASLContinue data) and computes the proof.
   * Throws {@link ProtocolError} `scram_malformed`, `scram_nonce_mismatch` or
   * `scram_iterations_out_of_range`. Call once.
   */
  next(serverFirstMessage: Buffer | string): Promise<ScramFinal>;
}

export interface ScramFinal {
  /** client-final-message with the proof: the data of the SASLResponse. */
  readonly clientFinalMessage: string;
  /**
   * Checks the server-final-message (AuthenticationSASLFinal data). Throws `scram_server_error` for
   * `e=…`, `scram_malformed`, or `scram_server_signature_mismatch` when the server is not proven.
   */
  verify(serverFinalMessage: Buffer | string): void;
}

/** Starts a SCRAM-SHA-256 exchange for `password`. */
export function startScram(password: string, options: ScramOptions = {}): ScramExchange {
  const clientNonce = options.clientNonce ?? randomBytes(18).toString('base64');
  if (!PRINTABLE_NONCE.test(clientNonce))
    throw new ProtocolError('invalid_value', 'the SCRAM client nonce must be printable ASCII without commas');
  const maxIterations = options.maxIterations ?? DEFAULT_MAX_SCRAM_ITERATIONS;
  const deriveKey = options.deriveKey ?? pbkdf2Sha256;
  const clientFirstBare = `n=${saslName(options.username ?? '')},r=${clientNonce}`;
  const gs2Header = options.channelBinding ? GS2_HEADER_BOUND : GS2_HEADER;
  const channelBinding = Buffer.concat([
    Buffer.from(gs2Header),
    options.channelBinding ?? Buffer.alloc(0),
  ]).toString('base64');
  let used = false;

  return {
    clientFirstMessage: gs2Header + clientFirstBare,
    async next(serverFirst) {
      if (used) throw new Error('ScramExchange.next may be called once');
      used = true;
      const serverFirstMessage = text(serverFirst);
      const { nonce, salt, iterations } = parseServerFirst(serverFirstMessage, clientNonce, maxIterations);
      const saltedPassword = await deriveKey(
        Buffer.from(normalizePassword(password), 'utf8'),
        salt,
        iterations,
      );
      const clientFinalWithoutProof = `c=${channelBinding},r=${nonce}`;
      const authMessage = `${clientFirstBare},${serverFirstMessage},${clientFinalWithoutProof}`;

      const clientKey = hmac(saltedPassword, 'Client Key');
      const storedKey = createHash('sha256').update(clientKey).digest();
      const clientSignature = hmac(storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++)
        proof[i] = (clientKey[i] as number) ^ (clientSignature[i] as number);
      const serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);

      return {
        clientFinalMessage: `${clientFinalWithoutProof},p=${proof.toString('base64')}`,
        verify(serverFinal) {
          verifyServerFinal(text(serverFinal), serverSignature);
        },
      };
    },
  };
}

/**
 * A `deriveKey` that remembers the last `maxEntries` derivations (default 16), so repeated upstream
 * logins with the same credentials skip PBKDF2 (4096 rounds take milliseconds of a thread-pool
 * thread each). Concurrent logins share one derivation; a failed one is forgotten. The cache holds
 * SaltedPassword values, as secret as the password the caller already holds.
 *
 * @example
 * const deriveKey = createScramKeyCache();
 * const scram = startScram(password, { deriveKey });
 */
export function createScramKeyCache(
  maxEntries = 16,
): (password: Buffer, salt: Buffer, iterations: number) => Promise<Buffer> {
  const entries = new Map<string, Promise<Buffer>>();
  return (password, salt, iterations) => {
    const key = createHash('sha256')
      .update(password)
      .update('\0')
      .update(salt)
      .update(`\0${iterations}`)
      .digest('base64');
    const cached = entries.get(key);
    if (cached) {
      entries.delete(key); // re-insert: most recently used last
      entries.set(key, cached);
      return cached;
    }
    const derived = pbkdf2Sha256(password, salt, iterations);
    derived.catch(() => entries.delete(key));
    entries.set(key, derived);
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    return derived;
  };
}

function pbkdf2Sha256(password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, 32, 'sha256', (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function text(message: Buffer | string): string {
  return typeof message === 'string' ? message : message.toString('utf8');
}

/** RFC 5802 saslname: ',' and '=' are escaped. */
function saslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function normalizePassword(password: string): string {
  return /^[\x00-\x7f]*$/.test(password) ? password : password.normalize('NFKC');
}

function malformed(problem: string): ProtocolError {
  return new ProtocolError('scram_malformed', `SCRAM: ${problem}`);
}

/** Splits `a=…,b=…` into attributes, in order; the value may contain '='. */
function attributes(message: string): [string, string][] {
  return message.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=') throw malformed(`attribute "${part.slice(0, 20)}" is malformed`);
    return [part[0] as string, part.slice(2)];
  });
}

function parseServerFirst(
  message: string,
  clientNonce: string,
  maxIterations: number,
): { nonce: string; salt: Buffer; iterations: number } {
  const attrs = attributes(message);
  if (attrs[0]?.[0] === 'm') throw malformed('the server requires an unsupported extension');
  const [r, s, i] = attrs;
  if (r?.[0] !== 'r' || s?.[0] !== 's' || i?.[0] !== 'i')
    throw malformed('server-first-message must be r=…,s=…,i=…');
  const nonce = r[1];
  if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length || !PRINTABLE_NONCE.test(nonce))
    throw new ProtocolError(
      'scram_nonce_mismatch',
      'SCRAM: the server nonce does not extend the client nonce',
    );
  if (s[1] === '' || !BASE64.test(s[1])) throw malformed('the salt is not base64');
  if (!/^[1-9][0-9]{0,9}$/.test(i[1])) throw malformed('the iteration count is not a number');
  const iterations = Number(i[1]);
  if (iterations < MIN_SCRAM_ITERATIONS || iterations > maxIterations)
    throw new ProtocolError(
      'scram_iterations_out_of_range',
      `SCRAM: iteration count ${iterations} is outside [${MIN_SCRAM_ITERATIONS}, ${maxIterations}]`,
    );
  return { nonce, salt: Buffer.from(s[1], 'base64'), iterations };
}

function verifyServerFinal(message: string, expected: Buffer): void {
  const [first] = attributes(message);
  if (first?.[0] === 'e')
    throw new ProtocolError('scram_server_error', `SCRAM: the server refused: ${first[1].slice(0, 200)}`);
  if (first?.[0] !== 'v' || !BASE64.test(first[1]))
    throw malformed('server-final-message must be v=<base64>');
  const signature = Buffer.from(first[1], 'base64');
  // INVARIANT: compare in constant time; lengths are public (32 bytes for SHA-256).
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected))
    throw new ProtocolError(
      'scram_server_signature_mismatch',
      'SCRAM: the server signature is wrong: the server does not know the password',
    );
}
