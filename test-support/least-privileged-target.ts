/**
 * A Portcullis whose `demo-db` target is provisioned by a least-privileged account (`pc_admin`:
 * CREATEROLE, pg_signal_backend, member of the owner role `pc_owner`) on a throw-away
 * scram-sha-256 cluster, so a test can take that account's rights away through `superuser` and
 * watch provisioning or revocation fail at the target.
 */
import pg from 'pg';
import { type Harness, startHarness } from './portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from './scram-cluster.js';

export interface LeastPrivilegedTarget {
  readonly cluster: ScramCluster;
  readonly harness: Harness;
  /** A superuser session on the target, for changing `pc_admin`'s rights. */
  readonly superuser: pg.Client;
  stop(): Promise<void>;
}

/** Starts it, or says why the tests are skipped (with CI=true a cluster that cannot start fails). */
export async function startLeastPrivilegedTarget(): Promise<
  | { readonly target: LeastPrivilegedTarget; readonly skip?: undefined }
  | { readonly target?: undefined; readonly skip: string }
> {
  const started = await startScramClusterOrSkip();
  if (!started.cluster) return { skip: started.skip };
  const cluster = started.cluster;
  const superuser = new pg.Client({ connectionString: cluster.adminUrl });
  let harness: Harness | undefined;
  try {
    await superuser.connect();
    await superuser.query(`
      create role pc_owner nologin;
      create role pc_admin login password 'admin-password' createrole;
      grant pg_signal_backend to pc_admin;
      grant pc_owner to pc_admin;`);
    harness = await startHarness({
      storage: 'sqlite',
      targetAdminUrl: cluster.adminUrl,
      targetResourceAdmin: { user: 'pc_admin', password: 'admin-password', reassignOwnedTo: 'pc_owner' },
    });
  } catch (error) {
    await superuser.end().catch(() => {});
    await cluster.stop();
    throw error;
  }
  const running = harness;
  return {
    target: {
      cluster,
      harness: running,
      superuser,
      async stop() {
        await running.close();
        await superuser.end();
        await cluster.stop();
      },
    },
  };
}
