import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JWK } from 'jose';
import { AuditRetention } from '../app/audit-retention.js';
import type { Store } from '../app/ports.js';
import { ManualClock } from '../core/clock.js';
import { openStore } from '../storage/open-store.js';
import { appendTestEvents, auditTestEpoch, exportToLines, testAuditKey } from './audit-test-support.js';
import { AuditCheckpointer, type AuditSigningKey, signCheckpoint } from './checkpoint.js';
import { signCut } from './cut-statement.js';
import { checkpointLine, eventLine } from './export-format.js';
import { eventHash, type HashedEventFields, recordOf } from './hash.js';
import { loadPublicKeys } from './public-keys.js';
import { readLines } from './read-lines.js';
import { type TamperKind, type VerifyResult, verifyAuditExport } from './verify.js';

/** Header, checkpoints at 10, 20 and 30, then events 1–30. */
let lines: string[];
let key: AuditSigningKey;
let store: Store;

before(async () => {
  key = testAuditKey('audit-2026');
  store = await openStore('sqlite::memory:');
  const checkpointer = new AuditCheckpointer(store.auditLog, key, { everyEvents: 10, everySeconds: 3600 });
  for (let n = 1; n <= 30; n += 10) {
    await appendTestEvents(store, n, n + 9);
    await checkpointer.checkpointIfDue(auditTestEpoch + n * 1000 + 9000);
  }
  lines = await exportToLines(store.auditLog);
});

after(() => store.close());

const eventIndex = (file: readonly string[], seq: number) =>
  file.findIndex((line) => {
    const entry = JSON.parse(line);
    return entry.kind === 'event' && entry.seq === seq;
  });

function verify(file: readonly string[], keys: JWK[] = [key.publicJwk]): Promise<VerifyResult> {
  return verifyAuditExport(file, keys);
}

async function assertProblem(file: readonly string[], kind: TamperKind, seq: number | null, keys?: JWK[]) {
  const result = await verify(file, keys);
  if (process.env.AUDIT_DEBUG && !result.ok) console.log(result.problem);
  assert.equal(result.ok, false, 'tampering went unnoticed');
  if (!result.ok) {
    assert.equal(result.problem.kind, kind, result.problem.message);
    assert.equal(result.problem.seq, seq, result.problem.message);
  }
  return result;
}

function parsedEvent(line: string): HashedEventFields & { hash: string } {
  return JSON.parse(line);
}

/** Applies `edit` to event `seq` and recomputes every hash from there on, as a capable attacker would. */
function rewriteAndRehash(
  file: readonly string[],
  seq: number,
  edit: (fields: HashedEventFields) => HashedEventFields,
) {
  const copy = [...file];
  let previousHash: string | undefined;
  for (let index = eventIndex(copy, seq); index < copy.length; index++) {
    const original = parsedEvent(copy[index] as string);
    let fields: HashedEventFields = { ...original, prev_hash: previousHash ?? original.prev_hash };
    if (original.seq === seq) fields = edit(fields);
    const hash = eventHash(fields);
    copy[index] = eventLine(recordOf(fields, hash)).trimEnd();
    previousHash = hash;
  }
  return copy;
}

/** Hash at `seq` in a file. */
const hashAt = (file: readonly string[], seq: number) =>
  parsedEvent(file[eventIndex(file, seq)] as string).hash;

describe('verifyAuditExport', () => {
  it('accepts an untouched export and reports its coverage', async () => {
    assert.match(lines[0] as string, /^\{"kind":"header","format":"portcullis-audit\/1"/);
    assert.equal(lines.filter((line) => line.startsWith('{"kind":"checkpoint"')).length, 3);
    const result = await verify(lines);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.events, 30);
    assert.equal(result.checkpoints, 3);
    assert.equal(result.headSeq, 30);
    assert.equal(result.headHash, (await store.auditLog.head()).hash);
    assert.equal(result.signedThroughSeq, 30);
    assert.equal(result.unsignedEvents, 0);
  });

  it('names a changed field as changed, at its entry', async () => {
    const file = [...lines];
    const index = eventIndex(file, 7);
    file[index] = (file[index] as string).replace('"actor":"okta:user-7"', '"actor":"okta:mallory"');
    const result = await assertProblem(file, 'changed', 7);
    assert.equal(result.ok || result.problem.line, index + 1);
  });

  it('names a changed number, a changed seq and an added field as changed', async () => {
    const at = [...lines];
    at[eventIndex(at, 3)] = (at[eventIndex(at, 3)] as string).replace(
      /"at":(\d+)/,
      (_, n) => `"at":${Number(n) + 1}`,
    );
    await assertProblem(at, 'changed', 3);
    const seq = [...lines];
    seq[eventIndex(seq, 4)] = (seq[eventIndex(seq, 4)] as string).replace('"seq":4,', '"seq":40,');
    await assertProblem(seq, 'changed', 4);
    const added = [...lines];
    added[eventIndex(added, 5)] = (added[eventIndex(added, 5)] as string).replace(
      '{"actor":',
      '{"approved_by":"ceo","actor":',
    );
    await assertProblem(added, 'changed', 5);
  });

  it('catches a rewrite with recomputed hashes at the next signed checkpoint', async () => {
    const file = rewriteAndRehash(lines, 13, (fields) => ({ ...fields, reason: 'nothing to see' }));
    const result = await assertProblem(file, 'changed', 11);
    assert.equal(result.ok || result.problem.throughSeq, 20);
    assert.equal(result.headSeq, 10, 'only the entries under the previous checkpoint are trusted');
    assert.equal(result.headHash, hashAt(lines, 10));
  });

  it('names a deleted line as removed', async () => {
    const file = [...lines];
    file.splice(eventIndex(file, 12), 1);
    const result = await assertProblem(file, 'removed', 12);
    assert.equal(result.headSeq, 11);
    assert.equal(result.headHash, hashAt(lines, 11));
  });

  it('names a forged line with a valid hash as inserted', async () => {
    const file = [...lines];
    const forged: HashedEventFields = {
      ...parsedEvent(file[eventIndex(file, 15)] as string),
      id: '00000000-0000-4000-8000-000000000000',
      actor: 'okta:mallory',
      prev_hash: hashAt(file, 14),
    };
    const index = eventIndex(file, 15);
    file.splice(index, 0, eventLine(recordOf(forged, eventHash(forged))).trimEnd());
    const result = await assertProblem(file, 'inserted', 15);
    assert.equal(result.ok || result.problem.line, index + 1);
    assert.equal(result.headSeq, 14);
    assert.equal(result.headHash, hashAt(lines, 14));
    const after = [...lines];
    after.splice(eventIndex(after, 15) + 1, 0, eventLine(recordOf(forged, eventHash(forged))).trimEnd());
    const second = await assertProblem(after, 'inserted', 15);
    assert.equal(second.ok || second.problem.line, index + 2);
    const atEnd = [...lines, eventLine(recordOf({ ...forged, prev_hash: hashAt(lines, 29) }, '')).trimEnd()];
    const last = parsedEvent(atEnd.at(-1) as string);
    atEnd[atEnd.length - 1] = eventLine(
      recordOf({ ...last, seq: 30 }, eventHash({ ...last, seq: 30 })),
    ).trimEnd();
    const end = await assertProblem(atEnd, 'inserted', 30);
    assert.equal(end.ok || end.problem.line, atEnd.length);
  });

  it('names a copied line as inserted', async () => {
    await assertProblem([...lines, lines[eventIndex(lines, 3)] as string], 'inserted', 3);
  });

  it('names swapped lines as reordered, at the first one out of place', async () => {
    const file = [...lines];
    const index = eventIndex(file, 17);
    [file[index], file[index + 1]] = [file[index + 1] as string, file[index] as string];
    await assertProblem(file, 'reordered', 17);
  });

  it('names a line moved to the end as reordered', async () => {
    const file = [...lines];
    const [moved] = file.splice(eventIndex(file, 5), 1);
    file.push(moved as string);
    await assertProblem(file, 'reordered', 5);
  });

  it('names missing trailing entries as truncated', async () => {
    const file = lines.slice(0, eventIndex(lines, 26));
    await assertProblem(file, 'truncated', 26);
    const noEvents = lines.slice(0, eventIndex(lines, 1));
    await assertProblem(noEvents, 'truncated', 1);
  });

  it('names a checkpoint re-signed with another key as bad_signature', async () => {
    const attacker = generateKeyPairSync('ed25519').privateKey;
    const rewritten = rewriteAndRehash(lines, 5, (fields) => ({ ...fields, actor: 'okta:mallory' }));
    const resign = (kid: string, privateKey: KeyObject) =>
      rewritten.map((line) => {
        if (!line.startsWith('{"kind":"checkpoint"')) return line;
        const { seq, at } = JSON.parse(line) as { seq: number; at: number };
        return checkpointLine(
          signCheckpoint({ seq, hash: hashAt(rewritten, seq) }, at, { kid, privateKey }),
        ).trimEnd();
      });
    await assertProblem(resign(key.kid, attacker), 'bad_signature', 10);
    const otherKid = await assertProblem(resign('attacker', attacker), 'bad_signature', 10);
    assert.match(otherKid.ok ? '' : otherKid.problem.message, /unknown key attacker/);
  });

  it('names a damaged signature as bad_signature', async () => {
    const file = lines.map((line) =>
      line.startsWith('{"kind":"checkpoint","seq":20,')
        ? // Another first character: the signature is random and may begin with any of them.
          line.replace(/"signature":"(.)/, (_, first: string) => `"signature":"${first === 'A' ? 'B' : 'A'}`)
        : line,
    );
    await assertProblem(file, 'bad_signature', 20);
  });

  it('names a deleted checkpoint line as removed, against the header', async () => {
    const file = lines.filter((line) => !line.startsWith('{"kind":"checkpoint","seq":30,'));
    await assertProblem(file, 'removed', null);
  });

  it('refuses lines that are not an export as malformed', async () => {
    await assertProblem(['{"kind":"header","format":"other/1"}'], 'malformed', null);
    await assertProblem([], 'malformed', null);
    const file = [...lines];
    file[eventIndex(file, 9)] = '{"kind":"event",';
    await assertProblem(file, 'malformed', 9);
  });

  it('accepts an export whose lines were re-serialised with other key order and spacing', async () => {
    const file = lines.map((line) => {
      const { kind, ...rest } = JSON.parse(line);
      return JSON.stringify({ kind, ...rest }, null, 1).replaceAll('\n', '');
    });
    assert.notDeepEqual(file, lines);
    const result = await verify(file);
    assert.equal(result.ok, true, JSON.stringify(result));
    const changed = [...file];
    changed[eventIndex(changed, 8)] = (changed[eventIndex(changed, 8)] as string).replace(
      '"okta:user-8"',
      '"okta:x"',
    );
    await assertProblem(changed, 'changed', 8);
  });

  it('accepts CRLF line endings and blank lines', async () => {
    const result = await verify([...lines.map((line) => `${line}\r`), '', '  ']);
    assert.equal(result.ok, true, JSON.stringify(result));
  });

  it('accepts entries after the last checkpoint but counts them as unsigned', async () => {
    const other = await openStore('sqlite::memory:');
    try {
      await appendTestEvents(other, 1, 12);
      await new AuditCheckpointer(other.auditLog, key).checkpointNow(auditTestEpoch);
      await appendTestEvents(other, 13, 15);
      const file = await exportToLines(other.auditLog);
      const result = await verify(file);
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.signedThroughSeq, 12);
      assert.equal(result.unsignedEvents, 3);
      // The unsigned header still betrays a clumsy cut.
      await assertProblem(file.slice(0, -1), 'truncated', 15);
    } finally {
      await other.close();
    }
  });

  it('verifies a file read from disk with a JWKS, a bare JWK and a PEM key', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'portcullis-audit-'));
    try {
      const exportPath = join(directory, 'audit.jsonl');
      await writeFile(exportPath, `${lines.join('\n')}\n`);
      const other = testAuditKey('other');
      const keyFiles: Record<string, string> = {
        'keys.jwks': JSON.stringify({ keys: [other.publicJwk, key.publicJwk] }),
        'key.jwk': JSON.stringify(key.publicJwk),
        // Two PEM blocks without kid: each is tried for every checkpoint.
        'keys.pem': [other.privateKey, key.privateKey]
          .map((privateKey) =>
            createPublicKey(privateKey as KeyObject).export({ type: 'spki', format: 'pem' }),
          )
          .join(''),
      };
      for (const [name, content] of Object.entries(keyFiles)) {
        await writeFile(join(directory, name), content);
        const result = await verifyAuditExport(
          readLines(exportPath),
          await loadPublicKeys(join(directory, name)),
        );
        assert.equal(result.ok, true, `${name}: ${JSON.stringify(result)}`);
        assert.equal(result.headSeq, 30);
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('names tampering the same way where no checkpoint covers the entries', async () => {
    const header = { ...JSON.parse(lines[0] as string), checkpoints: 0 };
    const unsigned = [JSON.stringify(header), ...lines.filter((line) => line.endsWith('"kind":"event"}'))];
    const result = await verify(unsigned);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.unsignedEvents, 30);

    const changed = [...unsigned];
    changed[eventIndex(changed, 7)] = (changed[eventIndex(changed, 7)] as string).replace(
      '"okta:user-7"',
      '"x"',
    );
    await assertProblem(changed, 'changed', 7);
    const removed = [...unsigned];
    removed.splice(eventIndex(removed, 12), 1);
    await assertProblem(removed, 'removed', 12);
    const swapped = [...unsigned];
    const index = eventIndex(swapped, 17);
    [swapped[index], swapped[index + 1]] = [swapped[index + 1] as string, swapped[index] as string];
    await assertProblem(swapped, 'reordered', 17);
    const forged: HashedEventFields = {
      ...parsedEvent(unsigned[eventIndex(unsigned, 15)] as string),
      actor: 'x',
    };
    const inserted = [...unsigned];
    inserted.splice(eventIndex(inserted, 15), 0, eventLine(recordOf(forged, eventHash(forged))).trimEnd());
    await assertProblem(inserted, 'inserted', 15);
    // Without a checkpoint only the unsigned header stands in the way of a rewrite with new hashes.
    const rehashed = rewriteAndRehash(unsigned, 13, (fields) => ({ ...fields, reason: 'nothing to see' }));
    const rewrite = await assertProblem(rehashed, 'changed', 1);
    assert.match(rewrite.ok ? '' : rewrite.problem.message, /header/);
    rehashed[0] = JSON.stringify({ ...header, head_hash: hashAt(rehashed, 30) });
    assert.equal(
      (await verify(rehashed)).ok,
      true,
      'a consistent rewrite of unsigned entries is undetectable',
    );
  });

  it('needs at least one key', async () => {
    await assert.rejects(verifyAuditExport(lines, []), /At least one audit public key/);
  });
});

describe('verifyAuditExport after a retention cut', () => {
  const day = 86_400_000;
  let cutStore: Store;
  let cut: string[];
  let uncoveredCut: string[];

  /** Events 1–10, checkpoint 10, cut at 10 by retention (audit.pruned is 11), events up to 14. */
  async function cutLog(checkpointAfterCut: boolean): Promise<{ store: Store; lines: string[] }> {
    const store = await openStore('sqlite::memory:');
    const checkpointer = new AuditCheckpointer(store.auditLog, key);
    await appendTestEvents(store, 1, 10);
    await checkpointer.checkpointNow(auditTestEpoch + 60_000);
    const now = auditTestEpoch + 40 * day;
    const retention = new AuditRetention({
      store,
      clock: new ManualClock(now),
      retentionMs: 30 * day,
      streams: [],
      owner: 'test',
      signingKey: async () => key,
      checkpointValid: async () => true,
      onError: (error) => {
        throw error;
      },
    });
    assert.equal((await retention.run(now))?.cutAt?.seq, 10);
    await appendTestEvents(store, 12, 14);
    if (checkpointAfterCut) await checkpointer.checkpointNow(now);
    return { store, lines: await exportToLines(store.auditLog) };
  }

  const withHeader = (file: readonly string[], change: (header: Record<string, unknown>) => void) => {
    const header = JSON.parse(file[0] as string);
    change(header);
    return [JSON.stringify(header), ...file.slice(1)];
  };

  before(async () => {
    const covered = await cutLog(true);
    cutStore = covered.store;
    cut = covered.lines;
    const uncovered = await cutLog(false);
    uncoveredCut = uncovered.lines;
    await uncovered.store.close();
  });
  after(() => cutStore.close());

  it('accepts the rest of the chain, anchored at the checkpoint where it was cut', async () => {
    const result = await verify(cut);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(
      [result.firstSeq, result.events, result.headSeq, result.signedThroughSeq],
      [11, 4, 14, 14],
    );
    assert.equal(JSON.parse(cut[1] as string).seq, 10, 'the anchor is the first checkpoint');
  });

  it('names old events deleted at a checkpoint without an audit.pruned event as removed', async () => {
    // From the untouched export: events 1–20 and checkpoint 10 dropped, the header adjusted.
    const anchored = withHeader(
      lines.filter((line) => {
        const entry = JSON.parse(line);
        return (
          !(entry.kind === 'event' && entry.seq <= 20) && !(entry.kind === 'checkpoint' && entry.seq === 10)
        );
      }),
      (header) => {
        header.first_seq = 21;
        header.checkpoints = 2;
      },
    );
    const result = await assertProblem(anchored, 'removed', 1);
    assert.match(result.ok ? '' : result.problem.message, /no audit\.pruned event signed with an audit key/);
  });

  it('names old events deleted with a forged audit.pruned event as removed, signed or not', async () => {
    // What a database writer without the audit key can do: write the cut's event and floor itself.
    const forge = async (signWith: AuditSigningKey | null) => {
      const store = await openStore('sqlite::memory:');
      try {
        const checkpointer = new AuditCheckpointer(store.auditLog, key);
        await appendTestEvents(store, 1, 10);
        const anchor = (await checkpointer.checkpointNow(auditTestEpoch + 60_000)) ?? assert.fail();
        const now = auditTestEpoch + 40 * day;
        const statement = {
          throughSeq: 10,
          throughHash: anchor.headHash,
          checkpointAt: anchor.at,
          cutoff: now - 30 * day,
          retentionSeconds: 30 * 86_400,
        };
        const signed = signWith ? await signCut(statement, signWith) : {};
        await store.transaction(async (tx) => {
          await tx.auditRetention.markPrunedThrough(10);
          await tx.audit.append(
            { type: 'audit.pruned', actor: 'system', data: { ...statement, events: 10, ...signed } },
            now,
          );
        });
        await store.auditRetention.deletePrunedEvents(100);
        await store.auditRetention.deletePrunedCheckpoints();
        // The server signs whatever head it finds, the forged event included.
        await checkpointer.checkpointNow(now);
        return await exportToLines(store.auditLog);
      } finally {
        await store.close();
      }
    };
    const unsigned = await assertProblem(await forge(null), 'removed', 1);
    assert.equal(unsigned.firstSeq, 11);
    const otherKey = testAuditKey(key.kid);
    await assertProblem(await forge(otherKey), 'removed', 1);
    // The same forgery signed with the real key is what retention itself writes: it verifies.
    assert.equal((await verify(await forge(key))).ok, true);
  });

  it('names a cut export without its anchor checkpoint as removed', async () => {
    const unanchored = withHeader(
      cut.filter((line, index) => index !== 1),
      (header) => {
        header.checkpoints = (header.checkpoints as number) - 1;
      },
    );
    await assertProblem(unanchored, 'removed', 1);
  });

  it('does not take an audit.pruned event that no signature covers', async () => {
    const result = await assertProblem(uncoveredCut, 'removed', 1);
    assert.equal(result.firstSeq, 11);
  });

  it('names a cut export whose header forgot first_seq as removed', async () => {
    await assertProblem(
      withHeader(cut, (header) => {
        delete header.first_seq;
      }),
      'removed',
      1,
    );
  });

  it('refuses a checkpoint older than the anchor and a first_seq that is not a sequence', async () => {
    const olderCheckpoint = checkpointLine(
      signCheckpoint(
        { seq: 5, hash: parsedEvent(lines[eventIndex(lines, 5)] as string).hash },
        auditTestEpoch,
        key as { kid: string; privateKey: KeyObject },
      ),
    ).trimEnd();
    const withOlder = withHeader([cut[0] as string, olderCheckpoint, ...cut.slice(1)], (header) => {
      header.checkpoints = (header.checkpoints as number) + 1;
    });
    await assertProblem(withOlder, 'malformed', 5);
    await assertProblem(
      withHeader(cut, (header) => {
        header.first_seq = 0;
      }),
      'malformed',
      null,
    );
  });

  it('names a rewritten event after the cut as changed, and trusts nothing before the anchor', async () => {
    const index = eventIndex(cut, 12);
    const edited = [...cut];
    edited[index] = (edited[index] as string).replace('"actor":"okta:user-12"', '"actor":"okta:user-99"');
    const result = await assertProblem(edited, 'changed', 12);
    assert.equal(result.headSeq, 11);
  });
});
