import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  breakGlassCeilingMinutes,
  type EmergencyAccount,
  scopeWithin,
  validateEmergencyAccount,
  validateEmergencyAccounts,
} from './emergency-account.js';

const good: EmergencyAccount = {
  id: 'prod-db-breakglass',
  scope: { resourceId: 'orders-db', roles: ['read', 'write'] },
  maxDurationMinutes: 60,
  custodians: ['ana', 'ben', 'cho'],
  quorum: 2,
  activationWindowMinutes: 10,
  alertChannels: ['security-webhook'],
};

describe('emergency account validation', () => {
  const cases: ReadonlyArray<{ name: string; account: Partial<EmergencyAccount>; paths: string[] }> = [
    { name: 'a well-formed account has no problem', account: {}, paths: [] },
    { name: 'a quorum of 1 lets one person open it', account: { quorum: 1 }, paths: ['a.quorum'] },
    {
      name: 'a quorum above the number of custodians can never be met',
      account: { quorum: 4 },
      paths: ['a.quorum'],
    },
    {
      name: 'duplicate custodians do not count twice',
      account: { custodians: ['ana', 'ana'] },
      paths: ['a.custodians', 'a.quorum'],
    },
    {
      name: 'a duration above the ceiling',
      account: { maxDurationMinutes: breakGlassCeilingMinutes + 1 },
      paths: ['a.max_duration_minutes'],
    },
    { name: 'a duration of zero', account: { maxDurationMinutes: 0 }, paths: ['a.max_duration_minutes'] },
    {
      name: 'an empty scope',
      account: { scope: { resourceId: '', roles: [] } },
      paths: ['a.scope.resource', 'a.scope.roles'],
    },
    {
      name: 'a window of a day is not an emergency',
      account: { activationWindowMinutes: 1440 },
      paths: ['a.activation_window_minutes'],
    },
    { name: 'no alert channel', account: { alertChannels: [] }, paths: ['a.alert_channels'] },
  ];
  for (const c of cases) {
    it(c.name, () =>
      assert.deepEqual(
        validateEmergencyAccount({ ...good, ...c.account }, 'a').map((i) => i.path),
        c.paths,
      ),
    );
  }

  it('reports every problem at once, and duplicate ids', () => {
    const issues = validateEmergencyAccounts([good, { ...good, quorum: 1, maxDurationMinutes: 9999 }]);
    assert.deepEqual(
      issues.map((i) => i.path),
      [
        'break_glass.accounts[1].max_duration_minutes',
        'break_glass.accounts[1].quorum',
        'break_glass.accounts',
      ],
    );
    assert.match(issues[2]?.message ?? '', /duplicate emergency account id/);
  });
});

describe('scope containment', () => {
  it('accepts a subset of roles on the same resource', () =>
    assert.equal(scopeWithin({ resourceId: 'orders-db', roles: ['read'] }, good.scope), true));
  it('refuses another resource', () =>
    assert.equal(scopeWithin({ resourceId: 'x', roles: ['read'] }, good.scope), false));
  it('refuses an extra role', () =>
    assert.equal(scopeWithin({ resourceId: 'orders-db', roles: ['read', 'admin'] }, good.scope), false));
});
