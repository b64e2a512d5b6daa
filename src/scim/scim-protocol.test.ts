import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../core/errors.js';
import {
  applyUserPatch,
  groupPatchChanges,
  readFilter,
  readGroupBody,
  readPaging,
  readPatchBody,
  readUserBody,
  scimError,
  scimUrn,
} from './scim-protocol.js';

const patch = (...operations: unknown[]) =>
  readPatchBody({ schemas: [scimUrn.patchOp], Operations: operations });
const user = { userName: 'ann@example.com', externalId: '00u1', active: true };

function refused(run: () => unknown, code: string): void {
  assert.throws(run, (error: unknown) => error instanceof PortcullisError && error.code === code);
}

describe('SCIM user bodies', () => {
  it('keeps userName, externalId and active; drops the rest of the core and enterprise schemas', () => {
    assert.deepEqual(
      readUserBody({
        schemas: [scimUrn.user, scimUrn.enterpriseUser],
        UserName: 'ann@example.com',
        externalId: '00u1',
        name: { givenName: 'Ann' },
        emails: [{ value: 'ann@example.com' }],
        password: 'secret',
        [scimUrn.enterpriseUser]: { manager: { value: 'x' } },
      }),
      user,
    );
    assert.equal(readUserBody({ schemas: [scimUrn.user], userName: 'a', active: 'False' }).active, false);
  });

  it('refuses unknown attributes, unknown schemas, a missing userName and hostile text', () => {
    refused(
      () => readUserBody({ schemas: [scimUrn.user], userName: 'a', shoeSize: 42 }),
      'scim_invalid_syntax',
    );
    refused(
      () => readUserBody({ schemas: [scimUrn.user, 'urn:x:custom'], userName: 'a' }),
      'scim_invalid_syntax',
    );
    refused(() => readUserBody({ userName: 'a' }), 'scim_invalid_syntax');
    refused(() => readUserBody({ schemas: [scimUrn.user] }), 'scim_invalid_value');
    refused(() => readUserBody({ schemas: [scimUrn.user], userName: 'a\u202eb' }), 'scim_invalid_value');
    refused(() => readUserBody([]), 'scim_invalid_syntax');
  });
});

describe('SCIM user PATCH', () => {
  it("applies Okta's and Entra ID's shapes", () => {
    assert.equal(applyUserPatch(user, patch({ op: 'replace', value: { active: false } })).active, false);
    assert.equal(
      applyUserPatch(user, patch({ op: 'Replace', path: 'active', value: 'False' })).active,
      false,
    );
    assert.equal(
      applyUserPatch(user, patch({ op: 'Add', path: `${scimUrn.user}:userName`, value: 'b@example.com' }))
        .userName,
      'b@example.com',
    );
    assert.deepEqual(
      applyUserPatch(
        user,
        patch(
          { op: 'Add', path: 'emails[type eq "work"].value', value: 'x@example.com' },
          { op: 'Replace', path: 'name.givenName', value: 'Ann' },
          { op: 'Add', path: `${scimUrn.enterpriseUser}:manager`, value: 'm' },
        ),
      ),
      user,
    );
    assert.equal(applyUserPatch(user, patch({ op: 'remove', path: 'externalId' })).externalId, null);
  });

  it('refuses bad operations, and applies none when one is bad', () => {
    refused(() => patch({ op: 'move', path: 'active', value: true }), 'scim_invalid_path');
    refused(() => patch({ op: 'remove' }), 'scim_no_target');
    refused(() => patch({ op: 'add', path: 'active' }), 'scim_invalid_value');
    refused(() => readPatchBody({ schemas: [scimUrn.user], Operations: [] }), 'scim_invalid_syntax');
    refused(() => readPatchBody({ schemas: [scimUrn.patchOp], Operations: [] }), 'scim_invalid_syntax');
    refused(
      () => applyUserPatch(user, patch({ op: 'replace', path: 'shoeSize', value: 1 })),
      'scim_invalid_path',
    );
    refused(
      () => applyUserPatch(user, patch({ op: 'replace', path: 'active.x', value: 1 })),
      'scim_invalid_path',
    );
    refused(() => applyUserPatch(user, patch({ op: 'remove', path: 'userName' })), 'scim_invalid_value');
    refused(
      () => applyUserPatch(user, patch({ op: 'replace', value: { colour: 'red' } })),
      'scim_invalid_syntax',
    );
    refused(
      () =>
        applyUserPatch(
          user,
          patch(
            { op: 'replace', path: 'active', value: false },
            { op: 'replace', path: 'active', value: 'maybe' },
          ),
        ),
      'scim_invalid_value',
    );
  });
});

describe('SCIM group bodies and PATCH', () => {
  it('reads members and turns PATCH operations into ordered changes', () => {
    assert.deepEqual(
      readGroupBody({ schemas: [scimUrn.group], displayName: 'ops', members: [{ value: 'u1' }] }),
      {
        group: { displayName: 'ops', externalId: null },
        members: ['u1'],
      },
    );
    assert.deepEqual(
      groupPatchChanges(
        patch(
          { op: 'remove', path: 'members[value eq "u1" or value eq "u2"]' },
          { op: 'Add', path: 'members', value: [{ value: 'u3' }] },
          { op: 'Remove', path: 'members', value: [{ value: 'u4' }] },
          { op: 'replace', value: { id: 'g1', displayName: 'ops-team' } },
          { op: 'replace', path: 'members', value: [{ value: 'u5' }] },
          { op: 'remove', path: 'members' },
        ),
        'g1',
      ),
      [
        { kind: 'remove_members', ids: ['u1', 'u2'] },
        { kind: 'add_members', ids: ['u3'] },
        { kind: 'remove_members', ids: ['u4'] },
        { kind: 'set', displayName: 'ops-team' },
        { kind: 'remove_all_members' },
        { kind: 'add_members', ids: ['u5'] },
        { kind: 'remove_all_members' },
      ],
    );
  });

  it('refuses a changed id, unknown paths and malformed members', () => {
    refused(
      () => groupPatchChanges(patch({ op: 'replace', value: { id: 'other' } }), 'g1'),
      'scim_mutability',
    );
    refused(
      () => groupPatchChanges(patch({ op: 'replace', path: 'owner', value: 'x' }), 'g1'),
      'scim_invalid_path',
    );
    refused(
      () => groupPatchChanges(patch({ op: 'remove', path: 'members[display eq "x"]' }), 'g1'),
      'scim_invalid_path',
    );
    refused(
      () => groupPatchChanges(patch({ op: 'add', path: 'members', value: [{}] }), 'g1'),
      'scim_invalid_value',
    );
    refused(
      () => readGroupBody({ schemas: [scimUrn.group], displayName: 'x', owner: 'y' }),
      'scim_invalid_syntax',
    );
  });
});

describe('SCIM filters and paging', () => {
  it('reads eq filters joined with and; contradictions match nothing', () => {
    assert.deepEqual(readFilter('userName eq "Ann@Example.com"', 'User'), { userName: 'Ann@Example.com' });
    assert.deepEqual(readFilter('externalId eq "00u1" and USERNAME eq "a"', 'User'), {
      externalId: '00u1',
      userName: 'a',
    });
    assert.deepEqual(readFilter(`${scimUrn.user}:userName eq "a"`, 'User'), { userName: 'a' });
    assert.deepEqual(readFilter('displayName eq "ops"', 'Group'), { displayName: 'ops' });
    assert.equal(readFilter('userName eq "a" and userName eq "b"', 'User'), null);
    assert.deepEqual(readFilter('userName eq "a" and userName eq "A"', 'User'), { userName: 'A' });
  });

  it('refuses malformed and unsupported filters', () => {
    for (const filter of ['userName eq', 'userName eq "a" and', '(', `userName eq "${'x'.repeat(1001)}"`])
      refused(() => readFilter(filter, 'User'), 'scim_invalid_filter');
    for (const filter of [
      'userName co "a"',
      'userName eq "a" or userName eq "b"',
      'displayName eq "x"',
      'active eq true',
      'emails[type eq "work"]',
    ])
      refused(() => readFilter(filter, 'User'), 'scim_invalid_filter');
    refused(() => readFilter('userName eq "a"', 'Group'), 'scim_invalid_filter');
  });

  it('bounds paging', () => {
    assert.deepEqual(readPaging(undefined, undefined, 200), { startIndex: 1, count: 200 });
    assert.deepEqual(readPaging('0', '5000', 200), { startIndex: 1, count: 200 });
    assert.deepEqual(readPaging('3', '-1', 200), { startIndex: 3, count: 0 });
    refused(() => readPaging('x', undefined, 200), 'scim_invalid_value');
  });

  it('renders SCIM errors with the stable code', () => {
    assert.deepEqual(scimError('scim_invalid_filter', 400, 'bad'), {
      schemas: [scimUrn.error],
      status: '400',
      scimType: 'invalidFilter',
      detail: 'bad',
      code: 'scim_invalid_filter',
    });
    assert.equal(scimError('not_found', 404, 'x').scimType, undefined);
  });
});
