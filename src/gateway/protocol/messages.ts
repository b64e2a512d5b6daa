/**
 * Decoders for the messages the proxy must read. Each takes the *body* of one frame (the bytes after
 * the length field: `reader.body()` or `buffer.subarray(bodyOffset, end)`) and returns a plain value.
 *
 * Every decoder checks bounds: no read past the body, strings NUL-terminated inside it, counts no
 * larger than the bytes left, no trailing bytes. Malformed input throws {@link ProtocolError}
 * `malformed_message` (or `unsupported_protocol` for a startup packet the codec does not speak) and
 * nothing else: never a RangeError, never a loop that does not consume input.
 *
 * Strings are decoded as UTF-8 (invalid sequences become U+FFFD). Buffers in results (Bind parameter
 * values, SASL data) are views into the body, with the same lifetime as the frame's bytes; the secret
 * keys of CancelRequest and BackendKeyData are copies, since they are kept for the connection's life.
 */
import { BodyCursor } from './body-cursor.js';
import { StartupCode } from './message-types.js';
import { ProtocolError } from './protocol-error.js';

/** Default cap on the parameters of a StartupMessage. */
export const DEFAULT_MAX_STARTUP_PARAMETERS = 64;
/** Longest cancel key accepted (protocol 3.2 allows up to 256 bytes; 3.0 always uses 4). */
export const MAX_CANCEL_KEY_LENGTH = 256;

// ── Frontend: startup phase ────────────────────────────────────────────────────────────────────────

export interface StartupMessage {
  readonly kind: 'startup';
  /** 196608 for 3.0: major version in the high 16 bits, minor in the low. */
  readonly protocolVersion: number;
  /** Parameters in the order sent (`user`, `database`, `application_name`, `options`, `_pq_.*`, …). */
  readonly parameters: ReadonlyMap<string, string>;
}

export interface CancelRequest {
  readonly kind: 'cancel';
  readonly processId: number;
  /** 4 bytes in protocol 3.0. A copy. */
  readonly secretKey: Buffer;
}

/** What a client may send before authentication. */
export type StartupPacket =
  | StartupMessage
  | CancelRequest
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' };

export interface StartupDecodeOptions {
  /** At most this many parameters (default {@link DEFAULT_MAX_STARTUP_PARAMETERS}). */
  readonly maxParameters?: number;
}

/**
 * Decodes a startup-phase packet. Its body starts with the int32 request code. A StartupMessage must
 * be protocol 3.x, hold at most `maxParameters` distinct non-empty names, and end with the NUL that
 * terminates the list. Requiring `user` is left to the caller, as is answering a minor version
 * above 0 or `_pq_.` options with NegotiateProtocolVersion (see `encodeNegotiateProtocolVersion`).
 */
export function decodeStartupPacket(body: Buffer, options: StartupDecodeOptions = {}): StartupPacket {
  const cursor = new BodyCursor(body, 'startup packet');
  const code = cursor.int32('request code');
  switch (code) {
    case StartupCode.SSLRequest:
      cursor.done();
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      cursor.done();
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest: {
      const processId = cursor.int32('process id');
      const secretKey = cancelKey(cursor);
      return { kind: 'cancel', processId, secretKey };
    }
  }
  if (code >>> 16 !== StartupCode.Protocol3 >>> 16)
    throw new ProtocolError(
      'unsupported_protocol',
      `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: the server supports 3.0`,
    );
  const maxParameters = options.maxParameters ?? DEFAULT_MAX_STARTUP_PARAMETERS;
  const parameters = new Map<string, string>();
  for (;;) {
    const name = cursor.cstring('parameter name');
    if (name === '') break;
    if (parameters.has(name)) throw cursor.fail(`parameter "${name}" appears twice`);
    if (parameters.size >= maxParameters) throw cursor.fail(`more than ${maxParameters} parameters`);
    parameters.set(name, cursor.cstring(`value of "${name}"`));
  }
  // INVARIANT: the terminating NUL was the last byte of the packet.
  if (cursor.remaining !== 0) throw cursor.fail('expected the terminating NUL as the last byte');
  return { kind: 'startup', protocolVersion: code, parameters };
}

function cancelKey(cursor: BodyCursor): Buffer {
  const length = cursor.remaining;
  if (length < 4 || length > MAX_CANCEL_KEY_LENGTH)
    throw cursor.fail(`secret key of ${length} bytes (expected 4 to ${MAX_CANCEL_KEY_LENGTH})`);
  return Buffer.from(cursor.rest());
}

// ── Frontend: regular phase ─────────────────────────────────────────────────────────────────────────

/** PasswordMessage ('p') carrying a cleartext password. */
export function decodePasswordMessage(body: Buffer): { readonly password: string } {
  const cursor = new BodyCursor(body, 'PasswordMessage');
  const password = cursor.cstring('password');
  cursor.done();
  return { password };
}

/** SASLInitialResponse ('p'): mechanism name and the initial client response (null when absent). */
export function decodeSaslInitialResponse(body: Buffer): {
  readonly mechanism: string;
  readonly data: Buffer | null;
} {
  const cursor = new BodyCursor(body, 'SASLInitialResponse');
  const mechanism = cursor.cstring('mechanism');
  const length = cursor.int32('data length');
  const data = length === -1 ? null : cursor.bytes(length, 'data');
  cursor.done();
  return { mechanism, data };
}

/** SASLResponse ('p'): the whole body is the SASL data. */
export function decodeSaslResponse(body: Buffer): { readonly data: Buffer } {
  return { data: body };
}

/**
 * Query ('Q'): one SQL string (possibly several statements). `sqlBytes` is the text as sent (a view
 * into the body): `sql` is its UTF-8 reading, which is lossy in a session whose `client_encoding`
 * is not UTF-8.
 */
export function decodeQuery(body: Buffer): { readonly sql: string; readonly sqlBytes: Buffer } {
  const cursor = new BodyCursor(body, 'Query');
  const sqlBytes = cursor.cstringBytes('query string');
  cursor.done();
  return { sql: sqlBytes.toString('utf8'), sqlBytes };
}

export interface ParseMessage {
  /** '' for the unnamed statement. */
  readonly statement: string;
  readonly query: string;
  /** The query as sent (a view into the body); see {@link decodeQuery}. */
  readonly queryBytes: Buffer;
  /** Parameter type OIDs (unsigned); 0 leaves the type to the server. */
  readonly parameterTypes: readonly number[];
}

/** Parse ('P'). */
export function decodeParse(body: Buffer): ParseMessage {
  const cursor = new BodyCursor(body, 'Parse');
  const statement = cursor.cstring('statement name');
  const queryBytes = cursor.cstringBytes('query string');
  const count = cursor.count(cursor.uint16('parameter type count'), 4, 'parameter type');
  const parameterTypes = new Array<number>(count);
  for (let i = 0; i < count; i++) parameterTypes[i] = cursor.uint32('parameter type');
  cursor.done();
  return { statement, query: queryBytes.toString('utf8'), queryBytes, parameterTypes };
}

/** 0 = text, 1 = binary. */
export type FormatCode = 0 | 1;

export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  /** Empty (all text), one code for all parameters, or one per parameter. */
  readonly parameterFormats: readonly FormatCode[];
  /** Values as views into the body; null for SQL NULL. */
  readonly parameters: readonly (Buffer | null)[];
  /** Empty (all text), one code for all columns, or one per column. */
  readonly resultFormats: readonly FormatCode[];
}

/** Bind ('B'). The format-code count must be 0, 1 or the parameter count, as PostgreSQL requires. */
export function decodeBind(body: Buffer): BindMessage {
  const cursor = new BodyCursor(body, 'Bind');
  const portal = cursor.cstring('portal name');
  const statement = cursor.cstring('statement name');
  const parameterFormats = formatCodes(cursor, 'parameter format');
  const count = cursor.count(cursor.uint16('parameter count'), 4, 'parameter');
  if (parameterFormats.length > 1 && parameterFormats.length !== count)
    throw cursor.fail(`${parameterFormats.length} parameter formats but ${count} parameters`);
  const parameters = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) {
    const length = cursor.int32(`length of parameter ${i + 1}`);
    if (length < -1) throw cursor.fail(`parameter ${i + 1} has invalid length ${length}`);
    parameters[i] = length === -1 ? null : cursor.bytes(length, `parameter ${i + 1}`);
  }
  const resultFormats = formatCodes(cursor, 'result format');
  cursor.done();
  return { portal, statement, parameterFormats, parameters, resultFormats };
}

function formatCodes(cursor: BodyCursor, field: string): FormatCode[] {
  const count = cursor.count(cursor.uint16(`${field} count`), 2, field);
  const codes = new Array<FormatCode>(count);
  for (let i = 0; i < count; i++) {
    const code = cursor.int16(field);
    if (code !== 0 && code !== 1) throw cursor.fail(`unsupported ${field} code ${code}`);
    codes[i] = code;
  }
  return codes;
}

/** Execute ('E'): portal and row limit (0 = no limit). */
export function decodeExecute(body: Buffer): { readonly portal: string; readonly maxRows: number } {
  const cursor = new BodyCursor(body, 'Execute');
  const portal = cursor.cstring('portal name');
  const maxRows = cursor.int32('row limit');
  cursor.done();
  return { portal, maxRows };
}

export interface FunctionCallMessage {
  /** The function's OID (unsigned), e.g. 2924 for `query_to_xml`. */
  readonly functionOid: number;
  /** Empty (all text), one code for all arguments, or one per argument. */
  readonly argumentFormats: readonly FormatCode[];
  /** Values as views into the body; null for SQL NULL. */
  readonly arguments: readonly (Buffer | null)[];
  readonly resultFormat: FormatCode;
}

/**
 * FunctionCall ('F'): a call of any function by OID, outside SQL (libpq's `PQfn`, used by its
 * large-object functions). The format-code count must be 0, 1 or the argument count.
 */
export function decodeFunctionCall(body: Buffer): FunctionCallMessage {
  const cursor = new BodyCursor(body, 'FunctionCall');
  const functionOid = cursor.uint32('function OID');
  const argumentFormats = formatCodes(cursor, 'argument format');
  const count = cursor.count(cursor.uint16('argument count'), 4, 'argument');
  if (argumentFormats.length > 1 && argumentFormats.length !== count)
    throw cursor.fail(`${argumentFormats.length} argument formats but ${count} arguments`);
  const args = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) {
    const length = cursor.int32(`length of argument ${i + 1}`);
    if (length < -1) throw cursor.fail(`argument ${i + 1} has invalid length ${length}`);
    args[i] = length === -1 ? null : cursor.bytes(length, `argument ${i + 1}`);
  }
  const resultFormat = cursor.int16('result format');
  if (resultFormat !== 0 && resultFormat !== 1)
    throw cursor.fail(`unsupported result format code ${resultFormat}`);
  cursor.done();
  return { functionOid, argumentFormats, arguments: args, resultFormat };
}

/** Describe ('D') or Close ('C'): 'S' for a prepared statement, 'P' for a portal, and its name. */
export function decodeDescribeOrClose(
  body: Buffer,
  what: 'Describe' | 'Close',
): { readonly target: 'S' | 'P'; readonly name: string } {
  const cursor = new BodyCursor(body, what);
  const target = cursor.uint8('target');
  if (target !== 0x53 && target !== 0x50) throw cursor.fail(`target must be 'S' or 'P', not ${target}`);
  const name = cursor.cstring('name');
  cursor.done();
  return { target: target === 0x53 ? 'S' : 'P', name };
}

/** Terminate ('X'), Sync ('S'), Flush ('H'), CopyDone ('c'): the body must be empty. */
export function decodeEmpty(body: Buffer, what: string): void {
  new BodyCursor(body, what).done();
}

// ── Backend ───────────────────────────────────────────────────────────────────────────────────────

/** Authentication request codes (the int32 that starts an 'R' message). */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  Md5Password: 5,
  ScmCredential: 6,
  Gss: 7,
  GssContinue: 8,
  Sspi: 9,
  Sasl: 10,
  SaslContinue: 11,
  SaslFinal: 12,
} as const;

export type Authentication =
  | { readonly kind: 'ok' }
  | { readonly kind: 'cleartext-password' }
  | { readonly kind: 'md5-password'; readonly salt: Buffer }
  | { readonly kind: 'sasl'; readonly mechanisms: readonly string[] }
  | { readonly kind: 'sasl-continue'; readonly data: Buffer }
  | { readonly kind: 'sasl-final'; readonly data: Buffer }
  /** Kerberos, SCM, GSS and SSPI: valid messages the proxy does not support. */
  | { readonly kind: 'unsupported'; readonly code: number };

/** Authentication* ('R'). */
export function decodeAuthentication(body: Buffer): Authentication {
  const cursor = new BodyCursor(body, 'Authentication');
  const code = cursor.int32('authentication code');
  switch (code) {
    case AuthenticationCode.Ok:
      cursor.done();
      return { kind: 'ok' };
    case AuthenticationCode.CleartextPassword:
      cursor.done();
      return { kind: 'cleartext-password' };
    case AuthenticationCode.Md5Password: {
      const salt = cursor.bytes(4, 'salt');
      cursor.done();
      return { kind: 'md5-password', salt };
    }
    case AuthenticationCode.Sasl: {
      const mechanisms: string[] = [];
      for (;;) {
        const mechanism = cursor.cstring('mechanism');
        if (mechanism === '') break;
        mechanisms.push(mechanism);
      }
      cursor.done();
      if (mechanisms.length === 0) throw cursor.fail('no SASL mechanism offered');
      return { kind: 'sasl', mechanisms };
    }
    case AuthenticationCode.SaslContinue:
      return { kind: 'sasl-continue', data: cursor.rest() };
    case AuthenticationCode.SaslFinal:
      return { kind: 'sasl-final', data: cursor.rest() };
    case AuthenticationCode.KerberosV5:
    case AuthenticationCode.ScmCredential:
    case AuthenticationCode.Gss:
    case AuthenticationCode.GssContinue:
    case AuthenticationCode.Sspi:
      return { kind: 'unsupported', code };
    default:
      throw cursor.fail(`unknown authentication code ${code}`);
  }
}

/** ParameterStatus ('S'). */
export function decodeParameterStatus(body: Buffer): { readonly name: string; readonly value: string } {
  const cursor = new BodyCursor(body, 'ParameterStatus');
  const name = cursor.cstring('name');
  const value = cursor.cstring('value');
  cursor.done();
  return { name, value };
}

/** BackendKeyData ('K'): the key a client needs to cancel a query. */
export function decodeBackendKeyData(body: Buffer): {
  readonly processId: number;
  readonly secretKey: Buffer;
} {
  const cursor = new BodyCursor(body, 'BackendKeyData');
  const processId = cursor.int32('process id');
  return { processId, secretKey: cancelKey(cursor) };
}

/** Transaction status: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** ReadyForQuery ('Z'). */
export function decodeReadyForQuery(body: Buffer): { readonly status: TransactionStatus } {
  const cursor = new BodyCursor(body, 'ReadyForQuery');
  const status = String.fromCharCode(cursor.uint8('transaction status'));
  cursor.done();
  if (status !== 'I' && status !== 'T' && status !== 'E')
    throw cursor.fail(`unknown transaction status ${JSON.stringify(status)}`);
  return { status };
}

/** The fields of an ErrorResponse or NoticeResponse. */
export interface NoticeFields {
  /** Non-localized severity ('V') when sent, else the localized one ('S'); '' when absent. */
  readonly severity: string;
  /** SQLSTATE ('C'); '' when absent. */
  readonly code: string;
  /** Primary message ('M'); '' when absent. */
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** Every field by its one-letter code (S, V, C, M, D, H, P, p, q, W, s, t, c, d, n, F, L, R). */
  readonly fields: ReadonlyMap<string, string>;
}

/** ErrorResponse ('E') or NoticeResponse ('N'). */
export function decodeNoticeFields(body: Buffer, what = 'ErrorResponse'): NoticeFields {
  const cursor = new BodyCursor(body, what);
  const fields = new Map<string, string>();
  for (;;) {
    const code = cursor.uint8('field code');
    if (code === 0) break;
    fields.set(String.fromCharCode(code), cursor.cstring('field value'));
  }
  cursor.done();
  const detail = fields.get('D');
  const hint = fields.get('H');
  return {
    severity: fields.get('V') ?? fields.get('S') ?? '',
    code: fields.get('C') ?? '',
    message: fields.get('M') ?? '',
    ...(detail === undefined ? {} : { detail }),
    ...(hint === undefined ? {} : { hint }),
    fields,
  };
}

/** CommandComplete ('C'): the command tag, e.g. "SELECT 3" or "INSERT 0 1". */
export function decodeCommandComplete(body: Buffer): { readonly tag: string } {
  const cursor = new BodyCursor(body, 'CommandComplete');
  const tag = cursor.cstring('command tag');
  cursor.done();
  return { tag };
}

/** NegotiateProtocolVersion ('v'): newest minor version supported, and the options not recognised. */
export function decodeNegotiateProtocolVersion(body: Buffer): {
  readonly newestMinorVersion: number;
  readonly unrecognizedOptions: readonly string[];
} {
  const cursor = new BodyCursor(body, 'NegotiateProtocolVersion');
  const newestMinorVersion = cursor.int32('newest minor version');
  const count = cursor.count(cursor.int32('option count'), 1, 'option');
  const unrecognizedOptions: string[] = [];
  for (let i = 0; i < count; i++) unrecognizedOptions.push(cursor.cstring('option'));
  cursor.done();
  return { newestMinorVersion, unrecognizedOptions };
}
