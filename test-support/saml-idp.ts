/**
 * A small but real SAML 2.0 identity provider for tests: RSA keys and self-signed certificates
 * (made by the `openssl` binary), metadata at `/metadata`, SP-initiated sign-in at `/sso`
 * (HTTP-Redirect AuthnRequest in, a login form, then an auto-posting HTTP-POST form with a
 * Response signed by xml-crypto). Nothing is mocked: Portcullis validates what this signs.
 *
 * API:
 * - `startTestSamlIdp({ users?, entityId?, signResponse?, signAssertion? })` →
 *   `{ entityId, metadataUrl, ssoUrl, metadataXml(), rotateKey({ keepOld? }), buildResponse(o),
 *      otherKey(), setDown(bool), stop() }`
 * - `buildResponse(options)`: a base64 SAMLResponse signed with the current key (or
 *   `options.key`), every field overridable, for tests that need a particular (bad) response.
 * - `samlSignIn(authorizationUrl, { username, password })` → `{ acsUrl, SAMLResponse, RelayState }`:
 *   what the browser would POST to the ACS, read from the IdP's real pages.
 * - `saml(xml)`/`unsaml(b64)`: base64 helpers for attack variants derived from signed responses.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

export interface SamlTestUser {
  readonly username: string;
  readonly password: string;
  /** NameID (persistent). */
  readonly nameId: string;
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
}

export const samlTestUsers: readonly SamlTestUser[] = [
  {
    username: 'erin',
    password: 'erin-saml-password',
    nameId: 'saml-erin-0001',
    attributes: { email: 'erin@corp.example', displayName: 'Erin Example', groups: ['Engineering', 'VPN'] },
  },
  {
    username: 'frank',
    password: 'frank-saml-password',
    nameId: 'saml-frank-0002',
    attributes: {
      email: 'frank@contractor.example',
      displayName: 'Frank Contractor',
      groups: ['Engineering'],
    },
  },
];

export interface SigningKey {
  readonly privateKey: string;
  readonly certificate: string;
  /** Base64 DER, as in metadata. */
  readonly certificateBody: string;
}

/** A fresh RSA-2048 key (node:crypto) with a self-signed certificate (the openssl binary). */
export function newSigningKey(commonName = 'test-saml-idp'): SigningKey {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const dir = mkdtempSync(join(tmpdir(), 'saml-key-'));
  let certificate: string;
  try {
    writeFileSync(join(dir, 'key.pem'), privateKey, { mode: 0o600 });
    certificate = execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        join(dir, 'key.pem'),
        '-sha256',
        '-days',
        '2',
        '-subj',
        `/CN=${commonName}`,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    ).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const certificateBody = certificate.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return { privateKey, certificate, certificateBody };
}

export interface ResponseOptions {
  readonly acsUrl: string;
  readonly audience: string;
  readonly inResponseTo?: string | null;
  readonly user?: SamlTestUser;
  readonly issuer?: string;
  readonly recipient?: string;
  readonly destination?: string | null;
  readonly assertionId?: string;
  /** Assertion validity window relative to now (ms). */
  readonly notBeforeOffsetMs?: number;
  readonly notOnOrAfterOffsetMs?: number;
  readonly signAssertion?: boolean;
  readonly signResponse?: boolean;
  readonly key?: SigningKey;
  readonly statusCode?: string;
}

const escapeXml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
const iso = (ms: number) => new Date(ms).toISOString();
export const saml = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');
export const unsaml = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

function sign(xml: string, key: SigningKey, element: 'Assertion' | 'Response'): string {
  const signer = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  const path = element === 'Assertion' ? "//*[local-name(.)='Assertion']" : "/*[local-name(.)='Response']";
  signer.addReference({
    xpath: path,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
  });
  signer.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `${path}/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return signer.getSignedXml();
}

export function buildSignedResponse(entityId: string, key: SigningKey, o: ResponseOptions): string {
  const user = o.user ?? (samlTestUsers[0] as SamlTestUser);
  const now = Date.now();
  const issuer = escapeXml(o.issuer ?? entityId);
  const notBefore = iso(now + (o.notBeforeOffsetMs ?? -5_000));
  const notOnOrAfter = iso(now + (o.notOnOrAfterOffsetMs ?? 300_000));
  const inResponseTo = o.inResponseTo === null ? '' : ` InResponseTo="${escapeXml(o.inResponseTo ?? '')}"`;
  const destination = o.destination === null ? '' : ` Destination="${escapeXml(o.destination ?? o.acsUrl)}"`;
  const attributes = Object.entries(user.attributes)
    .map(
      ([name, value]) =>
        `<saml:Attribute Name="${escapeXml(name)}">${[value]
          .flat()
          .map((v) => `<saml:AttributeValue>${escapeXml(v)}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`,
    )
    .join('');
  const assertion =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${escapeXml(o.assertionId ?? `_a${randomBytes(16).toString('hex')}`)}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${issuer}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${escapeXml(user.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${inResponseTo} NotOnOrAfter="${notOnOrAfter}" Recipient="${escapeXml(o.recipient ?? o.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${escapeXml(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s${randomBytes(8).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` +
    `</saml:Assertion>`;
  const signingKey = o.key ?? key;
  const signedAssertion = (o.signAssertion ?? true) ? sign(assertion, signingKey, 'Assertion') : assertion;
  const status = o.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success';
  const response =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}"${destination}${inResponseTo}>` +
    `<saml:Issuer>${issuer}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${escapeXml(status)}"/></samlp:Status>` +
    (status.endsWith(':Success') ? signedAssertion : '') +
    `</samlp:Response>`;
  return saml(o.signResponse ? sign(response, signingKey, 'Response') : response);
}

export interface TestSamlIdp {
  readonly entityId: string;
  readonly url: string;
  readonly metadataUrl: string;
  readonly ssoUrl: string;
  readonly users: readonly SamlTestUser[];
  readonly key: SigningKey;
  metadataXml(): string;
  /** New signing key; the metadata then lists it (and the old one too with keepOld). */
  rotateKey(options?: { keepOld?: boolean }): SigningKey;
  /** A signed Response with the current key; see {@link ResponseOptions}. */
  buildResponse(options: ResponseOptions): string;
  /** Metadata and SSO answer 503 while down. */
  setDown(down: boolean): void;
  /** How many times /metadata was fetched. */
  readonly metadataFetches: number;
  stop(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

export async function startTestSamlIdp(
  options: {
    users?: readonly SamlTestUser[];
    entityId?: string;
    signResponse?: boolean;
    signAssertion?: boolean;
  } = {},
): Promise<TestSamlIdp> {
  const users = options.users ?? samlTestUsers;
  let keys: SigningKey[] = [newSigningKey()];
  let down = false;
  let metadataFetches = 0;
  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', base);
      if (down) {
        response.writeHead(503).end('down');
        return;
      }
      if (url.pathname === '/metadata') {
        metadataFetches++;
        response.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(idp.metadataXml());
        return;
      }
      if (url.pathname === '/sso' && request.method === 'GET') {
        const samlRequest = url.searchParams.get('SAMLRequest') ?? '';
        const relayState = url.searchParams.get('RelayState') ?? '';
        response
          .writeHead(200, { 'content-type': 'text/html' })
          .end(
            `<form method="post" action="/sso"><input type="hidden" name="SAMLRequest" value="${escapeXml(samlRequest)}">` +
              `<input type="hidden" name="RelayState" value="${escapeXml(relayState)}">` +
              `<input name="username"><input name="password" type="password"><button>Sign in</button></form>`,
          );
        return;
      }
      if (url.pathname === '/sso' && request.method === 'POST') {
        const form = new URLSearchParams(await readBody(request));
        const user = users.find((u) => u.username === form.get('username'));
        if (!user || user.password !== form.get('password')) {
          response.writeHead(401, { 'content-type': 'text/html' }).end('<p>Wrong username or password</p>');
          return;
        }
        const requestXml = inflateRawSync(Buffer.from(form.get('SAMLRequest') ?? '', 'base64')).toString(
          'utf8',
        );
        const authn = new DOMParser().parseFromString(requestXml, 'text/xml').documentElement;
        const acsUrl = authn?.getAttribute('AssertionConsumerServiceURL') ?? '';
        const spEntityId = authn?.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Issuer')[0]
          ?.textContent;
        const samlResponse = idp.buildResponse({
          acsUrl,
          audience: spEntityId ?? '',
          inResponseTo: authn?.getAttribute('ID') ?? '',
          user,
          signResponse: options.signResponse ?? false,
          signAssertion: options.signAssertion ?? true,
        });
        response
          .writeHead(200, { 'content-type': 'text/html' })
          .end(
            `<body onload="document.forms[0].submit()"><form method="post" action="${escapeXml(acsUrl)}">` +
              `<input type="hidden" name="SAMLResponse" value="${samlResponse}">` +
              `<input type="hidden" name="RelayState" value="${escapeXml(form.get('RelayState') ?? '')}"></form></body>`,
          );
        return;
      }
      response.writeHead(404).end();
    })().catch(() => response.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const entityId = options.entityId ?? `${base}/entity`;
  const idp: TestSamlIdp = {
    entityId,
    url: base,
    metadataUrl: `${base}/metadata`,
    ssoUrl: `${base}/sso`,
    users,
    get key() {
      return keys[0] as SigningKey;
    },
    get metadataFetches() {
      return metadataFetches;
    },
    metadataXml() {
      const keyDescriptors = keys
        .map(
          (k) =>
            `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${k.certificateBody}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
        )
        .join('');
      return (
        `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${escapeXml(entityId)}">` +
        `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">${keyDescriptors}` +
        `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${base}/sso"/>` +
        `</md:IDPSSODescriptor></md:EntityDescriptor>`
      );
    },
    rotateKey({ keepOld = false } = {}) {
      const key = newSigningKey();
      keys = keepOld ? [key, ...keys] : [key];
      return key;
    },
    buildResponse(o) {
      return buildSignedResponse(entityId, keys[0] as SigningKey, o);
    },
    setDown(value) {
      down = value;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return idp;
}

function hiddenInputs(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[match[1] as string] = (match[2] as string).replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  }
  return fields;
}

/**
 * Signs a user in at the test IdP from Portcullis' AuthnRequest redirect; returns what the
 * browser would POST to the ACS (not posted).
 */
export async function samlSignIn(
  authorizationUrl: string,
  credentials: { readonly username: string; readonly password: string },
): Promise<{ acsUrl: string; SAMLResponse: string; RelayState: string }> {
  const page = await fetch(authorizationUrl);
  if (!page.ok) throw new Error(`the IdP answered ${page.status}`);
  const hidden = hiddenInputs(await page.text());
  const posted = await fetch(new URL('/sso', authorizationUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...hidden, ...credentials }).toString(),
  });
  const html = await posted.text();
  if (!posted.ok) throw new Error(`the IdP answered ${posted.status}: ${html}`);
  const acsUrl = /<form method="post" action="([^"]+)">/.exec(html)?.[1]?.replace(/&amp;/g, '&');
  const fields = hiddenInputs(html);
  if (!acsUrl || !fields.SAMLResponse) throw new Error('the IdP did not answer with an auto-post form');
  return { acsUrl, SAMLResponse: fields.SAMLResponse, RelayState: fields.RelayState ?? '' };
}
