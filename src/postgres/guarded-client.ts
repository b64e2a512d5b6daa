/**
 * Portcullis's own connections to PostgreSQL — its storage, the provisioner's admin connections,
 * break-glass drills — carry the most valuable passwords it holds. node-postgres gives its password
 * to whatever the server asks for: in cleartext to anyone on the path of a connection whose server
 * certificate is not checked, and it takes a SCRAM exchange that ends without the server's proof
 * as a success. {@link GuardedClient} adds libpq's `require_auth` and `channel_binding` connection
 * parameters, read from the same URL, and refuses the connection before anything is sent that the
 * policy does not allow.
 *
 * What node-postgres offers and this relies on: `password` may be a function, called only once the
 * server has asked (after the authentication request event this module watches), and
 * `enableChannelBinding` for SCRAM-SHA-256-PLUS.
 */
import pg from 'pg';
import { PortcullisError } from '../core/errors.js';
import { type PostgresAuthMethod, type PostgresAuthPolicy, postgresAuthPolicy } from './auth-policy.js';

const described: Record<PostgresAuthMethod, string> = {
  password: 'the password in cleartext',
  md5: 'an MD5 password hash',
  'scram-sha-256': 'SCRAM-SHA-256',
  none: 'no authentication',
};

interface GuardedClientConfig extends pg.ClientConfig {
  readonly connectionString: string;
  /** Names the URL in errors. Default 'the PostgreSQL URL'. */
  readonly urlSource?: string;
  /** The URL's policy when already read (a pool's connections share one); else read here. */
  readonly authPolicy?: PostgresAuthPolicy;
}

type Callback = (error: Error | null, client?: pg.Client) => void;

interface ServerRequest {
  readonly method: PostgresAuthMethod;
  readonly mechanisms?: readonly string[];
}

/**
 * A node-postgres client that authenticates as {@link postgresAuthPolicy} of its connection
 * string allows. Use it directly or as a pool's `Client`.
 *
 * @throws from connect(): PortcullisError `database_auth_refused` when the server asks for a
 *   method the policy does not accept, offers no channel binding when it is required, or ends a
 *   SCRAM exchange without proving it knows the password; `config_invalid` for a bad URL.
 */
export class GuardedClient extends pg.Client {
  readonly #policy: PostgresAuthPolicy;
  #request: ServerRequest | undefined;
  #serverProofReceived = false;

  constructor(config: GuardedClientConfig) {
    const policy =
      config.authPolicy ??
      postgresAuthPolicy(config.connectionString, config.urlSource ?? 'the PostgreSQL URL');
    super({ ...config, enableChannelBinding: policy.channelBinding !== 'disable' });
    this.#policy = policy;
    const secret = this.password;
    // node-postgres calls a password function once the server has asked, whatever it asked for.
    (this as { password?: unknown }).password = () => this.#passwordFor(secret);
    const connection = this.connection;
    connection.on('authenticationCleartextPassword', () => {
      this.#request = { method: 'password' };
    });
    connection.on('authenticationMD5Password', () => {
      this.#request = { method: 'md5' };
    });
    connection.on('authenticationSASL', (message: { mechanisms?: string[] }) => {
      this.#request = { method: 'scram-sha-256', mechanisms: message.mechanisms ?? [] };
    });
    connection.on('authenticationSASLFinal', () => {
      this.#serverProofReceived = true;
    });
  }

  override connect(): Promise<pg.Client>;
  override connect(callback: Callback): void;
  override connect(callback?: Callback): Promise<pg.Client> | undefined {
    if (!callback) {
      return new Promise((resolve, reject) => {
        this.connect((error, client) => (error || !client ? reject(error) : resolve(client)));
      });
    }
    // The callback runs in the same turn as ReadyForQuery, as node-postgres's does: a pool attaches
    // its 'error' listener there, before a FATAL that arrived in the same read is handled.
    super.connect((error: Error | null) => {
      if (error) {
        callback(error);
        return;
      }
      const refusal = this.#refusalOnceLoggedIn();
      if (!refusal) {
        callback(null, this);
        return;
      }
      this.end().catch(() => {});
      callback(refusal);
    });
    return undefined;
  }

  #passwordFor(secret: string | undefined): string | undefined {
    const refusal = this.#refusalBeforeAnswering();
    if (refusal) {
      this.connection.stream.destroy();
      throw refusal;
    }
    return secret;
  }

  #refusalBeforeAnswering(): PortcullisError | undefined {
    const request = this.#request;
    if (!request) return refused('the server asked for a password in a way Portcullis does not know');
    if (!this.#policy.accepted.has(request.method)) return this.#notAccepted(request.method);
    if (this.#policy.channelBinding === 'require') {
      if (!request.mechanisms?.includes('SCRAM-SHA-256-PLUS')) {
        return refused(
          `channel_binding=require, but the server offers no SCRAM-SHA-256-PLUS (it asked for ${described[request.method]}${request.mechanisms ? ` with ${request.mechanisms.join(', ')}` : ''})`,
        );
      }
    }
    return undefined;
  }

  #refusalOnceLoggedIn(): PortcullisError | undefined {
    const request = this.#request;
    if (!request) {
      if (this.#policy.channelBinding === 'require') {
        return refused('channel_binding=require, but the server logged in without authentication');
      }
      return this.#policy.accepted.has('none') ? undefined : this.#notAccepted('none');
    }
    if (request.method === 'scram-sha-256' && !this.#serverProofReceived) {
      return refused('the server ended the SCRAM exchange without proving it knows the password');
    }
    return undefined;
  }

  #notAccepted(method: PostgresAuthMethod): PortcullisError {
    const accepted = [...this.#policy.accepted].join(', ') || 'nothing';
    const hint =
      method === 'password'
        ? '; a cleartext password goes only to a server whose certificate is checked (sslmode=verify-ca or verify-full) or through a unix socket'
        : '';
    return refused(`the server asks for ${described[method]}, and require_auth allows ${accepted}${hint}`);
  }
}

function refused(reason: string): PortcullisError {
  return new PortcullisError('database_auth_refused', `Refused to log in to PostgreSQL: ${reason}`);
}

/**
 * The part of a node-postgres pool's settings that makes its connections {@link GuardedClient}s.
 * The URL is read here, once for every connection, so a bad one fails when the pool is made, not
 * at its first query.
 */
export function guardedPoolSettings(
  connectionString: string,
  urlSource: string,
): {
  readonly connectionString: string;
  readonly Client: new () => pg.ClientBase;
  readonly authPolicy: PostgresAuthPolicy;
} {
  return {
    connectionString,
    Client: GuardedClient as unknown as new () => pg.ClientBase,
    authPolicy: postgresAuthPolicy(connectionString, urlSource),
  };
}
