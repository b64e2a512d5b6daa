/**
 * Encoders for the messages the proxy writes, to clients (ErrorResponse, Authentication*, …) and to
 * the upstream server (StartupMessage, PasswordMessage, SASL responses, …). Each returns a new Buffer
 * holding one complete frame, type byte and length included, ready for `socket.write`.
 *
 * A value the protocol cannot carry (a NUL inside a string, an integer out of range, a malformed
 * SQLSTATE) throws {@link ProtocolError} `invalid_value` rather than producing a corrupt frame.
 *
 * @example
 * socket.end(encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'the token has expired' }));
 */
import { BackendMessage, FrontendMessage, StartupCode } from './message-types.js';
import { AuthenticationCode, type FormatCode, type TransactionStatus } from './messages.js';
import { ProtocolError } from './protocol-error.js';

/** Builds one frame: writes into a growing buffer, then patches the length. */
class FrameWriter {
  #buf: Buffer;
  #pos: number;
  readonly #lengthAt: number;

  /** `type` null for an untyped startup-phase packet. */
  constructor(type: number | null, sizeHint = 64) {
    this.#buf = Buffer.allocUnsafe(Math.max(16, sizeHint));
    this.#pos = 0;
    if (type !== null) this.#buf[this.#pos++] = type;
    this.#lengthAt = this.#pos;
    this.#pos += 4;
  }

  #reserve(bytes: number): number {
    const pos = this.#pos;
    if (pos + bytes > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, pos + bytes));
      this.#buf.copy(grown, 0, 0, pos);
      this.#buf = grown;
    }
    this.#pos = pos + bytes;
    return pos;
  }

  uint8(value: number, field: string): this {
    checkInteger(value, 0, 0xff, field);
    const pos = this.#reserve(1);
    this.#buf[pos] = value;
    return this;
  }

  int16(value: number, field: string): this {
    checkInteger(value, -0x8000, 0x7fff, field);
    const pos = this.#reserve(2); // may replace this.#buf: take it after
    this.#buf.writeInt16BE(value, pos);
    return this;
  }

  uint16(value: number, field: string): this {
    checkInteger(value, 0, 0xffff, field);
    const pos = this.#reserve(2); // may replace this.#buf: take it after
    this.#buf.writeUInt16BE(value, pos);
    return this;
  }

  int32(value: number, field: string): this {
    checkInteger(value, -0x80000000, 0x7fffffff, field);
    const pos = this.#reserve(4); // may replace this.#buf: take it after
    this.#buf.writeInt32BE(value, pos);
    return this;
  }

  uint32(value: number, field: string): this {
    checkInteger(value, 0, 0xffffffff, field);
    const pos = this.#reserve(4); // may replace this.#buf: take it after
    this.#buf.writeUInt32BE(value, pos);
    return this;
  }

  /** A UTF-8 string and its terminating NUL; a NUL inside is refused. */
  cstring(value: string, field: string): this {
    if (value.includes('\0')) throw new ProtocolError('invalid_value', `${field} contains a NUL character`);
    const bytes = Buffer.byteLength(value, 'utf8');
    const pos = this.#reserve(bytes + 1);
    this.#buf.write(value, pos, bytes, 'utf8');
    this.#buf[pos + bytes] = 0;
    return this;
  }

  bytes(value: Uint8Array): this {
    const pos = this.#reserve(value.length);
    this.#buf.set(value, pos);
    return this;
  }

  finish(): Buffer {
    this.#buf.writeInt32BE(this.#pos - this.#lengthAt, this.#lengthAt);
    return this.#buf.subarray(0, this.#pos);
  }
}

function checkInteger(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ProtocolError(
      'invalid_value',
      `${field} must be an integer from ${min} to ${max}, not ${value}`,
    );
}

function asBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

// ── To clients ────────────────────────────────────────────────────────────────────────────────────

export interface ErrorFields {
  /** FATAL ends the session; ERROR the statement; WARNING/NOTICE/… for NoticeResponse. */
  readonly severity: 'PANIC' | 'FATAL' | 'ERROR' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  /** SQLSTATE: five digits or upper-case letters, e.g. 28P01 invalid_password, 57P01 admin_shutdown. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function noticeFields(type: number, fields: ErrorFields): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(fields.code))
    throw new ProtocolError(
      'invalid_value',
      `SQLSTATE must be five digits or capitals, not "${fields.code}"`,
    );
  const writer = new FrameWriter(type, 64 + fields.message.length);
  writer.uint8(0x53, 'field').cstring(fields.severity, 'severity'); // S: localized severity
  writer.uint8(0x56, 'field').cstring(fields.severity, 'severity'); // V: non-localized (9.6+)
  writer.uint8(0x43, 'field').cstring(fields.code, 'SQLSTATE'); // C
  writer.uint8(0x4d, 'field').cstring(fields.message, 'message'); // M
  if (fields.detail !== undefined) writer.uint8(0x44, 'field').cstring(fields.detail, 'detail'); // D
  if (fields.hint !== undefined) writer.uint8(0x48, 'field').cstring(fields.hint, 'hint'); // H
  return writer.uint8(0, 'terminator').finish();
}

/**
 * ErrorResponse ('E').
 * @example encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: 'the grant has ended' })
 */
export function encodeErrorResponse(fields: ErrorFields): Buffer {
  return noticeFields(BackendMessage.ErrorResponse, fields);
}

/** NoticeResponse ('N'), e.g. a WARNING that the grant ends in five minutes. */
export function encodeNoticeResponse(fields: ErrorFields): Buffer {
  return noticeFields(BackendMessage.NoticeResponse, fields);
}

function authentication(code: number, extra?: (writer: FrameWriter) => void): Buffer {
  const writer = new FrameWriter(BackendMessage.Authentication).int32(code, 'authentication code');
  extra?.(writer);
  return writer.finish();
}

/** AuthenticationOk ('R', 0). */
export function encodeAuthenticationOk(): Buffer {
  return authentication(AuthenticationCode.Ok);
}

/** AuthenticationCleartextPassword ('R', 3). */
export function encodeAuthenticationCleartextPassword(): Buffer {
  return authentication(AuthenticationCode.CleartextPassword);
}

/** AuthenticationMD5Password ('R', 5) with its 4-byte salt (for tests and fake servers). */
export function encodeAuthenticationMd5Password(salt: Uint8Array): Buffer {
  if (salt.length !== 4) throw new ProtocolError('invalid_value', 'the MD5 salt must be 4 bytes');
  return authentication(AuthenticationCode.Md5Password, (writer) => writer.bytes(salt));
}

/** AuthenticationSASL ('R', 10) offering mechanisms, e.g. ['SCRAM-SHA-256']. */
export function encodeAuthenticationSasl(mechanisms: readonly string[]): Buffer {
  if (mechanisms.length === 0 || mechanisms.includes(''))
    throw new ProtocolError('invalid_value', 'SASL mechanisms must be a non-empty list of non-empty names');
  return authentication(AuthenticationCode.Sasl, (writer) => {
    for (const mechanism of mechanisms) writer.cstring(mechanism, 'mechanism');
    writer.uint8(0, 'terminator');
  });
}

/** AuthenticationSASLContinue ('R', 11). */
export function encodeAuthenticationSaslContinue(data: Uint8Array | string): Buffer {
  return authentication(AuthenticationCode.SaslContinue, (writer) => writer.bytes(asBytes(data)));
}

/** AuthenticationSASLFinal ('R', 12). */
export function encodeAuthenticationSaslFinal(data: Uint8Array | string): Buffer {
  return authentication(AuthenticationCode.SaslFinal, (writer) => writer.bytes(asBytes(data)));
}

/** ParameterStatus ('S'), e.g. server_version, client_encoding. */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return new FrameWriter(BackendMessage.ParameterStatus)
    .cstring(name, 'parameter name')
    .cstring(value, 'parameter value')
    .finish();
}

/** BackendKeyData ('K'): the process id and secret key a client will send in a CancelRequest. */
export function encodeBackendKeyData(processId: number, secretKey: Uint8Array): Buffer {
  checkCancelKey(secretKey);
  return new FrameWriter(BackendMessage.BackendKeyData)
    .int32(processId, 'process id')
    .bytes(secretKey)
    .finish();
}

/** ReadyForQuery ('Z'). */
export function encodeReadyForQuery(status: TransactionStatus = 'I'): Buffer {
  return new FrameWriter(BackendMessage.ReadyForQuery).uint8(status.charCodeAt(0), 'status').finish();
}

/** The one-byte answer to SSLRequest (or GSSENCRequest): 'S' to start TLS, 'N' to refuse. */
export function encodeSslResponse(accept: boolean): Buffer {
  return Buffer.from(accept ? 'S' : 'N', 'latin1');
}

/** CommandComplete ('C') with a tag such as "SELECT 1" (for tests and fake servers). */
export function encodeCommandComplete(tag: string): Buffer {
  return new FrameWriter(BackendMessage.CommandComplete).cstring(tag, 'command tag').finish();
}

/**
 * NegotiateProtocolVersion ('v'): the newest minor version of protocol 3 supported and the `_pq_.`
 * startup options not recognised; the answer to a client asking for 3.2 or sending `_pq_.` options.
 */
export function encodeNegotiateProtocolVersion(
  newestMinorVersion: number,
  unrecognizedOptions: readonly string[] = [],
): Buffer {
  const writer = new FrameWriter(BackendMessage.NegotiateProtocolVersion)
    .int32(newestMinorVersion, 'newest minor version')
    .int32(unrecognizedOptions.length, 'option count');
  for (const option of unrecognizedOptions) writer.cstring(option, 'option');
  return writer.finish();
}

// ── To the upstream server ────────────────────────────────────────────────────────────────────────

export interface StartupParameters {
  readonly user: string;
  readonly database?: string;
  readonly applicationName?: string;
  /** Other parameters passed through (e.g. `client_encoding`, `DateStyle`, `options`), after the above. */
  readonly parameters?: Iterable<readonly [string, string]> | Readonly<Record<string, string>>;
  /** Default 196608 (3.0). */
  readonly protocolVersion?: number;
}

/**
 * StartupMessage (untyped). `user`, `database` and `application_name` come first; a passthrough
 * parameter with one of those names is refused rather than sent twice.
 */
export function encodeStartupMessage(startup: StartupParameters): Buffer {
  const writer = new FrameWriter(null, 128);
  writer.int32(startup.protocolVersion ?? StartupCode.Protocol3, 'protocol version');
  const seen = new Set<string>();
  const add = (name: string, value: string) => {
    if (name === '') throw new ProtocolError('invalid_value', 'a startup parameter name is empty');
    if (seen.has(name)) throw new ProtocolError('invalid_value', `startup parameter "${name}" given twice`);
    seen.add(name);
    writer.cstring(name, 'parameter name').cstring(value, `value of "${name}"`);
  };
  add('user', startup.user);
  if (startup.database !== undefined) add('database', startup.database);
  if (startup.applicationName !== undefined) add('application_name', startup.applicationName);
  const extra = startup.parameters;
  if (extra !== undefined) {
    const entries = Symbol.iterator in extra ? extra : Object.entries(extra);
    for (const [name, value] of entries as Iterable<readonly [string, string]>) add(name, value);
  }
  return writer.uint8(0, 'terminator').finish();
}

/** SSLRequest (untyped), to ask the upstream server for TLS. */
export function encodeSslRequest(): Buffer {
  return new FrameWriter(null).int32(StartupCode.SSLRequest, 'request code').finish();
}

/** CancelRequest (untyped), sent on a new connection to the server that holds the backend. */
export function encodeCancelRequest(processId: number, secretKey: Uint8Array): Buffer {
  checkCancelKey(secretKey);
  return new FrameWriter(null)
    .int32(StartupCode.CancelRequest, 'request code')
    .int32(processId, 'process id')
    .bytes(secretKey)
    .finish();
}

function checkCancelKey(secretKey: Uint8Array): void {
  if (secretKey.length < 4 || secretKey.length > 256)
    throw new ProtocolError('invalid_value', `a cancel key has 4 to 256 bytes, not ${secretKey.length}`);
}

/** PasswordMessage ('p') with a cleartext password. */
export function encodePasswordMessage(password: string): Buffer {
  return new FrameWriter(FrontendMessage.Password).cstring(password, 'password').finish();
}

/** SASLInitialResponse ('p'): mechanism and client-first-message (null sends length -1). */
export function encodeSaslInitialResponse(mechanism: string, data: Uint8Array | string | null): Buffer {
  const writer = new FrameWriter(FrontendMessage.Password).cstring(mechanism, 'mechanism');
  if (data === null) return writer.int32(-1, 'data length').finish();
  const bytes = asBytes(data);
  return writer.int32(bytes.length, 'data length').bytes(bytes).finish();
}

/** SASLResponse ('p'): e.g. the SCRAM client-final-message. */
export function encodeSaslResponse(data: Uint8Array | string): Buffer {
  return new FrameWriter(FrontendMessage.Password).bytes(asBytes(data)).finish();
}

/** Query ('Q'). */
export function encodeQuery(sql: string): Buffer {
  return new FrameWriter(FrontendMessage.Query, sql.length + 8).cstring(sql, 'query').finish();
}

/** Parse ('P'). */
export function encodeParse(
  statement: string,
  query: string,
  parameterTypes: readonly number[] = [],
): Buffer {
  const writer = new FrameWriter(FrontendMessage.Parse, query.length + 32)
    .cstring(statement, 'statement name')
    .cstring(query, 'query')
    .uint16(parameterTypes.length, 'parameter type count');
  for (const oid of parameterTypes) writer.uint32(oid, 'parameter type');
  return writer.finish();
}

export interface BindFields {
  readonly portal?: string;
  readonly statement?: string;
  readonly parameterFormats?: readonly FormatCode[];
  readonly parameters?: readonly (Uint8Array | string | null)[];
  readonly resultFormats?: readonly FormatCode[];
}

/** Bind ('B'). String parameters are sent as UTF-8 text. */
export function encodeBind(bind: BindFields): Buffer {
  const parameters = bind.parameters ?? [];
  const writer = new FrameWriter(FrontendMessage.Bind, 64)
    .cstring(bind.portal ?? '', 'portal name')
    .cstring(bind.statement ?? '', 'statement name');
  const formats = (codes: readonly FormatCode[], field: string) => {
    writer.uint16(codes.length, `${field} count`);
    for (const code of codes) writer.int16(code, field);
  };
  formats(bind.parameterFormats ?? [], 'parameter format');
  writer.uint16(parameters.length, 'parameter count');
  for (const value of parameters) {
    if (value === null) writer.int32(-1, 'parameter length');
    else {
      const bytes = asBytes(value);
      writer.int32(bytes.length, 'parameter length').bytes(bytes);
    }
  }
  formats(bind.resultFormats ?? [], 'result format');
  return writer.finish();
}

/** Execute ('E'); `maxRows` 0 = no limit. */
export function encodeExecute(portal = '', maxRows = 0): Buffer {
  return new FrameWriter(FrontendMessage.Execute)
    .cstring(portal, 'portal name')
    .int32(maxRows, 'row limit')
    .finish();
}

export interface FunctionCallFields {
  readonly functionOid: number;
  readonly argumentFormats?: readonly FormatCode[];
  readonly arguments?: readonly (Uint8Array | string | null)[];
  readonly resultFormat?: FormatCode;
}

/** FunctionCall ('F'). String arguments are sent as UTF-8 text. */
export function encodeFunctionCall(call: FunctionCallFields): Buffer {
  const args = call.arguments ?? [];
  const formats = call.argumentFormats ?? [];
  const writer = new FrameWriter(FrontendMessage.FunctionCall, 64)
    .uint32(call.functionOid, 'function OID')
    .uint16(formats.length, 'argument format count');
  for (const code of formats) writer.int16(code, 'argument format');
  writer.uint16(args.length, 'argument count');
  for (const value of args) {
    if (value === null) writer.int32(-1, 'argument length');
    else {
      const bytes = asBytes(value);
      writer.int32(bytes.length, 'argument length').bytes(bytes);
    }
  }
  return writer.int16(call.resultFormat ?? 0, 'result format').finish();
}

/** Sync ('S'). */
export function encodeSync(): Buffer {
  return new FrameWriter(FrontendMessage.Sync).finish();
}

/** Terminate ('X'). */
export function encodeTerminate(): Buffer {
  return new FrameWriter(FrontendMessage.Terminate).finish();
}
