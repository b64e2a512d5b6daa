/**
 * The one error type of the PostgreSQL wire codec. Every failure carries a stable `code`; the proxy
 * ends the one connection it happened on (sending an `ErrorResponse` with {@link ProtocolError.sqlState}
 * where the protocol still allows one) and keeps serving the others.
 */
export const protocolErrorCodes = {
  /** A declared length beyond the configured cap; refused before buffering the body. */
  message_too_large: '08P01',
  /** A length field below the minimum (4, or 8 for a startup packet) or negative as an int32. */
  malformed_length: '08P01',
  /** The stream ended inside a message. */
  unexpected_eof: '08P01',
  /** A message body that does not parse: a read past its end, a missing NUL, a bad count or code. */
  malformed_message: '08P01',
  /** A startup packet with a protocol version or request code the codec does not speak. */
  unsupported_protocol: '0A000',
  /** An encoder was given a value the protocol cannot carry (a NUL in a string, an int out of range). */
  invalid_value: '22023',
  /** The SCRAM server sent something that is not a valid SCRAM message. */
  scram_malformed: '08006',
  /** The server nonce does not extend the client nonce. */
  scram_nonce_mismatch: '08006',
  /** The iteration count is below 4096 or above the configured cap. */
  scram_iterations_out_of_range: '08006',
  /** The server could not prove it knows the password: possibly an impostor. */
  scram_server_signature_mismatch: '08006',
  /** The server ended the exchange with `e=<error>`. */
  scram_server_error: '08006',
} as const satisfies Record<string, string>;

export type ProtocolErrorCode = keyof typeof protocolErrorCodes;

/**
 * A malformed, truncated or oversized message, or a failed SCRAM exchange.
 *
 * @example
 * try { reader.next(); } catch (error) {
 *   if (isProtocolError(error)) socket.end(encodeErrorResponse({ severity: 'FATAL', code: error.sqlState, message: error.message }));
 * }
 */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** The SQLSTATE to report to a PostgreSQL client (08P01 protocol_violation for framing errors). */
  readonly sqlState: string;

  constructor(code: ProtocolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
    this.sqlState = protocolErrorCodes[code];
  }
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
