/**
 * The break-glass console (`/console/break-glass`): where custodians start, confirm, follow and end
 * an emergency activation, and enrol security keys, in a browser, without SSO — the identity
 * provider may be the thing that is down. It is the one console page that runs a script: a WebAuthn
 * ceremony (`navigator.credentials`) cannot happen without one, and a security key is used nowhere
 * else but in a browser. The script only calls the custodian API (`/api/v1/break-glass`, which
 * authenticates every call by the custodian's own credentials in its body, or by the activation
 * handle); it sends no cookie, so no ambient authority can be ridden. Decisions: docs/console.md.
 */
import { html } from './html.js';

/** Its own script and the custodian API, nothing else: no inline script, no framing, no forms posted. */
export const breakGlassContentSecurityPolicy =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
  "form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

function proofFields(prefix: string) {
  return html`<label>Custodian id <input name="custodian" required autocomplete="username" pattern="[a-z0-9][a-z0-9_\\-]{0,62}"></label>
<label>Passphrase <input name="passphrase" type="password" required autocomplete="off"></label>
<fieldset>
<legend>Second factor</legend>
<label><input type="radio" name="factor" value="totp" checked> Code from the authenticator app</label>
<label><input type="radio" name="factor" value="security_key"> Security key</label>
<label>Code <input name="totp" inputmode="numeric" autocomplete="one-time-code" id="${prefix}-totp" maxlength="16"></label>
</fieldset>`;
}

/** The page: static, so it is built once; everything that changes is drawn by the script. */
export const breakGlassPage = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Break-glass · Portcullis</title>
<link rel="icon" href="/console/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/style.css">
<script type="module" src="/console/break-glass.js"></script>
</head>
<body>
<header><a class="brand" href="/console/break-glass">Portcullis</a><nav><span>Break-glass</span></nav></header>
<main>
<h1>Emergency access</h1>
<p>For custodians of an emergency account, when normal sign-in does not work. Every step here alerts
the security team and is recorded; the access is limited to the account's scope and ends on its own.</p>
<noscript><p class="notice error">This page needs JavaScript for the security-key ceremonies. Use
<code>portcullis break-glass activate</code> from the CLI instead.</p></noscript>

<section id="activation" hidden aria-live="polite">
<h2>Your activation</h2>
<dl>
<dt>Activation id</dt><dd><code id="activation-id"></code></dd>
<dt>State</dt><dd><span class="state" id="activation-state"></span></dd>
<dt>Account</dt><dd id="activation-account"></dd>
<dt>Scope</dt><dd id="activation-scope"></dd>
<dt>Confirmed by</dt><dd id="activation-confirmers"></dd>
<dt>Confirm before</dt><dd id="activation-window"></dd>
<dt>Access ends</dt><dd id="activation-expires"></dd>
</dl>
<p id="activation-next" class="muted"></p>
<div class="actions">
<button type="button" id="show-credentials" hidden>Show credentials</button>
<button type="button" class="danger" id="end-access" hidden>End access now</button>
<button type="button" class="secondary" id="cancel-activation" hidden>Cancel activation</button>
<button type="button" class="secondary" id="forget-activation">Forget on this page</button>
</div>
<p id="activation-result" hidden></p>
<div id="credentials" hidden><h3>Credentials</h3><p class="muted">Shown to you only; viewing them is recorded.</p><pre id="credentials-text"></pre></div>
</section>

<section>
<h2>Start an activation</h2>
<form class="stack" id="initiate" novalidate>
<label>Emergency account <input name="account" required pattern="[a-z0-9][a-z0-9_\\-]{0,62}"></label>
${proofFields('initiate')}
<label>Incident <input name="incident" required maxlength="200" placeholder="INC-2026-1123"></label>
<label>Reason <textarea name="reason" required maxlength="2000" rows="3"></textarea></label>
<label>Minutes of access <input name="duration_minutes" type="number" min="1" max="240" value="30" required></label>
<label>Roles (optional, comma-separated; default: all of the account's) <input name="roles"></label>
<label>Key shares (sealed accounts only; one per line) <textarea name="shares" rows="3" autocomplete="off" spellcheck="false"></textarea></label>
<label><input type="checkbox" name="drill"> This is a drill</label>
<button type="submit">Start activation</button>
<p id="initiate-result" hidden></p>
</form>
</section>

<section>
<h2>Confirm another custodian's activation</h2>
<form class="stack" id="confirm" novalidate>
<label>Activation id <input name="activation" required></label>
<label>Emergency account <input name="account" required pattern="[a-z0-9][a-z0-9_\\-]{0,62}"></label>
${proofFields('confirm')}
<button type="submit">Confirm activation</button>
<p id="confirm-result" hidden></p>
</form>
</section>

<section>
<h2>Enrol a security key</h2>
<p class="muted">With your passphrase and a code from your authenticator app. Every enrolment alerts the security team.</p>
<form class="stack" id="enrol" novalidate>
<label>Emergency account <input name="account" required pattern="[a-z0-9][a-z0-9_\\-]{0,62}"></label>
<label>Custodian id <input name="custodian" required autocomplete="username"></label>
<label>Passphrase <input name="passphrase" type="password" required autocomplete="off"></label>
<label>Code <input name="totp" inputmode="numeric" autocomplete="one-time-code" required maxlength="16"></label>
<button type="submit">Enrol a security key</button>
<p id="enrol-result" hidden></p>
</form>
</section>
</main>
</body>
</html>
`.toString();

/**
 * The page's script (an ES module, served as `/console/break-glass.js`). Everything it draws goes in
 * through `textContent`, never as markup. The activation handle (the initiator's bearer secret for
 * its status, credentials and end) is kept in this tab's sessionStorage, so a reload keeps it and
 * closing the tab forgets it.
 */
export const breakGlassScript = String.raw`const api = '/api/v1/break-glass';
const handleKey = 'portcullis.break-glass.activation';
const finalStates = new Set(['ended', 'reviewed', 'expired', 'cancelled']);
const $ = (id) => document.getElementById(id);
let polling = null;

class ApiError extends Error {
  constructor(problem, status) {
    super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
    this.code = problem && problem.code;
  }
}

async function call(method, path, body, handle) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (handle) headers['x-break-glass-handle'] = handle;
  const response = await fetch(api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(data, response.status);
  return data;
}

function say(id, text, isError) {
  const element = $(id);
  element.textContent = text;
  element.className = isError ? 'notice error' : 'notice';
  element.setAttribute('role', isError ? 'alert' : 'status');
  element.hidden = false;
}

function requireWebAuthn() {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    throw new Error('This browser cannot use security keys here; use a current browser, or a code from the authenticator app.');
  }
}

async function securityKeyAssertion(account, custodian) {
  requireWebAuthn();
  const options = await call('POST', '/activations/security-key-options', { account, custodian });
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
  });
  return credential.toJSON();
}

async function proofOf(values) {
  const proof = { custodian: values.custodian, passphrase: values.passphrase };
  if (values.factor === 'security_key') {
    proof.security_key = await securityKeyAssertion(values.account, values.custodian);
  } else {
    proof.totp = values.totp;
  }
  return proof;
}

/** Runs a form's action; secrets are cleared from the form whatever happens (a code is single-use). */
function onSubmit(formId, action) {
  const form = $(formId);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    const values = Object.fromEntries(new FormData(form));
    button.disabled = true;
    try {
      say(formId + '-result', await action(values), false);
      form.reset();
    } catch (error) {
      say(formId + '-result', (error.code ? error.code + ': ' : '') + error.message, true);
    } finally {
      for (const name of ['passphrase', 'totp', 'shares']) if (form.elements[name]) form.elements[name].value = '';
      button.disabled = false;
    }
  });
}

const list = (text, separator) => (text || '').split(separator).map((item) => item.trim()).filter(Boolean);

onSubmit('initiate', async (values) => {
  const body = {
    account: values.account,
    ...(await proofOf(values)),
    reason: values.reason,
    incident: values.incident,
    duration_minutes: Number(values.duration_minutes),
    drill: values.drill === 'on',
  };
  const roles = list(values.roles, /[\s,]+/);
  if (roles.length > 0) body.roles = roles;
  const shares = list(values.shares, /\s+/);
  if (shares.length > 0) body.shares = shares;
  const { activation, handle } = await call('POST', '/activations', body);
  sessionStorage.setItem(handleKey, JSON.stringify({ id: activation.id, handle }));
  show(activation);
  return 'Activation ' + activation.id + ' started. A second custodian confirms it with that id.';
});

onSubmit('confirm', async (values) => {
  const id = values.activation.trim();
  const activation = await call('POST', '/activations/' + encodeURIComponent(id) + '/confirm', {
    account: values.account,
    ...(await proofOf(values)),
  });
  return 'Confirmed. The activation is ' + activation.state.replace('_', ' ') + '.';
});

onSubmit('enrol', async (values) => {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) requireWebAuthn();
  const options = await call('POST', '/activations/security-keys/options', {
    account: values.account,
    custodian: values.custodian,
    passphrase: values.passphrase,
    totp: values.totp,
  });
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
  });
  const enrolled = await call('POST', '/activations/security-keys', {
    account: values.account,
    custodian: values.custodian,
    response: credential.toJSON(),
  });
  return 'Security key enrolled (' + enrolled.credential_id + ').';
});

function stored() {
  try {
    return JSON.parse(sessionStorage.getItem(handleKey) || 'null');
  } catch {
    return null;
  }
}

const when = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC') : '—');

function show(activation) {
  $('activation').hidden = false;
  $('activation-id').textContent = activation.id;
  $('activation-state').textContent = activation.state.replace('_', ' ');
  $('activation-state').className = 'state state-' + activation.state;
  $('activation-account').textContent = activation.account + (activation.drill ? ' (drill)' : '');
  $('activation-scope').textContent = activation.resource + ': ' + activation.roles.join(', ');
  $('activation-confirmers').textContent =
    (activation.confirmers.join(', ') || 'nobody yet') + ' (' + (activation.confirmers.length + 1) + ' of ' + activation.quorum + ' custodians)';
  $('activation-window').textContent = when(activation.window_ends_at);
  $('activation-expires').textContent = when(activation.expires_at);
  const waiting = activation.state === 'initiated' || activation.state === 'awaiting_quorum';
  $('activation-next').textContent = waiting
    ? 'Waiting for another custodian to confirm activation ' + activation.id + '.'
    : activation.state === 'active'
      ? 'Active. Take the credentials, fix the incident, end the access when done.'
      : 'Finished (' + (activation.end_reason || activation.state) + '). Someone who did not take part must review it.';
  $('show-credentials').hidden = activation.state !== 'active';
  $('end-access').hidden = activation.state !== 'active';
  $('cancel-activation').hidden = !waiting;
  if (finalStates.has(activation.state)) {
    stopPolling();
    // The access is over: nothing on the page should still show how to use it.
    $('credentials').hidden = true;
    $('credentials-text').textContent = '';
  } else {
    startPolling();
  }
}

async function refresh() {
  const mine = stored();
  if (!mine) return;
  try {
    show(await call('GET', '/activations/' + encodeURIComponent(mine.id), undefined, mine.handle));
  } catch (error) {
    say('activation-result', (error.code ? error.code + ': ' : '') + error.message, true);
    if (error.code === 'not_found' || error.code === 'unauthenticated') stopPolling();
  }
}

function startPolling() {
  if (polling === null) polling = setInterval(refresh, 2000);
}

function stopPolling() {
  if (polling !== null) clearInterval(polling);
  polling = null;
}

async function withHandle(resultId, action) {
  const mine = stored();
  if (!mine) return;
  try {
    const message = await action(mine);
    if (message) say(resultId, message, false);
  } catch (error) {
    say(resultId, (error.code ? error.code + ': ' : '') + error.message, true);
  }
}

$('show-credentials').addEventListener('click', () =>
  withHandle('activation-result', async (mine) => {
    const answer = await call('POST', '/activations/' + encodeURIComponent(mine.id) + '/credentials', undefined, mine.handle);
    const lines = [];
    for (const grant of answer.grants) {
      lines.push(grant.role + ' (grant ' + grant.grant_id + ', until ' + when(grant.expires_at) + ')');
      for (const [name, value] of Object.entries(grant.credentials || {})) lines.push('  ' + name + ': ' + value);
      if (grant.token) lines.push('  token: ' + grant.token);
      if (grant.out_of_scope && grant.out_of_scope.length > 0) lines.push('  out of scope: ' + grant.out_of_scope.join(', '));
    }
    $('credentials-text').textContent = lines.join('\n');
    $('credentials').hidden = false;
    return '';
  }),
);

$('end-access').addEventListener('click', () =>
  withHandle('activation-result', async (mine) => {
    if (!window.confirm('End the emergency access now?')) return '';
    show(await call('POST', '/activations/' + encodeURIComponent(mine.id) + '/end', undefined, mine.handle));
    $('credentials').hidden = true;
    $('credentials-text').textContent = '';
    return 'The access was ended.';
  }),
);

$('cancel-activation').addEventListener('click', () =>
  withHandle('activation-result', async (mine) => {
    show(await call('POST', '/activations/' + encodeURIComponent(mine.id) + '/cancel', undefined, mine.handle));
    return 'The activation was cancelled.';
  }),
);

$('forget-activation').addEventListener('click', () => {
  sessionStorage.removeItem(handleKey);
  stopPolling();
  $('activation').hidden = true;
  $('credentials-text').textContent = '';
});

refresh();
`;
