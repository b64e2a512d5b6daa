import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from './canonical.js';
import { eventLine, hashOfEventLine, readEventLineTail } from './export-format.js';
import {
  canonicalEventBody,
  eventBodyPieces,
  eventHash,
  eventHashOfPieces,
  type HashedEventFields,
  hashedFieldNames,
  recordOf,
} from './hash.js';

// Computed independently (Python: json.dumps(sort_keys=True, separators=(',', ':'),
// ensure_ascii=False), then hashlib.sha256((prev_hash + body).encode('utf-8'))).
const vector: HashedEventFields = {
  seq: 42,
  id: '6f1c2d3e-0000-4000-8000-000000000042',
  at: 1767225600000,
  type: 'grant.revoked',
  actor: 'okta:00u1',
  severity: 'high',
  source_ip: '203.0.113.7',
  user_agent: null,
  request_id: 'req-1',
  grant_id: 'grant-1',
  resource_id: 'prod-db',
  reason: 'Incident — «rollback»',
  policy_ids: ['p2', 'p1'],
  data: { z: [1, 2.5, true, null], a: { y: 'é', b: -3 }, 10: 'ten', 9: 'nine' },
  prev_hash: 'ab'.repeat(32),
};
const vectorBody =
  '{"actor":"okta:00u1","at":1767225600000,"data":{"10":"ten","9":"nine","a":{"b":-3,"y":"é"},' +
  '"z":[1,2.5,true,null]},"grant_id":"grant-1","id":"6f1c2d3e-0000-4000-8000-000000000042",' +
  '"policy_ids":["p2","p1"],"prev_hash":"abababababababababababababababababababababababababababababababab",' +
  '"reason":"Incident — «rollback»","request_id":"req-1","resource_id":"prod-db","seq":42,' +
  '"severity":"high","source_ip":"203.0.113.7","type":"grant.revoked","user_agent":null}';
const vectorHash = '9b341c5d7078c020fb2d903b8fdf97ce8433185c707d7d5e828cb389c36cceeb';

describe('event hash', () => {
  it('matches an independently computed vector', () => {
    assert.equal(canonicalEventBody(vector), vectorBody);
    assert.equal(eventHash(vector), vectorHash);
  });

  it('covers exactly the hashed fields, in canonical order', () => {
    assert.deepEqual([...hashedFieldNames], [...hashedFieldNames].sort());
    assert.deepEqual(Object.keys(JSON.parse(canonicalEventBody(vector))), [...hashedFieldNames]);
    assert.equal(canonicalEventBody(vector), canonicalJson(vector));
    const extra = { ...vector, hash: 'x', kind: 'event' } as HashedEventFields;
    assert.equal(canonicalEventBody(extra), vectorBody);
  });

  it('changes with every hashed field', () => {
    const changes: Partial<Record<keyof HashedEventFields, unknown>> = {
      seq: 43,
      id: 'other',
      at: 1767225600001,
      type: 'grant.expired',
      actor: 'okta:00u2',
      severity: 'info',
      source_ip: null,
      user_agent: 'curl',
      request_id: null,
      grant_id: null,
      resource_id: 'other-db',
      reason: 'Incident — «rollback».',
      policy_ids: ['p1', 'p2'],
      data: { ...vector.data, extra: 1 },
      prev_hash: 'cd'.repeat(32),
    };
    for (const name of hashedFieldNames) {
      assert.notEqual(eventHash({ ...vector, [name]: changes[name] }), vectorHash, name);
    }
  });

  it('refuses a missing field instead of hashing around it', () => {
    const { reason: _, ...withoutReason } = vector;
    assert.throws(() => eventHash(withoutReason as HashedEventFields), /undefined is not JSON/);
  });
});

describe('event line', () => {
  const line = eventLine(recordOf(vector, vectorHash)).trimEnd();

  it('is the hashed body with hash and kind appended', () => {
    assert.equal(line, `${vectorBody.slice(0, -1)},"hash":"${vectorHash}","kind":"event"}`);
    assert.deepEqual(JSON.parse(line), { ...JSON.parse(vectorBody), hash: vectorHash, kind: 'event' });
  });

  it('is hashed from its own bytes, CRLF or not', () => {
    assert.equal(hashOfEventLine(line, vector.prev_hash), vectorHash);
    assert.equal(hashOfEventLine(`${line}\r`, vector.prev_hash), vectorHash);
    assert.equal(
      hashOfEventLine(line.replace('"kind":"event"', '"kind":"other"'), vector.prev_hash),
      undefined,
    );
  });

  it('yields type, prev_hash, seq and hash from its tail', () => {
    assert.deepEqual(readEventLineTail(line), {
      typeJson: JSON.stringify(vector.type),
      prevHash: vector.prev_hash,
      seq: 42,
      hash: vectorHash,
      recomputedHash: vectorHash,
    });
    // A member nested in a later value is not mistaken for the top-level one.
    const nested = line.replace('"user_agent":null', `"user_agent":{"a":1,"prev_hash":"${'0'.repeat(64)}"}`);
    assert.equal(readEventLineTail(nested), undefined);
    assert.equal(readEventLineTail(JSON.stringify(JSON.parse(line), null, 1)), undefined);
  });
});

describe('event body pieces', () => {
  const assembled = (fields: HashedEventFields): string => {
    const dataJson = canonicalJson(fields.data);
    const pieces = eventBodyPieces({
      ...fields,
      dataJson,
      policyIdsJson: canonicalJson(fields.policy_ids),
    });
    return `${pieces.beforeData}${dataJson}${pieces.afterData}${fields.prev_hash}${pieces.middle}${fields.seq}${pieces.tail}`;
  };

  it('reassemble the vector body around data, prev_hash and seq', () => {
    assert.equal(assembled(vector), vectorBody);
  });

  it('reassemble the canonical body of any event', () => {
    const text = fc.string({ unit: 'grapheme-composite', maxLength: 20 });
    const optional = fc.option(text, { nil: null });
    const json = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(canonicalJson(value)));
    const fields: fc.Arbitrary<HashedEventFields> = fc.record({
      seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      id: fc.uuid(),
      at: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      type: text,
      actor: text,
      severity: fc.constantFrom('info', 'warning', 'high'),
      source_ip: optional,
      user_agent: optional,
      request_id: optional,
      grant_id: optional,
      resource_id: optional,
      reason: optional,
      policy_ids: fc.array(text, { maxLength: 3 }),
      data: fc.dictionary(text, json, { maxKeys: 4 }).map((value) => JSON.parse(canonicalJson(value))),
      prev_hash: fc.stringMatching(/^[0-9a-f]{64}$/),
    });
    fc.assert(
      fc.property(fields, (event) => {
        assert.equal(assembled(event), canonicalEventBody(event));
        const dataJson = canonicalJson(event.data);
        const pieces = eventBodyPieces({
          ...event,
          dataJson,
          policyIdsJson: canonicalJson(event.policy_ids),
        });
        assert.equal(eventHashOfPieces(pieces, dataJson, event.seq, event.prev_hash), eventHash(event));
      }),
      { numRuns: 500 },
    );
  });
});
