/**
 * Reads the storage URL of the configuration into the backend to open. The URL may carry a
 * password, so no error message repeats it.
 */
import { PortcullisError } from '../core/errors.js';
import { isPostgresUrl } from '../text/postgres-url.js';

export type StoreLocation =
  | {
      readonly dialect: 'sqlite';
      /** A file path, or `:memory:` for a database that lives as long as the process. */
      readonly path: string;
    }
  | { readonly dialect: 'postgres'; readonly connectionString: string };

/**
 * Parses `sqlite:PATH`, `sqlite::memory:`, `postgres://…` or `postgresql://…`.
 *
 * `sqlite:` is followed by a plain path, relative to the working directory or absolute
 * (`sqlite:data/portcullis.db`, `sqlite:/var/lib/portcullis/portcullis.db`); the URL-like
 * `sqlite:///var/lib/portcullis.db` is accepted too and means the absolute path.
 *
 * @throws PortcullisError `config_invalid` for any other form.
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') {
      throw new PortcullisError('config_invalid', 'storage.url `sqlite:` needs a file path or :memory:');
    }
    return { dialect: 'sqlite', path };
  }
  if (isPostgresUrl(url)) {
    return { dialect: 'postgres', connectionString: url };
  }
  throw new PortcullisError(
    'config_invalid',
    'storage.url must start with sqlite:, postgres:// or postgresql:// (the value is not shown, it may hold a password)',
  );
}
