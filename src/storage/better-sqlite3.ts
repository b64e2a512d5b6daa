/**
 * The better-sqlite3 build for this Node.js. Node 24.19 and later abort (`RemoveEnvironmentCleanupHook`,
 * `(env) != nullptr`) when better-sqlite3 12's objects are garbage-collected, because 12 subclasses
 * Node's raw `ObjectWrap` (nodejs/node#65446); better-sqlite3 13 uses Node-API and ships its
 * prebuilt binaries inside the package, but crashes on Node 20. So both are installed (13 under the
 * alias `better-sqlite3-napi`) and the one that works here is loaded: 13 from Node 22 on, 12 on
 * Node 20. See docs/operations.md ("Node.js versions"); drop 12 with Node 20.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3Type from 'better-sqlite3';

const require = createRequire(import.meta.url);
const nodeMajor = Number(process.versions.node.split('.')[0]);

/** The module whose build this process loads: `better-sqlite3-napi` (13) or `better-sqlite3` (12). */
const betterSqlite3Module = nodeMajor >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3';

const BetterSqlite3 = require(betterSqlite3Module) as typeof BetterSqlite3Type;
export default BetterSqlite3;
export type SqliteDatabaseHandle = BetterSqlite3Type.Database;
export type SqliteStatementHandle = BetterSqlite3Type.Statement;
