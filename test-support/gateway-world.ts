/**
 * The world most gateway tests run in, set up once per test file: a throw-away scram-sha-256
 * PostgreSQL cluster for `demo-db`, a Portcullis (SQLite storage) with its gateway on, and signed-in
 * users. Registers the file's `before`/`after`; read the fields inside tests (they are set by then).
 * Further set-up goes in `setUp`.
 * `skip` is set instead when no cluster can be started (and fails the run in CI, as
 * startScramClusterOrSkip decides).
 */
import { after, before } from 'node:test';
import { type Harness, type HarnessOptions, startHarness } from './portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from './scram-cluster.js';

export interface GatewayWorld {
  readonly h: Harness;
  readonly cluster: ScramCluster | undefined;
  readonly skip: string | undefined;
  /** Session tokens by user name. */
  readonly sessions: Readonly<Record<string, string>>;
}

export interface GatewayWorldOptions {
  /** Users to sign in (default alice, bob, carol). */
  readonly users?: readonly string[];
  /** More harness options (the gateway and the target are always set). */
  readonly harness?: Partial<Omit<HarnessOptions, 'targetAdminUrl'>>;
  /**
   * More set-up once the world runs (e.g. a live grant), inside the same `before` hook: a second
   * top-level `before` in the test file ran before this one had finished (Node 20, with `describe`).
   */
  readonly setUp?: (world: GatewayWorld) => Promise<void>;
}

export function useGatewayWorld(options: GatewayWorldOptions = {}): GatewayWorld {
  const world: { -readonly [K in keyof GatewayWorld]: GatewayWorld[K] } = {
    h: undefined as unknown as Harness,
    cluster: undefined,
    skip: undefined,
    sessions: {},
  };
  before(async () => {
    const started = await startScramClusterOrSkip();
    world.cluster = started.cluster;
    world.skip = started.skip;
    if (!started.cluster) return;
    world.h = await startHarness({
      storage: 'sqlite',
      gateway: true,
      ...options.harness,
      targetAdminUrl: started.cluster.adminUrl,
    });
    const sessions: Record<string, string> = {};
    for (const user of options.users ?? ['alice', 'bob', 'carol']) sessions[user] = await world.h.login(user);
    world.sessions = sessions;
    await options.setUp?.(world);
  });
  after(async () => {
    await world.h?.close();
    await world.cluster?.stop();
  });
  return world;
}
