/**
 * What a command runs with: its output, the process environment and streams (replaceable in
 * tests), the global options, and the saved session behind the remote commands.
 */
import { readFileSync } from 'node:fs';
import { ApiClient, type FetchFunction, normalizeServerUrl } from './api-client.js';
import { CliError, exitCodes, usageError } from './cli-error.js';
import { Output, type TextSink } from './output.js';
import { portcullisHome, readSession, type SavedSession } from './session-file.js';

/** The process the CLI runs in; tests pass buffers and a fake fetch. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: TextSink & NodeJS.WritableStream;
  readonly stderr: TextSink;
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly fetch: FetchFunction;
  readonly now: () => number;
  /** Opens a URL in the user's browser; best effort. */
  readonly openBrowser: (url: string) => void;
}

/** Options every command accepts (defined on the root program). */
export interface GlobalOptions {
  readonly json?: boolean;
  readonly server?: string;
  readonly profile: string;
}

function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return manifest.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The CLI's version, from package.json (src/cli and dist/cli are both two levels down). */
export const cliVersion = packageVersion();

export class CliContext {
  readonly io: CliIo;
  readonly options: GlobalOptions;
  readonly output: Output;
  readonly home: string;

  constructor(io: CliIo, options: GlobalOptions) {
    this.io = io;
    this.options = options;
    this.output = new Output(options.json === true, io.stdout, io.stderr);
    this.home = portcullisHome(io.env);
  }

  get profile(): string {
    return this.options.profile;
  }

  /** `--server` (or PORTCULLIS_SERVER, which commander folds into it), normalised; undefined if neither. */
  get explicitServer(): string | undefined {
    return this.options.server === undefined ? undefined : normalizeServerUrl(this.options.server);
  }

  /** `--profile NAME` as a flag to paste into hints, empty for the default profile. */
  get profileFlag(): string {
    return this.profile === 'default' ? '' : ` --profile ${this.profile}`;
  }

  /** An unauthenticated client for `server` (login, public endpoints). */
  anonymousClient(server: string): ApiClient {
    return new ApiClient({ server, fetch: this.io.fetch, userAgent: `portcullis-cli/${cliVersion}` });
  }

  /**
   * The saved session of the profile, checked: present, not expired, and for the server asked for.
   *
   * @throws CliError exit 3 when there is none, it has expired, or it belongs to another server
   *   (its token is never sent to a server that did not issue it).
   */
  async session(): Promise<SavedSession> {
    const session = await readSession(this.home, this.profile);
    const login = `portcullis login${this.explicitServer ? ` --server ${this.explicitServer}` : ''}${this.profileFlag}`;
    if (!session) {
      throw new CliError(
        'not_signed_in',
        `Not signed in (profile "${this.profile}")`,
        exitCodes.unauthenticated,
        {
          hint: `run \`${login}\``,
        },
      );
    }
    const explicit = this.explicitServer;
    if (explicit !== undefined && normalizeServerUrl(session.server) !== explicit) {
      throw new CliError(
        'not_signed_in',
        `Profile "${this.profile}" is signed in to ${session.server}, not ${explicit}`,
        exitCodes.unauthenticated,
        { hint: `run \`${login}\`, or use another --profile` },
      );
    }
    const expiresAt = Date.parse(session.expires_at);
    if (!Number.isNaN(expiresAt) && expiresAt <= this.io.now()) {
      throw new CliError(
        'session_expired',
        `The session of profile "${this.profile}" expired at ${session.expires_at}`,
        exitCodes.unauthenticated,
        { hint: `run \`${login}\`` },
      );
    }
    return session;
  }

  /** A client for the signed-in server, carrying the session token. */
  async client(): Promise<ApiClient> {
    const session = await this.session();
    return new ApiClient({
      server: session.server,
      token: session.session_token,
      fetch: this.io.fetch,
      userAgent: `portcullis-cli/${cliVersion}`,
      unauthenticatedHint: `the session was refused; run \`portcullis login --server ${session.server}${this.profileFlag}\``,
    });
  }

  /** The server to log in to: `--server`/PORTCULLIS_SERVER, else the saved session's. */
  async loginServer(): Promise<string> {
    const explicit = this.explicitServer;
    if (explicit !== undefined) return explicit;
    const saved = await readSession(this.home, this.profile).catch(() => null);
    if (saved) return normalizeServerUrl(saved.server);
    throw usageError(
      'Which server? Pass --server URL or set PORTCULLIS_SERVER',
      'e.g. `portcullis login --server http://127.0.0.1:8080` for `portcullis dev`',
    );
  }
}
