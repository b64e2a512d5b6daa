import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPolicyContext, isKnownTimeZone, policyClock, toCedarContext } from './policy-context.js';

describe('policyClock', () => {
  const cases = [
    {
      desc: 'UTC reads the instant as written',
      at: '2026-11-24T09:30:00Z',
      zone: 'UTC',
      hour: 9,
      weekday: 'tue',
    },
    {
      desc: 'Berlin is UTC+1 in winter',
      at: '2026-11-24T09:30:00Z',
      zone: 'Europe/Berlin',
      hour: 10,
      weekday: 'tue',
    },
    {
      desc: 'Berlin is UTC+2 in summer',
      at: '2026-07-07T09:30:00Z',
      zone: 'Europe/Berlin',
      hour: 11,
      weekday: 'tue',
    },
    {
      desc: 'New York is still on the previous day',
      at: '2026-11-24T03:00:00Z',
      zone: 'America/New_York',
      hour: 22,
      weekday: 'mon',
    },
    {
      desc: 'Auckland is already on the next day',
      at: '2026-11-24T12:00:00Z',
      zone: 'Pacific/Auckland',
      hour: 1,
      weekday: 'wed',
    },
    {
      desc: 'midnight is hour 0, not 24',
      at: '2026-11-23T23:00:00Z',
      zone: 'Europe/Berlin',
      hour: 0,
      weekday: 'tue',
    },
    {
      desc: 'the spring-forward gap skips 02:00 in Berlin',
      at: '2026-03-29T01:30:00Z',
      zone: 'Europe/Berlin',
      hour: 3,
      weekday: 'sun',
    },
    {
      desc: 'Kolkata has a half-hour offset',
      at: '2026-11-24T18:29:00Z',
      zone: 'Asia/Kolkata',
      hour: 23,
      weekday: 'tue',
    },
  ] as const;
  for (const c of cases) {
    it(c.desc, () => {
      assert.deepEqual(policyClock(Date.parse(c.at), c.zone), { hour: c.hour, weekday: c.weekday });
    });
  }

  it('an unknown zone is recognised as such', () => {
    assert.equal(isKnownTimeZone('Europe/Berlin'), true);
    assert.equal(isKnownTimeZone('Nowhere/Special'), false);
    assert.throws(() => policyClock(0, 'Nowhere/Special'), RangeError);
  });
});

describe('buildPolicyContext', () => {
  const facts = {
    now: Date.parse('2026-11-24T09:30:00Z'),
    durationSeconds: 3600,
    reason: 'migration',
    ticket: null,
    sensitivity: 'high',
    source: 'cli',
    requesterId: 'demo:alice',
  };

  it('reads the time in the configured zone and rounds the duration up to whole minutes', () => {
    assert.deepEqual(buildPolicyContext({ ...facts, durationSeconds: 61 }, 'Europe/Berlin'), {
      durationMinutes: 2,
      hour: 10,
      weekday: 'tue',
      reason: 'migration',
      ticket: '',
      sensitivity: 'high',
      source: 'cli',
      requesterId: 'demo:alice',
    });
  });

  it('shapes the Cedar context record, with has_ticket derived from the ticket', () => {
    const withTicket = toCedarContext(buildPolicyContext({ ...facts, ticket: 'OPS-1' }, 'UTC'));
    assert.deepEqual(withTicket, {
      duration_minutes: 60,
      hour: 9,
      weekday: 'tue',
      reason: 'migration',
      ticket: 'OPS-1',
      has_ticket: true,
      sensitivity: 'high',
      source: 'cli',
      requester: 'demo:alice',
    });
    assert.equal(toCedarContext(buildPolicyContext(facts, 'UTC')).has_ticket, false);
  });
});
