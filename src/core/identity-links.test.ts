import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityLinks, identityLinkIssues, parseIdentity } from './identity-links.js';

const idps = new Set(['okta', 'entra', 'corp-saml']);

describe('identity links', () => {
  const links = new IdentityLinks([
    { principal: 'okta:00u1abc', also: ['entra:5f2c-91', 'corp-saml:jdoe'] },
    { principal: 'entra:urn:x:7', also: ['okta:00u2def'] },
  ]);

  it('maps every linked identity to the canonical id, the canonical to itself', () => {
    assert.equal(links.canonicalId('okta', '00u1abc'), 'okta:00u1abc');
    assert.equal(links.canonicalId('entra', '5f2c-91'), 'okta:00u1abc');
    assert.equal(links.canonicalId('corp-saml', 'jdoe'), 'okta:00u1abc');
    assert.equal(links.canonicalId('okta', '00u2def'), 'entra:urn:x:7');
    assert.equal(links.canonicalId('entra', 'urn:x:7'), 'entra:urn:x:7');
  });

  it('leaves unlinked identities apart, matching exactly (no case folding, no other IdP)', () => {
    assert.equal(links.canonicalId('entra', 'jdoe'), 'entra:jdoe');
    assert.equal(links.canonicalId('corp-saml', 'JDOE'), 'corp-saml:JDOE');
    assert.equal(links.canonicalId('okta', '5f2c-91'), 'okta:5f2c-91');
    assert.equal(IdentityLinks.none.canonicalId('entra', '5f2c-91'), 'entra:5f2c-91');
  });

  it('lists the identities of a principal, canonical first', () => {
    assert.deepEqual(links.identitiesOf('okta:00u1abc'), ['okta:00u1abc', 'entra:5f2c-91', 'corp-saml:jdoe']);
    assert.deepEqual(links.identitiesOf('okta:lonely'), ['okta:lonely']);
  });

  it('parses idp:subject at the first colon', () => {
    assert.deepEqual(parseIdentity('entra:urn:x:7'), { idp: 'entra', subject: 'urn:x:7' });
    for (const bad of ['okta', ':sub', 'okta:', '']) assert.equal(parseIdentity(bad), null, bad);
  });

  it('accepts a valid configuration', () => {
    assert.deepEqual(
      identityLinkIssues([{ principal: 'okta:00u1abc', also: ['entra:5f2c', 'corp-saml:jdoe'] }], idps),
      [],
    );
  });

  it('reports malformed ids, unknown IdPs, identities in two links and self-links, with paths', () => {
    const issues = identityLinkIssues(
      [
        { principal: 'okta:a', also: ['entra:b', 'okta:a', 'nobody'] },
        { principal: 'github:c', also: ['entra:b', 'corp-saml:d', 'corp-saml:d'] },
      ],
      idps,
    );
    assert.deepEqual(
      issues.map((i) => [i.path, i.message]),
      [
        ['identity_links[0].also[1]', '"okta:a" is linked to itself (also at identity_links[0].principal)'],
        ['identity_links[0].also[2]', '"nobody" is not an identity "idp:subject"'],
        ['identity_links[1].principal', 'no identity provider "github"'],
        ['identity_links[1].also[0]', '"entra:b" is already linked at identity_links[0].also[0]'],
        [
          'identity_links[1].also[2]',
          '"corp-saml:d" is linked to itself (also at identity_links[1].also[1])',
        ],
      ],
    );
  });
});
