import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIdpMetadata } from './saml-metadata.js';

const md = 'urn:oasis:names:tc:SAML:2.0:metadata';
const redirect = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const post = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const key = (use: string | null, cert: string) =>
  `<md:KeyDescriptor${use ? ` use="${use}"` : ''}><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>\n  ${cert}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
const entity = (id: string, inner: string) =>
  `<md:EntityDescriptor xmlns:md="${md}" entityID="${id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${inner}</md:IDPSSODescriptor></md:EntityDescriptor>`;
const sso = (binding: string, location: string) =>
  `<md:SingleSignOnService Binding="${binding}" Location="${location}"/>`;

describe('parseIdpMetadata', () => {
  it('reads the entity id, the HTTP-Redirect SSO URL and the signing certificates', () => {
    const parsed = parseIdpMetadata(
      entity(
        'https://idp.example/entity',
        key('signing', 'QUJD') +
          key(null, 'REVG') +
          key('encryption', 'R0hJ') +
          sso(post, 'https://idp.example/post') +
          sso(redirect, 'https://idp.example/sso'),
      ),
    );
    assert.deepEqual(parsed, {
      entityId: 'https://idp.example/entity',
      ssoUrl: 'https://idp.example/sso',
      certificates: ['QUJD', 'REVG'],
    });
  });

  it('picks the one identity provider out of an EntitiesDescriptor', () => {
    const xml = `<md:EntitiesDescriptor xmlns:md="${md}">${entity('https://a.example', key('signing', 'QUJD') + sso(redirect, 'https://a.example/sso'))}<md:EntityDescriptor entityID="https://sp.example"><md:SPSSODescriptor/></md:EntityDescriptor></md:EntitiesDescriptor>`;
    assert.equal(parseIdpMetadata(xml).entityId, 'https://a.example');
  });

  const broken: [string, string, RegExp][] = [
    ['not XML', 'hello', /not SAML 2\.0 metadata/],
    ['HTML', '<html><body/></html>', /not SAML 2\.0 metadata/],
    [
      'two IdPs',
      `<md:EntitiesDescriptor xmlns:md="${md}">${entity('a', '')}${entity('b', '')}</md:EntitiesDescriptor>`,
      /exactly one identity provider/,
    ],
    ['no entityID', entity('', key('signing', 'QUJD') + sso(redirect, 'https://x/sso')), /no entityID/],
    ['only HTTP-POST SSO', entity('a', key('signing', 'QUJD') + sso(post, 'https://x/sso')), /HTTP-Redirect/],
    [
      'a javascript: SSO URL',
      entity('a', key('signing', 'QUJD') + sso(redirect, 'javascript:alert(1)')),
      /HTTP-Redirect/,
    ],
    [
      'only an encryption key',
      entity('a', key('encryption', 'QUJD') + sso(redirect, 'https://x/sso')),
      /no signing certificate/,
    ],
  ];
  for (const [name, xml, expected] of broken) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseIdpMetadata(xml), expected);
    });
  }
});
