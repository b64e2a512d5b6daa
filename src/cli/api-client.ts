/**
 * A small client for the Portcullis HTTP API: JSON in and out, the session token as a bearer
 * token, and every failure turned into a {@link CliError} whose exit code a script can rely on.
 * Problem responses (RFC 9457, `application/problem+json`) keep the server's stable `code`.
 */
import { CliError, type ExitCode, exitCodes, usageError } from './cli-error.js';

/** The `fetch` the client calls; injectable for tests. */
export type FetchFunction = typeof fetch;

export interface ApiClientOptions {
  /** Base URL of the server, e.g. `https://access.example.com` (see {@link normalizeServerUrl}). */
  readonly server: string;
  /** The session token; omitted for the few public endpoints. */
  readonly token?: string;
  readonly fetch?: FetchFunction;
  /** Per-request timeout for JSON calls. Default 30 s. */
  readonly timeoutMs?: number;
  /** Shown under a 401, e.g. "run `portcullis login --profile bob`". */
  readonly unauthenticatedHint?: string;
  readonly userAgent?: string;
  /** Extra headers sent with every call (e.g. a break-glass activation handle). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Checks and canonicalises a server URL: http or https, no credentials, query or fragment; the
 * trailing slash is dropped. A path prefix (a server behind a reverse proxy) is kept.
 *
 * @throws CliError (exit 2) for anything else.
 */
export function normalizeServerUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw usageError(
      `Not a server URL: ${JSON.stringify(input)}`,
      'pass it like --server https://access.example.com',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`The server URL must start with https:// or http://, not ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw usageError('The server URL must not contain credentials, a query or a fragment');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Whether the URL is plain http to a host other than this machine (tokens would cross the network in clear). */
export function isCleartextRemote(server: string): boolean {
  const url = new URL(server);
  return url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** The exit code for an HTTP error status (and, where it refines it, the problem code). */
export function exitCodeForStatus(status: number, code?: string): ExitCode {
  if (code === 'login_failed') return exitCodes.unauthenticated;
  if (status === 401) return exitCodes.unauthenticated;
  if (status === 403) return exitCodes.forbidden;
  if (status === 404) return exitCodes.notFound;
  if (status === 409) return exitCodes.conflict;
  if (status === 429 || status >= 500) return exitCodes.unavailable;
  if (status >= 400) return exitCodes.usage;
  return exitCodes.unexpected;
}

const problemFields = new Set(['type', 'title', 'status', 'code', 'detail', 'instance']);

/** Builds the CliError for a non-2xx response, from its problem body when it has one. */
export async function errorFromResponse(response: Response, hint401?: string): Promise<CliError> {
  const contentType = response.headers.get('content-type') ?? '';
  const text = await response.text().catch(() => '');
  let body: Record<string, unknown> | null = null;
  if (/json/i.test(contentType)) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        body = parsed as Record<string, unknown>;
      }
    } catch {
      body = null;
    }
  }
  const status = response.status;
  const code = typeof body?.code === 'string' ? body.code : `http_${status}`;
  const detail =
    typeof body?.detail === 'string'
      ? body.detail
      : typeof body?.title === 'string'
        ? body.title
        : `The server answered HTTP ${status} ${response.statusText}`.trim();
  const details: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body ?? {})) if (!problemFields.has(key)) details[key] = value;
  const policyIds = Array.isArray(details.policyIds)
    ? details.policyIds.filter((id) => typeof id === 'string')
    : [];
  const message = policyIds.length > 0 ? `${detail} (policy: ${policyIds.join(', ')})` : detail;
  const exitCode = exitCodeForStatus(status, code);
  const hint =
    exitCode === exitCodes.unauthenticated && code !== 'login_failed'
      ? (hint401 ?? 'run `portcullis login`')
      : undefined;
  return new CliError(code, message, exitCode, { details, ...(hint === undefined ? {} : { hint }) });
}

const networkErrorNames: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
};

/** Turns a failed `fetch` (no HTTP response at all) into an "unavailable" CliError (exit 7). */
export function errorFromNetworkFailure(error: unknown, server: string): CliError {
  if (error instanceof CliError) return error;
  const name = (error as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new CliError('unavailable', `${server} did not answer in time`, exitCodes.unavailable, {
      cause: error,
    });
  }
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  const code = cause?.code ?? (error as { code?: string } | null)?.code;
  const reason =
    (code && networkErrorNames[code]) ?? cause?.message ?? (error as Error)?.message ?? String(error);
  return new CliError(
    'unavailable',
    `Cannot reach ${server}: ${reason}${code && networkErrorNames[code] ? ` (${code})` : ''}`,
    exitCodes.unavailable,
    { cause: error, hint: 'is the server running, and is --server (or PORTCULLIS_SERVER) right?' },
  );
}

/** Calls the Portcullis API; see {@link ApiClientOptions}. */
export class ApiClient {
  readonly server: string;
  readonly #token: string | undefined;
  readonly #fetch: FetchFunction;
  readonly #timeoutMs: number;
  readonly #hint401: string | undefined;
  readonly #userAgent: string;
  readonly #headers: Readonly<Record<string, string>>;

  constructor(options: ApiClientOptions) {
    this.server = normalizeServerUrl(options.server);
    this.#token = options.token;
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#hint401 = options.unauthenticatedHint;
    this.#userAgent = options.userAgent ?? 'portcullis-cli';
    this.#headers = options.headers ?? {};
  }

  /** GET a JSON resource; `query` values that are undefined are left out. */
  get<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, value);
    const encoded = search.toString();
    const suffix = encoded === '' ? '' : `?${encoded}`;
    return this.#json<T>('GET', `${path}${suffix}`);
  }

  /** POST a JSON body (or none) and read the JSON answer. */
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.#json<T>('POST', path, body);
  }

  /**
   * GET a streamed body (e.g. the audit export) without a total timeout; only the wait for the
   * response headers is bounded.
   */
  async stream(path: string): Promise<ReadableStream<Uint8Array>> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('timeout', 'TimeoutError')),
      this.#timeoutMs,
    );
    let response: Response;
    try {
      response = await this.#send('GET', path, undefined, controller.signal);
    } finally {
      clearTimeout(timer);
    }
    if (!response.body)
      throw new CliError('empty_response', `${path} returned no body`, exitCodes.unexpected);
    return response.body;
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, body, AbortSignal.timeout(this.#timeoutMs));
    if (response.status === 204) return undefined as T;
    const text = await response.text().catch((error: unknown) => {
      throw errorFromNetworkFailure(error, this.server);
    });
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        'unexpected_response',
        `${this.server}${path} did not answer with JSON (HTTP ${response.status}, ${response.headers.get('content-type') ?? 'no content type'}); is this a Portcullis server?`,
        exitCodes.unexpected,
      );
    }
  }

  async #send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {
      accept: 'application/json, application/problem+json',
      'x-portcullis-client': 'cli',
      'user-agent': this.#userAgent,
    };
    Object.assign(headers, this.#headers);
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(`${this.server}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        // A redirect would carry the bearer token somewhere else: refuse instead of following.
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      throw errorFromNetworkFailure(error, this.server);
    }
    if (response.status >= 300 && response.status < 400) {
      throw new CliError(
        'unexpected_redirect',
        `${this.server}${path} redirects to ${response.headers.get('location') ?? '(nowhere)'}; not following it with your token`,
        exitCodes.unexpected,
        { hint: 'pass the final server URL with --server' },
      );
    }
    if (!response.ok) throw await errorFromResponse(response, this.#hint401);
    return response;
  }
}
