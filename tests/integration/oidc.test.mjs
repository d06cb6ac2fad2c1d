// SPDX-License-Identifier: MIT
// OIDC pre-authentication at the HTTP level (issue "OIDC pre-authentication", "Must show";
// the flow of the OIDC plan; DESIGN §5): a real edge and connector, a real OpenID provider
// (npm oidc-provider through tests/idp/provider.mjs on 127.0.0.2: PKCE required, client
// authentication enforced as registered, its own login page with real passwords) and small
// in-process providers (lib/rogue_idp.mjs) that hand out defective ID tokens or are down.
// A cookie jar with redirects followed by hand (lib/idp.mjs `Browser`) plays the browser.
// The backend (lib/backend.mjs) echoes what reaches it: the identity headers, the
// X-Portico-Assertion (verified here with node:crypto against /.portico/jwks.json) and the
// cookies. Sessions that end are made by opening a real session cookie with the edge's key
// file and sealing a copy with another expiry (lib/sealed_cookie.mjs), since the shortest
// session lifetime edge.json accepts is 5 minutes.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup, sanitizerReports, sleep, eventually, freePort, treeModes, EDGE_HOST,
} from './lib/harness.mjs';
import { TestBackend } from './lib/backend.mjs';
import { addApp, setApp, wsConnect } from './lib/publish.mjs';
import { OP } from './lib/websocket.mjs';
import {
  Idp, USERS, edgeClient, startOidcSite, Browser, signIn, describe, setCookies, httpRequest,
  haveProvider, loginFormAction, IDP_HOST,
} from './lib/idp.mjs';
import { RogueIdp } from './lib/rogue_idp.mjs';
import { openCookie, sealCookie } from './lib/sealed_cookie.mjs';

const SESSION = '__Host-portico_session';
// One login cookie per sign-in, named by the first 8 characters of its state (edge/auth.h
// ptc_auth_login_cookie_name), so that sign-ins in several tabs do not overwrite each other.
const LOGIN_PREFIX = '__Host-portico_login_';
const loginName = (state) => `${LOGIN_PREFIX}${state.slice(0, 8)}`;
const isLogin = (name) => /^(__Host-)?portico_login_[A-Za-z0-9_-]{8}$/.test(name);
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

// Apps: name -> {idp, assignment, set}
const APPS = {
  app: { idp: 'corp', assignment: { users: [], groups: ['staff', 'admins'] } },
  admins: { idp: 'corp', assignment: { users: [], groups: ['admins', 'nobody'] } },
  byuser: { idp: 'corp', assignment: { users: ['carol@example.com'], groups: [] } },
  roguemail: { idp: 'rogue', assignment: { users: [USERS.alice.email], groups: [] } },
  everyone: { idp: 'corp', assignment: { users: [], groups: [] } },
  cookies: { idp: 'corp', assignment: { users: [], groups: [] }, set: { persistent_cookie: true, http_only_cookie: false, secure_cookie: false } },
  post: { idp: 'corp-post', assignment: { users: [], groups: ['staff'] } },
  es: { idp: 'corp-es', assignment: { users: [], groups: [] } },
  rogue: { idp: 'rogue', assignment: { users: [], groups: [] } },
  flaky: { idp: 'flaky', assignment: { users: [], groups: [] } },
  mixup: { idp: 'mixup', assignment: { users: [], groups: [] } },
  open: { passthrough: true },
  dyn: { idp: 'corp', assignment: { users: [], groups: ['staff'] } },
};
const SSO = { email: 'X-Auth-Email', name: 'X-Auth-Name', sub: 'X-Auth-Sub', groups: 'X-Auth-Groups' };

let site; // {edge, conn, client, dir}
let edge;
let idp;
let rogue;
let flaky;
let mixup;
let bk;
let ca;
const alice = USERS.alice;
const bob = USERS.bob;
const carol = USERS.carol;

const host = (name) => `${name}.apps.localhost`;
const url = (name, path = '/') => `https://${host(name)}:${edge.port}${path}`;

before(async () => {
  if (!haveProvider()) throw new Error('node_modules/oidc-provider is missing: run scripts/deps.sh (npm ci)');
  bk = await TestBackend.start({ name: 'localhost' });
  const rogueClient = (port, name, also = []) => ({
    client_id: `${name}-client`, client_secret: `${name}-secret:+/ x`, token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [name, ...also].map((n) => `https://${host(n)}:${port}/.portico/callback`),
  });
  site = await startOidcSite({
    session: { lifetime: '10m', key_rotation: '1h' },
    idps: async (port) => {
      const hosts = [...Object.keys(APPS).map(host), EDGE_HOST];
      const cBasic = edgeClient({ clientId: 'edge-basic', port, hosts });
      const cPost = edgeClient({ clientId: 'edge-post', port, hosts, method: 'client_secret_post' });
      const cEs = edgeClient({ clientId: 'edge-es', port, hosts, alg: 'ES256' });
      // The portal's callback may name the edge host without the port.
      cBasic.redirect_uris.push(`https://${EDGE_HOST}/.portico/callback`);
      idp = new Idp({ clients: [cBasic, cPost, cEs], port: await freePort(IDP_HOST) });
      rogue = new RogueIdp({ client: rogueClient(port, 'rogue', ['roguemail']), user: alice, host: '127.0.0.3' });
      flaky = new RogueIdp({ client: rogueClient(port, 'flaky'), user: bob, host: '127.0.0.4' });
      await rogue.start();
      await flaky.start();
      flaky.down = true;
      mixup = new RogueIdp({ client: rogueClient(port, 'mixup'), user: bob, host: '127.0.0.5' });
      await mixup.start();
      mixup.discoveryIssuer = 'http://127.0.0.9:9/';
      const secret = (r) => {
        const f = join(idp.dir, `${r.client.client_id}.secret`);
        writeFileSync(f, r.client.client_secret, { mode: 0o600 });
        return f;
      };
      return {
        servers: [idp],
        idps: [
          idp.edgeEntry('corp', 'edge-basic'),
          idp.edgeEntry('corp-post', 'edge-post'),
          idp.edgeEntry('corp-es', 'edge-es'),
          rogue.edgeEntry('rogue', secret(rogue)),
          flaky.edgeEntry('flaky', secret(flaky)),
          mixup.edgeEntry('mixup', secret(mixup)),
        ],
      };
    },
  });
  edge = site.edge;
  ca = readFileSync(edge.certs.ca);
  for (const [name, a] of Object.entries(APPS)) {
    if (a.passthrough) {
      await addApp(edge, name, { internal: `http://127.0.0.1:${bk.port}/`, external: url(name) });
      continue;
    }
    await addApp(edge, name, {
      internal: `http://127.0.0.1:${bk.port}/`, external: url(name), preAuth: 'oidc',
      set: { idp: a.idp, assignment: a.assignment, sso_headers: SSO, ...(a.set || {}) },
    });
  }
});

after(async () => {
  try {
    await cleanup();
  } finally {
    for (const x of [bk, rogue, flaky, mixup]) if (x) await x.stop().catch(() => {});
  }
});

let reported = '';
afterEach(() => {
  for (const p of [edge.proc, site.conn.proc]) {
    assert.ok(p.running(), `${p.name} exited during the test: ${JSON.stringify(p.exitInfo)}\n${p.tail()}`);
  }
  const rep = sanitizerReports();
  if (rep && rep !== reported) {
    reported = rep;
    throw new Error(`sanitizer report:\n${rep}`);
  }
});

// ---- helpers ----

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

/** Verifies an X-Portico-Assertion against the edge's JWKS (fetched from host); returns {header, claims}. */
async function verifyAssertion(token, jwksHost) {
  assert.equal(typeof token, 'string', 'an X-Portico-Assertion');
  const parts = token.split('.');
  assert.equal(parts.length, 3, `a compact JWS: ${token}`);
  const header = b64json(parts[0]);
  const claims = b64json(parts[1]);
  assert.equal(header.alg, 'EdDSA', `alg: ${JSON.stringify(header)}`);
  assert.equal(typeof header.kid, 'string', `kid: ${JSON.stringify(header)}`);
  const r = await httpRequest(`https://${jwksHost}:${edge.port}/.portico/jwks.json`, { ca });
  assert.equal(r.status, 200, describe(r));
  assert.match(r.headers['content-type'] || '', /json/, describe(r));
  const jwk = (r.json.keys || []).find((k) => k.kid === header.kid);
  assert.ok(jwk, `the JWKS has kid ${header.kid}: ${r.text}`);
  assert.equal(jwk.kty, 'OKP');
  assert.equal(jwk.crv, 'Ed25519');
  assert.equal(jwk.d, undefined, 'no private part in the JWKS');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const ok = cryptoVerify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  assert.ok(ok, 'the assertion verifies with the JWKS');
  return { header, claims };
}

/** A fresh browser signed in as user at app name; asserts every step; resolves {br, flow}. */
async function signedIn(name, user, path = '/') {
  const br = new Browser(ca);
  const flow = await signIn(br, url(name, path), user);
  assert.ok(flow.callback, `the provider sent ${user.username} back to the edge: ${flow.failed ? describe(flow.failed) : ''}`);
  assert.equal(flow.callback.status, 302, describe(flow.callback));
  assert.ok(br.jar.get(host(name), SESSION) || br.jar.get(host(name), 'portico_session'), `a session cookie: ${describe(flow.callback)}`);
  return { br, flow };
}

/** The Location of a redirect as a path on the request's own origin, or the absolute URL. */
function samePath(r) {
  const loc = new URL(r.location);
  return loc.origin === r.url.origin ? loc.pathname + loc.search : loc.toString();
}

/** Checks an edge page: status, cause (JSON: error field; HTML: named in the text). */
function checkPage(r, status, cause) {
  const ctx = describe(r);
  assert.equal(r.status, status, ctx);
  if (r.json) {
    assert.equal(r.json.error, cause, ctx);
    assert.equal(r.json.status, status, ctx);
  } else {
    assert.match(r.headers['content-type'] || '', /^text\/html/, ctx);
    assert.ok(r.text.includes(cause), `the page names ${cause}: ${ctx}`);
  }
  assert.ok(!setCookies(r).some((c) => /portico_session$/.test(c.name) && c.value !== '' && c.maxAge !== 0),
    `no session cookie set with a ${status}: ${ctx}`);
}

/** The `state` of a sign-in, from the edge's redirect to the provider. */
const stateOf = (first) => new URL(first.location).searchParams.get('state');

/** The login cookie the edge set with its redirect to the provider (named by the state). */
function loginCookie(first) {
  const c = setCookies(first).find((x) => x.name === loginName(stateOf(first)));
  assert.ok(c, `a ${loginName(stateOf(first))} cookie: ${describe(first)}`);
  return c;
}

/** The edge's http_request_done line for the request answered by `r` (by its X-Request-Id). */
function accessLine(r) {
  const id = r.headers['x-request-id'];
  assert.ok(id, `an X-Request-Id: ${describe(r)}`);
  return edge.proc.waitLog((l) => l.event === 'http_request_done' && l.req === id, 5000, `http_request_done req=${id}`);
}

/** Every log line of the edge from `mark` on, raw. */
const edgeLog = (mark = 0) => edge.proc.lines.slice(mark).map((l) => l._raw).join('\n');

/** Asserts none of the secrets appears in the edge's log. */
function noSecretsLogged(secrets) {
  const text = edgeLog() + edge.proc.stderr;
  for (const [what, s] of Object.entries(secrets)) {
    if (s) assert.ok(!text.includes(s), `the edge's log does not contain the ${what}`);
  }
}

// ---- the full sign-in ----

test('full sign-in: redirect with PKCE, state and nonce; the provider\'s login page; callback; session cookie; the backend gets the identity and a verifiable assertion, never the edge\'s cookies', async () => {
  const br = new Browser(ca);
  br.jar.set(host('app'), 'app_pref', 'dark');
  const path = '/dash/board?x=1&y=a%20b';
  const flow = await signIn(br, url('app', path), alice, { callback: false });

  // 1. The edge sends the browser to the provider.
  const first = flow.first;
  assert.equal(first.status, 302, describe(first));
  const az = new URL(flow.authorize);
  assert.equal(az.origin + az.pathname, `${idp.issuer}/auth`, 'the discovery document\'s authorization_endpoint');
  const q = Object.fromEntries(az.searchParams);
  assert.equal(q.response_type, 'code');
  assert.equal(q.client_id, 'edge-basic');
  assert.equal(q.redirect_uri, url('app', '/.portico/callback'));
  assert.deepEqual(q.scope.split(' ').sort(), ['email', 'groups', 'openid', 'profile']);
  assert.equal(q.code_challenge_method, 'S256');
  assert.equal(q.response_mode, 'query');
  for (const k of ['state', 'nonce', 'code_challenge']) {
    assert.match(q[k] || '', B64URL_RE, `${k}: ${q[k]}`);
    assert.ok(q[k].length >= 43, `${k} carries at least 256 bits: ${q[k]}`);
  }
  assert.notEqual(q.state, q.nonce);
  const lc = setCookies(first).find((c) => c.name === loginName(q.state));
  assert.ok(lc, `a ${loginName(q.state)} cookie: ${describe(first)}`);
  assert.equal(setCookies(first).filter((c) => /portico_login/.test(c.name)).length, 1, 'one login cookie');
  assert.ok(lc.httpOnly && lc.secure, `HttpOnly; Secure: ${lc.raw}`);
  assert.match(lc.sameSite || '', /^lax$/i, lc.raw);
  assert.equal(lc.path, '/', lc.raw);
  assert.equal(lc.domain, null, `no Domain: ${lc.raw}`);
  assert.ok(lc.maxAge === null || (lc.maxAge > 0 && lc.maxAge <= 600), `a short life: ${lc.raw}`);
  assert.ok(!lc.value.includes(q.state) && !lc.value.includes(q.nonce), 'the login cookie is sealed, not the state in clear');

  // 2. The provider's own login page, then back to the edge's callback with a code.
  assert.ok(flow.loginPage.url.origin === idp.issuer, describe(flow.loginPage));
  assert.match(flow.loginPage.text, /name="password"/);
  const cb = new URL(flow.callbackUrl);
  assert.equal(cb.origin + cb.pathname, url('app', '/.portico/callback'));
  assert.equal(cb.searchParams.get('state'), q.state);
  const code = cb.searchParams.get('code');
  assert.ok(code);
  await idp.proc.waitLog((l) => l.event === 'login' && l.username === 'alice', 5000);

  // 3. The callback: code exchanged (client_secret_basic), session cookie, back to the path.
  const mark = edge.proc.mark();
  const r = await br.request(flow.callbackUrl);
  assert.equal(r.status, 302, describe(r));
  assert.equal(samePath(r), path, 'back to the original path and query');
  const sc = setCookies(r).find((c) => c.name === SESSION);
  assert.ok(sc, `a ${SESSION} cookie: ${describe(r)}`);
  assert.ok(sc.httpOnly && sc.secure, `HttpOnly; Secure (the app's defaults): ${sc.raw}`);
  assert.match(sc.sameSite || '', /^lax$/i, sc.raw);
  assert.equal(sc.path, '/', sc.raw);
  assert.equal(sc.domain, null, `no Domain: ${sc.raw}`);
  assert.equal(sc.maxAge, null, `a browser-session cookie (persistent_cookie false): ${sc.raw}`);
  assert.ok(sc.value.length < 4000, `the cookie stays under 4 KB (${sc.value.length})`);
  const cleared = setCookies(r).find((c) => c.name === lc.name);
  assert.ok(cleared && (cleared.maxAge === 0 || cleared.expires < Date.now()), `the login cookie is cleared: ${describe(r)}`);
  await idp.proc.waitLog((l) => l.event === 'token_issued' && l.client === 'edge-basic', 5000, 'the provider issued tokens to edge-basic');

  // 4. The app, through the gate.
  const t0 = Math.floor(Date.now() / 1000);
  const app = await br.request(r.location);
  assert.equal(app.status, 200, describe(app));
  const e = app.json;
  assert.equal(e.url, path);
  const h = e.headers;
  assert.equal(h['x-auth-email'], alice.email);
  assert.equal(h['x-auth-name'], alice.name);
  assert.equal(h['x-auth-sub'], alice.sub);
  assert.deepEqual((h['x-auth-groups'] || '').split(',').map((s) => s.trim()).sort(), ['admins', 'staff']);
  const { claims } = await verifyAssertion(h['x-portico-assertion'], host('app'));
  assert.equal(claims.iss, `https://${EDGE_HOST}`);
  assert.equal(claims.aud, 'app');
  assert.equal(claims.sub, alice.sub);
  assert.equal(claims.email, alice.email);
  assert.equal(claims.name, alice.name);
  assert.deepEqual([...claims.groups].sort(), ['admins', 'staff']);
  assert.equal(claims.exp - claims.iat, 60, 'a 60 s assertion');
  assert.ok(Math.abs(claims.iat - t0) <= 5, `iat is now: ${claims.iat} vs ${t0}`);
  // The assertion verifies with the edge host's JWKS too.
  await verifyAssertion(h['x-portico-assertion'], EDGE_HOST);
  const cookie = h.cookie || '';
  assert.ok(!/portico/i.test(cookie), `none of the edge's cookies reach the backend: ${cookie}`);
  assert.match(cookie, /app_pref=dark/, 'the app\'s own cookies do');

  noSecretsLogged({ 'authorization code': code, 'session cookie': sc.value, 'login cookie': lc.value, 'state': q.state, 'nonce': q.nonce });
  assert.ok(edge.proc.lines.length > mark, 'the edge logged the callback');
});

test('wrong password: the provider shows its error and keeps the user; no code reaches the edge', async () => {
  const br = new Browser(ca);
  const mark = bk.requests.length;
  const flow = await signIn(br, url('app'), alice, { password: 'not-her-password' });
  assert.equal(flow.callbackUrl, undefined, 'no redirect to the edge');
  assert.ok(flow.failed, 'stopped at the provider');
  assert.equal(flow.failed.url.origin, idp.issuer);
  assert.equal(flow.failed.status, 200);
  assert.match(flow.failed.text, /Invalid username or password/);
  assert.ok(loginFormAction(flow.failed), 'the login form again');
  await idp.proc.waitLog((l) => l.event === 'login_failed' && l.username === 'alice', 5000);
  assert.equal(bk.requests.length, mark, 'nothing reached the backend');
  // Still not signed in at the app.
  const again = await br.request(url('app'));
  assert.equal(again.status, 302, describe(again));
  assert.ok(again.location.startsWith(idp.issuer));
});

test('/.portico/me answers the session as JSON; without a session 401 JSON', async () => {
  const { br } = await signedIn('app', alice);
  const t0 = Math.floor(Date.now() / 1000);
  const r = await br.request(url('app', '/.portico/me'));
  assert.equal(r.status, 200, describe(r));
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.equal(r.json.sub, alice.sub);
  assert.equal(r.json.email, alice.email);
  assert.equal(r.json.name, alice.name);
  assert.deepEqual([...r.json.groups].sort(), ['admins', 'staff']);
  assert.equal(r.json.idp, 'corp');
  assert.ok(Math.abs(r.json.expires_at - (t0 + 600)) <= 10, `expires_at = sign-in + session.lifetime (10m): ${r.json.expires_at} vs ${t0 + 600}`);
  const anon = await new Browser(ca).request(url('app', '/.portico/me'));
  assert.equal(anon.status, 401, describe(anon));
  assert.match(anon.headers['content-type'] || '', /^application\/json/);
  assert.equal(anon.headers.location, undefined, 'no redirect for /me');
});

test('spoofed X-Portico-* and identity headers from the client never reach the backend', async () => {
  const { br } = await signedIn('app', bob);
  const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: alice.sub, groups: ['admins'] })).toString('base64url')}.`;
  const r = await br.request(url('app', '/spoof'), {
    headers: {
      'X-Portico-User': alice.email, 'X-Portico-Assertion': forged, 'X-Portico-Groups': 'admins',
      'X-Auth-Email': alice.email, 'X-Auth-Groups': 'admins', 'X-Auth-Sub': alice.sub,
    },
  });
  assert.equal(r.status, 200, describe(r));
  const raw = r.json.raw.map(([k, v]) => [k.toLowerCase(), v]);
  const all = (k) => raw.filter(([n]) => n === k).map(([, v]) => v);
  assert.deepEqual(all('x-portico-user'), []);
  assert.deepEqual(all('x-portico-groups'), []);
  assert.equal(all('x-portico-assertion').length, 1, `one assertion: ${JSON.stringify(raw)}`);
  assert.notEqual(all('x-portico-assertion')[0], forged);
  const { claims } = await verifyAssertion(all('x-portico-assertion')[0], host('app'));
  assert.equal(claims.sub, bob.sub);
  assert.deepEqual(claims.groups, ['staff']);
  assert.deepEqual(all('x-auth-email'), [bob.email], `the sso header is the edge's only: ${JSON.stringify(raw)}`);
  assert.deepEqual(all('x-auth-sub'), [bob.sub]);
  assert.deepEqual(all('x-auth-groups'), ['staff']);
});

test('only the groups the app\'s assignment names ride in the session and the assertion', async () => {
  const { br, flow } = await signedIn('admins', alice);
  const r = await br.request(new URL(flow.callback.location, url('admins')).toString());
  assert.equal(r.status, 200, describe(r));
  const { claims } = await verifyAssertion(r.json.headers['x-portico-assertion'], host('admins'));
  assert.equal(claims.aud, 'admins');
  assert.deepEqual(claims.groups, ['admins'], 'staff is not named by the assignment of admins');
  const me = await br.request(url('admins', '/.portico/me'));
  assert.deepEqual(me.json.groups, ['admins']);
});

test('a tampered session cookie, or one from another app\'s host, sends the browser to sign in again', async () => {
  const { br } = await signedIn('app', alice);
  const good = br.jar.get(host('app'), SESSION).value;
  const ok = await br.request(url('app', '/ok'));
  assert.equal(ok.status, 200, describe(ok));
  const mark = bk.requests.length;
  const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  for (const bad of [flip(good, 10), flip(good, good.length - 3), flip(good, Math.floor(good.length / 2)), good.slice(0, -4), `${good}AAAA`, '', 'garbage!!']) {
    const r = await br.request(url('app', '/t'), { headers: { cookie: `${SESSION}=${bad}` } });
    assert.equal(r.status, 302, `tampered cookie ${bad.slice(0, 20)}…: ${describe(r)}`);
    assert.ok(r.location.startsWith(`${idp.issuer}/auth?`), describe(r));
  }
  // A cookie sealed for app's host is not a session at admins' host (alice is assigned to both).
  const other = await br.request(url('admins', '/t'), { headers: { cookie: `${SESSION}=${good}` } });
  assert.equal(other.status, 302, describe(other));
  // Nor is a login-state cookie a session.
  const br2 = new Browser(ca);
  const first = await br2.request(url('app', '/'));
  const login = loginCookie(first).value;
  const asSession = await br2.request(url('app', '/t'), { headers: { cookie: `${SESSION}=${login}` } });
  assert.equal(asSession.status, 302, describe(asSession));
  assert.equal(bk.requests.length, mark, 'nothing reached the backend');
  const json = await br.request(url('app', '/t'), { headers: { cookie: `${SESSION}=${flip(good, 10)}`, accept: 'application/json' } });
  assert.equal(json.status, 401, `XHR without a valid session: ${describe(json)}`);
});

test('an expired session (sealed with the edge\'s key, expiry in the past) sends the browser to sign in again', async () => {
  const { br } = await signedIn('app', alice);
  const good = br.jar.get(host('app'), SESSION).value;
  const hosts = [`${host('app')}:${edge.port}`, host('app')];
  const opened = openCookie(edge.stateDir, 'session', hosts, good);
  assert.ok(opened, 'the session cookie opens with the edge\'s session key (edge/session.h envelope)');
  const p = opened.payload;
  const now = Math.floor(Date.now() / 1000);
  // Control: a resealed copy with the same payload is a valid session.
  const same = sealCookie(edge.stateDir, 'session', opened.host, p);
  const r0 = await br.request(url('app', '/same'), { headers: { cookie: `${SESSION}=${same}` } });
  assert.equal(r0.status, 200, `a resealed, unchanged session works: ${describe(r0)}`);
  const expKey = Object.keys(p).find((k) => typeof p[k] === 'number' && p[k] >= now + 500 && p[k] <= now + 700);
  assert.ok(expKey, `the payload has the expiry (sign-in + 10 min): ${JSON.stringify(Object.keys(p))}`);
  const mark = bk.requests.length;
  for (const ago of [1, 120, 86400]) {
    const old = sealCookie(edge.stateDir, 'session', opened.host, { ...p, [expKey]: now - ago });
    const r = await br.request(url('app', '/late'), { headers: { cookie: `${SESSION}=${old}` } });
    assert.equal(r.status, 302, `expired ${ago} s ago: ${describe(r)}`);
    assert.ok(r.location.startsWith(`${idp.issuer}/auth?`), describe(r));
    const me = await br.request(url('app', '/.portico/me'), { headers: { cookie: `${SESSION}=${old}` } });
    assert.equal(me.status, 401, `/me with an expired session: ${describe(me)}`);
  }
  assert.equal(bk.requests.length, mark, 'nothing reached the backend');
});

test('callback: a wrong or missing state, or no login cookie, is refused with 400 and no session', async () => {
  const br = new Browser(ca);
  const flow = await signIn(br, url('app', '/s'), alice, { callback: false });
  const cb = new URL(flow.callbackUrl);
  const wrong = new URL(cb);
  wrong.searchParams.set('state', `${cb.searchParams.get('state').slice(0, -2)}xx`);
  const rw = await br.request(wrong.toString());
  assert.equal(rw.status, 400, `a wrong state: ${describe(rw)}`);
  assert.ok(!setCookies(rw).some((c) => c.name === SESSION && c.value), 'no session');
  const none = new URL(cb);
  none.searchParams.delete('state');
  assert.equal((await br.request(none.toString())).status, 400);
  // Without the login cookie (another browser got the link).
  const other = new Browser(ca);
  const r = await other.request(cb.toString());
  assert.equal(r.status, 400, describe(r));
  assert.ok(!setCookies(r).some((c) => c.name === SESSION));
  // The state of another login of the same browser.
  const br2 = new Browser(ca);
  const f2 = await signIn(br2, url('app', '/s2'), alice, { callback: false });
  const mixed = await br.request(f2.callbackUrl);
  assert.equal(mixed.status, 400, `state of another login: ${describe(mixed)}`);
  // The genuine callback still works (the refusals spent nothing).
  const ok = await br.request(cb.toString());
  assert.equal(ok.status, 302, describe(ok));
  assert.ok(setCookies(ok).some((c) => c.name === SESSION));
});

/**
 * Follows a sign-in's redirect to the provider (signing in at its login page when it asks)
 * until the provider sends the browser back to `origin`; resolves that callback URL.
 */
async function throughProvider(br, authorize, user, origin) {
  const atApp = (r) => r.status >= 300 && r.status < 400 && r.location && new URL(r.location).origin === origin;
  let chain = await br.follow(authorize, { stop: atApp });
  let last = chain[chain.length - 1];
  if (!atApp(last)) {
    const action = loginFormAction(last);
    assert.ok(action, `the provider's login page: ${describe(last)}`);
    chain = await br.follow(action, { form: { username: user.username, password: user.password }, stop: atApp });
    last = chain[chain.length - 1];
  }
  assert.ok(atApp(last), `back to the edge: ${describe(last)}`);
  return last.location;
}

test('two sign-ins at once on one host (two tabs): each has its own login cookie; both complete, the first one last; login cookies never reach the backend', async () => {
  const br = new Browser(ca);
  const origin = new URL(url('app')).origin;
  // Two tabs open the app before either signs in.
  const a = await br.request(url('app', '/tab-a?x=1'));
  const b = await br.request(url('app', '/tab-b'));
  assert.equal(a.status, 302, describe(a));
  assert.equal(b.status, 302, describe(b));
  // The user signs in at the provider in tab a; tab b then passes through the provider's session.
  const cbA = await throughProvider(br, a.location, alice, origin);
  const cbB = await throughProvider(br, b.location, alice, origin);
  assert.equal(new URL(cbA).searchParams.get('state'), stateOf(a));
  assert.equal(new URL(cbB).searchParams.get('state'), stateOf(b));
  // Tab b finishes first, tab a second: both succeed.
  const rb = await br.request(cbB);
  assert.equal(rb.status, 302, `the second sign-in's callback: ${describe(rb)}`);
  assert.equal(samePath(rb), '/tab-b');
  assert.ok(setCookies(rb).some((c) => c.name === SESSION && c.value), describe(rb));
  const ra = await br.request(cbA);
  assert.equal(ra.status, 302, `the first sign-in's callback, finished last: ${describe(ra)}`);
  assert.equal(samePath(ra), '/tab-a?x=1');
  assert.ok(setCookies(ra).some((c) => c.name === SESSION && c.value), describe(ra));
  for (const p of ['/tab-a', '/tab-b']) {
    const r = await br.request(url('app', p));
    assert.equal(r.status, 200, describe(r));
    assert.equal(r.json.headers['x-auth-email'], alice.email);
  }
  // How: a login cookie per sign-in, named by its state; each callback clears its own only.
  const la = loginCookie(a);
  const lb = loginCookie(b);
  assert.notEqual(la.name, lb.name, 'a cookie per sign-in');
  assert.ok(la.httpOnly && la.secure && la.maxAge > 0 && la.maxAge <= 600, la.raw);
  assert.ok(!setCookies(b).some((c) => c.name === la.name), `the second sign-in leaves the first one's cookie alone: ${describe(b)}`);
  assert.ok(setCookies(rb).some((c) => c.name === lb.name && c.maxAge === 0), `its login cookie is cleared: ${describe(rb)}`);
  assert.ok(!setCookies(rb).some((c) => c.name === la.name), `the other sign-in's cookie is left alone: ${describe(rb)}`);
  assert.ok(setCookies(ra).some((c) => c.name === la.name && c.maxAge === 0), `its login cookie is cleared: ${describe(ra)}`);
  assert.deepEqual(br.jar.names(host('app')).filter(isLogin), [], 'no login cookie left');
  // Whatever follows the prefix, the edge's login cookies stay at the edge.
  br.jar.set(host('app'), `${LOGIN_PREFIX}leftover`, 'x');
  br.jar.set(host('app'), 'portico_login_zzzzzzzz', 'y');
  br.jar.set(host('app'), 'app_pref', 'dark');
  const r = await br.request(url('app', '/tabs'));
  assert.equal(r.status, 200, describe(r));
  const cookie = r.json.headers.cookie || '';
  assert.ok(!/portico/i.test(cookie), `no edge cookie reaches the backend: ${cookie}`);
  assert.match(cookie, /app_pref=dark/);
});

test('the access log names who made each request: the session\'s email, null without a session; never a cookie', async () => {
  const anon = await new Browser(ca).request(url('app', '/who-anon'));
  assert.equal(anon.status, 302, describe(anon));
  const { br, flow } = await signedIn('app', bob);
  const r = await br.request(url('app', '/who'));
  assert.equal(r.status, 200, describe(r));
  const me = await br.request(url('app', '/.portico/me'));
  assert.equal(me.status, 200, describe(me));
  const c = await signedIn('app', carol);
  const denied = await c.br.request(url('app', '/who-denied'));
  checkPage(denied, 403, 'not_assigned');
  const open = await br.request(url('open', '/who-open'));
  assert.equal(open.status, 200, describe(open));

  const line = await accessLine(r);
  assert.equal(line.user, bob.email, `the backend's request: ${line._raw}`);
  assert.equal(line.path, '/who');
  assert.equal(line.app, 'app');
  assert.equal((await accessLine(me)).user, bob.email, 'the edge\'s own answer to a session');
  assert.equal((await accessLine(denied)).user, carol.email, 'a signed-in user who is not assigned');
  for (const [what, res] of [['no session', anon], ['the callback (it brings no session)', flow.callback], ['a passthrough app (its cookie is not looked at)', open]]) {
    const l = await accessLine(res);
    assert.ok(l.user === null || l.user === undefined, `${what}: user ${l.user}: ${l._raw}`);
  }
  const session = br.jar.get(host('app'), SESSION).value;
  assert.ok(!edgeLog().includes(session), 'the session cookie is never logged');
  assert.ok(!edgeLog().includes(session.slice(0, 40)), 'nor a part of it');
});

test('login state: an expired login cookie, one from another app\'s host, and the provider\'s error answer are refused without a session', async () => {
  const br = new Browser(ca);
  const flow = await signIn(br, url('app', '/ls'), alice, { callback: false });
  const LOGIN = loginName(stateOf(flow.first));
  const login = br.jar.get(host('app'), LOGIN).value;
  const opened = openCookie(edge.stateDir, 'login', [`${host('app')}:${edge.port}`, host('app')], login);
  assert.ok(opened, 'the login cookie opens with the edge\'s key (edge/session.h envelope)');
  const now = Math.floor(Date.now() / 1000);
  const p = opened.payload;
  const createdKey = Object.keys(p).find((k) => typeof p[k] === 'number' && Math.abs(p[k] - now) <= 30);
  assert.ok(createdKey, `the login state has its creation time: ${JSON.stringify(Object.keys(p))}`);
  // Control: resealed unchanged, it would be accepted; 11 minutes old, it is not.
  const stale = sealCookie(edge.stateDir, 'login', opened.host, { ...p, [createdKey]: now - 660 });
  const t1 = new Browser(ca);
  t1.jar.set(host('app'), LOGIN, stale);
  const r1 = await t1.request(flow.callbackUrl);
  assert.equal(r1.status, 400, `a login state older than 10 minutes: ${describe(r1)}`);
  assert.ok(!t1.jar.get(host('app'), SESSION));
  // The same cookie at another app's callback (the AD binds the host).
  const t2 = new Browser(ca);
  t2.jar.set(host('admins'), LOGIN, login);
  const cb = new URL(flow.callbackUrl);
  const r2 = await t2.request(url('admins', `/.portico/callback${cb.search}`));
  assert.equal(r2.status, 400, `a login cookie of another host: ${describe(r2)}`);
  // The provider answers an error (the user cancelled): a page, no session, no exchange.
  const t3 = new Browser(ca);
  t3.jar.set(host('app'), LOGIN, login);
  const err = `/.portico/callback?error=access_denied&error_description=cancelled&state=${cb.searchParams.get('state')}`;
  const r3 = await t3.request(url('app', err));
  assert.ok([400, 401].includes(r3.status), `the provider's error answer: ${describe(r3)}`);
  assert.ok(!t3.jar.get(host('app'), SESSION));
  // The genuine one still works.
  const ok = await br.request(flow.callbackUrl);
  assert.equal(ok.status, 302, describe(ok));
  assert.equal(samePath(ok), '/ls');
});

test('/.portico/ paths belong to the edge on every host: a passthrough app\'s backend never sees them; its jwks.json is the edge\'s', async () => {
  const mark = bk.requests.length;
  const j = await httpRequest(url('open', '/.portico/jwks.json'), { ca });
  assert.equal(j.status, 200, describe(j));
  assert.ok(Array.isArray(j.json.keys) && j.json.keys.length >= 1 && j.json.keys[0].crv === 'Ed25519', describe(j));
  for (const path of ['/.portico/me', '/.portico/callback?code=x&state=y', '/.portico/other', '/.portico/logout']) {
    const r = await httpRequest(url('open', path), { ca });
    assert.notEqual(r.status, 200, `${path} on a passthrough host is not the backend's echo: ${describe(r)}`);
  }
  assert.deepEqual(bk.requests.slice(mark).map((x) => x.url), [], 'the backend saw none of them');
  const plain = await httpRequest(url('open', '/.portico-not/x'), { ca });
  assert.equal(plain.status, 200, 'other paths still go to the backend');
});

test('a replayed authorization code is refused: 401 sign_in_failed, no session', async () => {
  const br = new Browser(ca);
  const flow = await signIn(br, url('app', '/r'), alice, { callback: false });
  const LOGIN = loginName(stateOf(flow.first));
  const login = br.jar.get(host('app'), LOGIN).value;
  const first = await br.request(flow.callbackUrl);
  assert.equal(first.status, 302, describe(first));
  const thief = new Browser(ca);
  thief.jar.set(host('app'), LOGIN, login);
  const mark = idp.proc.mark();
  const r = await thief.request(flow.callbackUrl, { headers: { accept: 'text/html' } });
  checkPage(r, 401, 'sign_in_failed');
  assert.ok(!thief.jar.get(host('app'), SESSION), 'no session');
  await idp.proc.waitLog((l) => l.event === 'token_error' && l.error === 'invalid_grant', 5000, 'invalid_grant at the provider', mark);
});

test('return URLs: the original path and query on the same host only, never an open redirect', async () => {
  // One sign-in at the provider; the later logins pass through its session.
  const br = new Browser(ca);
  const attempts = ['//evil.example/x', '/\\evil.example/x', '///evil.example/', '/%2F%2Fevil.example/', '/%5Cevil.example/', '/.%2F%2Fevil.example'];
  let first = true;
  for (const path of attempts) {
    br.jar.delete(host('app'), SESSION);
    const flow = await signIn(br, url('app', path), alice, { callback: true, password: first ? alice.password : undefined });
    first = false;
    assert.ok(flow.callback, `${path}: back at the edge`);
    const r = flow.callback;
    assert.equal(r.status, 302, `${path}: ${describe(r)}`);
    const loc = r.headers.location;
    const abs = new URL(loc, url('app'));
    assert.equal(abs.origin, new URL(url('app')).origin, `${path}: Location ${loc} stays on the app's host`);
    assert.ok(!/^\s*(\/\/|\/\\|\\|[a-z][a-z0-9+.-]*:)/i.test(loc) || abs.origin === new URL(url('app')).origin, `${path}: Location ${loc} is not protocol-relative`);
    assert.ok(!/^[/\\]{2}/.test(loc), `${path}: Location ${loc} does not start with // or /\\`);
  }
  // A normal path and query come back as they were.
  br.jar.delete(host('app'), SESSION);
  const flow = await signIn(br, url('app', '/a/b?c=d&e=%2F'), alice);
  assert.equal(samePath(flow.callback), '/a/b?c=d&e=%2F');
});

test('assignment: carol (no groups) gets the 403 page that names her and offers sign-out; users by email admit her; an empty assignment admits everyone', async () => {
  const mark = bk.requests.length;
  const { br, flow } = await signedIn('app', carol);
  const r = await br.request(new URL(flow.callback.location, url('app')).toString());
  checkPage(r, 403, 'not_assigned');
  assert.ok(r.text.includes(carol.email) || r.text.includes(carol.name), `the page names carol: ${r.text}`);
  assert.ok(r.text.includes('/.portico/logout'), `a sign-out link: ${r.text}`);
  const j = await br.request(url('app', '/x'), { headers: { accept: 'application/json' } });
  checkPage(j, 403, 'not_assigned');
  assert.equal(bk.requests.length, mark, 'nothing reached the backend');

  const byuser = await signedIn('byuser', carol);
  const ok = await byuser.br.request(url('byuser', '/in'));
  assert.equal(ok.status, 200, `assigned by email: ${describe(ok)}`);
  assert.equal(ok.json.headers['x-auth-email'], carol.email);
  const ev = await signedIn('everyone', carol);
  const ok2 = await ev.br.request(url('everyone', '/in'));
  assert.equal(ok2.status, 200, `empty assignment: ${describe(ok2)}`);
  assert.equal(ok2.json.headers['x-auth-groups'], undefined, 'no groups header when the session has none');
  const al = await signedIn('byuser', alice);
  checkPage(await al.br.request(url('byuser', '/in')), 403, 'not_assigned');
});

test('the assignment is checked on every request: a signed-in user removed from it gets 403 at once; robots.txt and maintenance come before sign-in', async () => {
  const { br } = await signedIn('dyn', alice);
  assert.equal((await br.request(url('dyn', '/1'))).status, 200);
  await setApp(edge, 'dyn', { assignment: { users: ['someone-else@example.com'], groups: [] } });
  checkPage(await br.request(url('dyn', '/2')), 403, 'not_assigned');
  await setApp(edge, 'dyn', { assignment: { users: [alice.email], groups: [] } });
  assert.equal((await br.request(url('dyn', '/3'))).status, 200, 'admitted by email again');
  const anon = new Browser(ca);
  const robots = await anon.request(url('dyn', '/robots.txt'));
  assert.equal(robots.status, 200, `robots.txt without a session: ${describe(robots)}`);
  assert.match(robots.text, /Disallow: \//);
  await setApp(edge, 'dyn', { maintenance_mode: true });
  try {
    const m = await anon.request(url('dyn', '/'));
    assert.equal(m.status, 503, `maintenance without a session: ${describe(m)}`);
    assert.equal(m.headers.location, undefined, 'no sign-in during maintenance');
  } finally {
    await setApp(edge, 'dyn', { maintenance_mode: false });
  }
});

test('/.portico/logout clears the session cookie and signs out at the provider (RP-initiated logout)', async () => {
  const { br } = await signedIn('app', alice);
  assert.equal((await br.request(url('app', '/before'))).status, 200);
  const r = await br.request(url('app', '/.portico/logout'));
  assert.equal(r.status, 302, describe(r));
  const sc = setCookies(r).find((c) => c.name === SESSION);
  assert.ok(sc && (sc.maxAge === 0 || sc.expires < Date.now()), `the session cookie is cleared: ${describe(r)}`);
  const loc = new URL(r.location);
  assert.equal(loc.origin + loc.pathname, `${idp.issuer}/session/end`, 'the provider\'s end_session_endpoint');
  assert.equal(loc.searchParams.get('client_id'), 'edge-basic');
  assert.equal(loc.searchParams.get('post_logout_redirect_uri'), url('app', '/'));
  assert.ok(!br.jar.get(host('app'), SESSION));
  // The provider asks, the user confirms, the provider sends the browser back to the app.
  const ask = await br.request(r.location);
  assert.equal(ask.status, 200, describe(ask));
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(ask.text);
  assert.ok(xsrf, describe(ask));
  const action = /<form[^>]*action="([^"]+)"/.exec(ask.text)[1];
  const done = await br.request(new URL(action, ask.url).toString(), { form: { xsrf: xsrf[1], logout: 'yes' } });
  assert.equal(done.status, 303, describe(done));
  assert.equal(done.location, url('app', '/'));
  await idp.proc.waitLog('end_session', 5000);
  // Signed out at both: the app sends to the provider, which asks for the password again.
  const flow = await signIn(br, url('app', '/after'), null);
  assert.ok(flow.loginPage, 'the provider shows its login page again');
  // Logout without a session still clears and answers.
  const anon = await new Browser(ca).request(url('app', '/.portico/logout'));
  assert.ok([200, 302].includes(anon.status), describe(anon));
});

test('cookie settings: persistent_cookie gives Max-Age = session lifetime; http_only_cookie and secure_cookie off drop HttpOnly, Secure and the __Host- prefix', async () => {
  const br = new Browser(ca);
  const flow = await signIn(br, url('cookies', '/'), alice, { callback: false });
  // The login cookie follows the app's scheme (https: Secure, so __Host-), not the settings.
  const lc = setCookies(flow.first).find((c) => isLogin(c.name));
  assert.ok(lc, describe(flow.first));
  assert.equal(lc.name, loginName(stateOf(flow.first)), lc.raw);
  assert.ok(lc.secure && lc.httpOnly, lc.raw);
  const r = await br.request(flow.callbackUrl);
  assert.equal(r.status, 302, describe(r));
  const sc = setCookies(r).find((c) => /portico_session$/.test(c.name));
  assert.ok(sc, describe(r));
  assert.equal(sc.name, 'portico_session');
  assert.equal(sc.secure, false, sc.raw);
  assert.equal(sc.httpOnly, false, sc.raw);
  assert.equal(sc.maxAge, 600, `Max-Age = session.lifetime 10m: ${sc.raw}`);
  assert.match(sc.sameSite || '', /^lax$/i, sc.raw);
  const app = await br.request(url('cookies', '/c'));
  assert.equal(app.status, 200, describe(app));
  assert.ok(!/portico/i.test(app.json.headers.cookie || ''), `the edge's cookie is not forwarded: ${app.json.headers.cookie}`);
});

test('client_secret_post and an ES256-signing client work; the provider refuses the method a client did not register', async () => {
  const pm = idp.proc.mark();
  const p = await signedIn('post', bob);
  assert.equal((await p.br.request(url('post', '/p'))).status, 200);
  await idp.proc.waitLog((l) => l.event === 'token_issued' && l.client === 'edge-post', 5000, 'tokens for edge-post', pm);
  assert.ok(!idp.proc.lines.slice(pm).some((l) => l.event === 'token_error'), `no token errors: ${idp.proc.tail()}`);
  const es = await signedIn('es', bob);
  const r = await es.br.request(url('es', '/e'));
  assert.equal(r.status, 200, describe(r));
  assert.equal(r.json.headers['x-auth-email'], bob.email);
  // The provider is strict: client_secret_basic for the post client is refused (what makes the
  // check above meaningful).
  const basic = Buffer.from(`edge-post:${encodeURIComponent(idp.clients[1].client_secret)}`).toString('base64');
  const t = await httpRequest(`${idp.issuer}/token`, {
    method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=authorization_code&code=x&redirect_uri=x&code_verifier=x',
  });
  assert.equal(t.status, 401, describe(t));
  assert.equal(t.json.error, 'invalid_client');
});

test('requests without a session: non-GET and JSON clients get 401 JSON, not a redirect; WebSocket upgrades need a session', async () => {
  const br = new Browser(ca);
  const mark = bk.requests.length;
  const post = await br.request(url('app', '/api'), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(post.status, 401, describe(post));
  assert.equal(post.headers.location, undefined);
  const xhr = await br.request(url('app', '/api'), { headers: { accept: 'application/json' } });
  assert.equal(xhr.status, 401, describe(xhr));
  assert.match(xhr.headers['content-type'] || '', /^application\/json/);
  const head = await br.request(url('app', '/h'), { method: 'HEAD' });
  assert.equal(head.status, 302, `HEAD is redirected like GET: ${describe(head)}`);
  const ws = await wsConnect(site.client, host('app'), '/ws');
  assert.notEqual(ws.response.status, 101, 'no upgrade without a session');
  ws.conn.close();
  assert.equal(bk.requests.length, mark, 'nothing reached the backend');

  const s = await signedIn('app', alice);
  const cookie = `${SESSION}=${s.br.jar.get(host('app'), SESSION).value}`;
  const ok = await wsConnect(site.client, host('app'), '/ws', { headers: [['Cookie', cookie]] });
  assert.equal(ok.response.status, 101, ok.response.raw);
  ok.text('hello through the gate');
  const f = await ok.next();
  assert.equal(f.payload.toString(), 'hello through the gate');
  const up = bk.requests[bk.requests.length - 1];
  assert.equal(up.headers['x-auth-email'], alice.email, 'the upgrade carries the identity headers');
  assert.ok(!/portico/i.test(up.headers.cookie || ''), 'and no edge cookie');
  ok.close();
  ok.conn.close();
});

test('a WebSocket is closed when its session expires', async () => {
  const { br } = await signedIn('app', alice);
  const good = br.jar.get(host('app'), SESSION).value;
  const opened = openCookie(edge.stateDir, 'session', [`${host('app')}:${edge.port}`, host('app')], good);
  assert.ok(opened);
  const p = opened.payload;
  const now = Math.floor(Date.now() / 1000);
  const expKey = Object.keys(p).find((k) => typeof p[k] === 'number' && p[k] >= now + 500 && p[k] <= now + 700);
  const short = sealCookie(edge.stateDir, 'session', opened.host, { ...p, [expKey]: now + 3 });
  const ws = await wsConnect(site.client, host('app'), '/ws-exp', { headers: [['Cookie', `${SESSION}=${short}`]] });
  assert.equal(ws.response.status, 101, ws.response.raw);
  ws.text('still here');
  assert.equal((await ws.next()).payload.toString(), 'still here');
  const t0 = Date.now();
  const closed = await Promise.race([ws.conn.closed.then(() => true), sleep(12000).then(() => false)]);
  let sawClose = false;
  while (ws.frames.length) if (ws.frames.shift().op === OP.CLOSE) sawClose = true;
  assert.ok(closed || sawClose, 'the edge closes the WebSocket once the session has expired');
  assert.ok(Date.now() - t0 < 12000);
  ws.conn.close();
});

// ---- ID tokens the edge must refuse (lib/rogue_idp.mjs) ----

async function rogueSignIn(br = new Browser(ca), path = '/', app = 'rogue') {
  const first = await br.request(url(app, path));
  assert.equal(first.status, 302, describe(first));
  assert.ok(first.location.startsWith(`${rogue.issuer}/authorize?`), describe(first));
  const back = await br.request(first.location);
  assert.equal(back.status, 302, describe(back));
  return { br, callback: await br.request(back.location), first };
}

test('the rogue provider\'s valid tokens (RS256, ES256, EdDSA) are accepted, so its refusals below mean something; rotated keys are refetched', async () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA']) {
    rogue.defect = null;
    rogue.alg = alg;
    const { br, callback } = await rogueSignIn();
    assert.equal(callback.status, 302, `${alg}: ${describe(callback)}`);
    const r = await br.request(url('rogue', '/in'));
    assert.equal(r.status, 200, `${alg}: ${describe(r)}`);
    assert.equal(r.json.headers['x-auth-sub'], alice.sub);
    const tr = rogue.tokenRequests[rogue.tokenRequests.length - 1];
    assert.equal(tr.auth, 'client_secret_basic');
    assert.ok(tr.ok, tr.error);
  }
  rogue.alg = 'RS256';
  const before = rogue.jwksFetches;
  rogue.rotate();
  await eventually(async () => {
    const { callback } = await rogueSignIn();
    return callback.status === 302;
  }, 40000, 2000, 'a sign-in with keys the edge has not seen (JWKS refetched on an unknown kid)');
  assert.ok(rogue.jwksFetches > before, 'the edge fetched the JWKS again');
});

// The reason the edge logs for each (a `reason` field of its log line).
const DEFECTS = {
  wrong_aud: /\baud\b/,
  wrong_iss: /\biss\b/,
  alg_none: /\balg\b/,
  alg_hs256: /\balg\b/,
  expired: /\bexp\b|expired/,
  iat_future: /\biat\b|future/,
  wrong_nonce: /\bnonce\b/,
  no_nonce: /\bnonce\b/,
  unknown_key: /\bkid\b|\bkey\b/,
  bad_signature: /signature/,
  multi_aud_no_azp: /\bazp\b/,
  wrong_azp: /\bazp\b/,
};

for (const [defect, reason] of Object.entries(DEFECTS)) {
  test(`an ID token with ${defect.replace(/_/g, ' ')} is refused: 401 sign_in_failed, no session, the reason logged without the token`, async () => {
    rogue.defect = defect;
    rogue.alg = 'RS256';
    const mark = edge.proc.mark();
    const bmark = bk.requests.length;
    const { br, callback } = await rogueSignIn();
    const tr = rogue.tokenRequests[rogue.tokenRequests.length - 1];
    assert.ok(tr.ok && tr.defect === defect, `the edge exchanged the code and got the ${defect} token: ${JSON.stringify(tr)}`);
    checkPage(callback, 401, 'sign_in_failed');
    assert.ok(!br.jar.get(host('rogue'), SESSION), 'no session cookie');
    const again = await br.request(url('rogue', '/'));
    assert.equal(again.status, 302, 'still signed out');
    assert.equal(bk.requests.length, bmark, 'nothing reached the backend');
    await eventually(() => edge.proc.lines.slice(mark).some((l) => typeof l.reason === 'string' && reason.test(l.reason)),
      3000, 50, `a log line whose reason matches ${reason}:\n${edgeLog(mark)}`);
    const code = new URL(callback.url).searchParams.get('code');
    assert.ok(!edgeLog(mark).includes(code), 'the code is not logged');
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(edgeLog(mark)), 'no JWT in the log');
    rogue.defect = null;
  });
}

test('discovery and JWKS are cached: tokens with unknown kids do not make the edge refetch the key set each time (rate limit)', async () => {
  rogue.alg = 'RS256';
  rogue.defect = 'unknown_key';
  const d0 = rogue.discoveryFetches;
  const j0 = rogue.jwksFetches;
  for (let i = 0; i < 6; i++) {
    const { callback } = await rogueSignIn();
    assert.equal(callback.status, 401, describe(callback));
  }
  assert.ok(rogue.jwksFetches - j0 <= 1, `at most one JWKS refetch for 6 unknown kids in a row, got ${rogue.jwksFetches - j0}`);
  assert.equal(rogue.discoveryFetches, d0, 'the discovery document is not fetched per sign-in');
  rogue.defect = null;
  const { callback } = await rogueSignIn();
  assert.equal(callback.status, 302, `a valid token right after: ${describe(callback)}`);
});

test('the 60 s clock skew: exp 30 s ago and iat 30 s ahead are accepted; several audiences with azp = client_id too', async () => {
  for (const defect of ['exp_in_skew', 'iat_in_skew', 'aud_list_azp']) {
    rogue.defect = defect;
    const { br, callback } = await rogueSignIn();
    assert.equal(callback.status, 302, `${defect}: ${describe(callback)}`);
    assert.equal((await br.request(url('rogue', '/in'))).status, 200, defect);
  }
  rogue.defect = null;
});

test('the token endpoint misbehaving (HTML, HTTP 500, no id_token): 401 sign_in_failed, no session, the edge stays up', async () => {
  for (const mode of ['garbage', 'error500', 'no_id_token']) {
    rogue.tokenMode = mode;
    const { br, callback } = await rogueSignIn();
    assert.equal(rogue.tokenRequests[rogue.tokenRequests.length - 1].mode, mode);
    assert.ok([401, 502, 503].includes(callback.status), `${mode}: ${describe(callback)}`);
    if (callback.status === 401) checkPage(callback, 401, 'sign_in_failed');
    assert.ok(!br.jar.get(host('rogue'), SESSION), `${mode}: no session`);
  }
  rogue.tokenMode = null;
  const { callback } = await rogueSignIn();
  assert.equal(callback.status, 302, describe(callback));
});

test('a browser that leaves during a hanging token exchange: the edge cancels it and stays healthy', async () => {
  rogue.tokenMode = 'hang';
  const br = new Browser(ca);
  const first = await br.request(url('rogue', '/'));
  const back = await br.request(first.location);
  const n = rogue.tokenRequests.length;
  await assert.rejects(httpRequest(back.location, {
    ca, headers: { cookie: br.jar.header(new URL(back.location)) }, timeoutMs: 1500,
  }), /no answer/);
  await eventually(() => rogue.tokenRequests.length > n, 5000, 50, 'the edge asked the token endpoint');
  rogue.tokenMode = null;
  rogue.release();
  await sleep(300);
  assert.ok(edge.proc.running(), 'the edge is running');
  assert.ok(await site.client.healthy(), 'and healthy');
  const { callback } = await rogueSignIn();
  assert.equal(callback.status, 302, `a sign-in afterwards: ${describe(callback)}`);
});

test('claims with line breaks never become header lines; hundreds of groups the app does not name stay out of the cookie', async () => {
  const saved = rogue.user;
  rogue.user = {
    ...alice, sub: 'u-mallory', email: 'mallory@example.com', name: 'Mallory\r\nX-Injected: 1',
    groups: Array.from({ length: 300 }, (_, i) => `group-with-a-long-name-${String(i).padStart(4, '0')}`),
  };
  try {
    const { br, callback } = await rogueSignIn();
    assert.equal(callback.status, 302, describe(callback));
    const c = br.jar.get(host('rogue'), SESSION);
    assert.ok(c && c.value.length < 4000, `the session cookie stays small: ${c && c.value.length}`);
    const r = await br.request(url('rogue', '/m'));
    assert.equal(r.status, 200, describe(r));
    const names = r.json.raw.map(([k]) => k.toLowerCase());
    assert.ok(!names.includes('x-injected'), `no injected header: ${JSON.stringify(r.json.raw)}`);
    assert.ok(!(r.json.headers['x-auth-name'] || '').includes('\n'), 'no line break in a header value');
    assert.equal(r.json.headers['x-auth-email'], 'mallory@example.com');
    const { claims } = await verifyAssertion(r.json.headers['x-portico-assertion'], host('rogue'));
    assert.equal(claims.sub, 'u-mallory');
    assert.ok((claims.groups || []).length === 0, `no groups the assignment does not name: ${JSON.stringify(claims.groups)}`);
  } finally {
    rogue.user = saved;
  }
});

test('an ID token saying email_verified false: the email is not used (no assignment by email, no sso header, not in the assertion, the session or /me); the access log names the sub', async () => {
  const saved = rogue.user;
  rogue.defect = null;
  rogue.alg = 'RS256';
  try {
    rogue.user = { ...alice, email_verified: false };
    const mark = bk.requests.length;
    // roguemail admits alice by email only.
    const m = await rogueSignIn(new Browser(ca), '/', 'roguemail');
    assert.equal(m.callback.status, 302, `the sign-in itself succeeds: ${describe(m.callback)}`);
    const denied = await m.br.request(url('roguemail', '/in'));
    checkPage(denied, 403, 'not_assigned');
    assert.ok(!denied.text.includes(alice.email), `the page does not show the unverified address: ${denied.text}`);
    assert.equal(bk.requests.length, mark, 'nothing reached the backend');
    assert.equal((await accessLine(denied)).user, alice.sub, 'the access log names the sub instead');
    const me = await m.br.request(url('roguemail', '/.portico/me'));
    assert.equal(me.status, 200, describe(me));
    assert.equal(me.json.sub, alice.sub);
    assert.equal(me.json.email, null, `no email in the session: ${me.text}`);
    const sc = m.br.jar.get(host('roguemail'), SESSION).value;
    const opened = openCookie(edge.stateDir, 'session', [`${host('roguemail')}:${edge.port}`, host('roguemail')], sc);
    assert.ok(opened, 'the session cookie opens');
    assert.ok(!JSON.stringify(opened.payload).includes(alice.email), `the session does not carry it: ${JSON.stringify(opened.payload)}`);
    // rogue admits everyone: in, but without the email.
    const e = await rogueSignIn(new Browser(ca), '/', 'rogue');
    assert.equal(e.callback.status, 302, describe(e.callback));
    const r = await e.br.request(url('rogue', '/in'));
    assert.equal(r.status, 200, describe(r));
    assert.equal(r.json.headers['x-auth-sub'], alice.sub);
    assert.equal(r.json.headers['x-auth-name'], alice.name);
    assert.equal(r.json.headers['x-auth-email'], undefined, 'no email header');
    const { claims } = await verifyAssertion(r.json.headers['x-portico-assertion'], host('rogue'));
    assert.equal(claims.sub, alice.sub);
    assert.equal(claims.email, undefined, `no email in the assertion: ${JSON.stringify(claims)}`);
    assert.equal((await accessLine(r)).user, alice.sub);
    // Control: a verified address (true) and one without the claim are used.
    for (const verified of [true, undefined]) {
      rogue.user = verified === undefined ? { ...alice } : { ...alice, email_verified: verified };
      const ok = await rogueSignIn(new Browser(ca), '/', 'roguemail');
      assert.equal(ok.callback.status, 302, describe(ok.callback));
      const inside = await ok.br.request(url('roguemail', '/in'));
      assert.equal(inside.status, 200, `email_verified ${verified}: assigned by email: ${describe(inside)}`);
      assert.equal(inside.json.headers['x-auth-email'], alice.email);
      assert.equal((await accessLine(inside)).user, alice.email);
    }
  } finally {
    rogue.user = saved;
  }
});

test('sign-ins started over and over on one host keep only the newest four login cookies; the oldest one\'s callback is refused, the newest completes', async () => {
  rogue.defect = null;
  const br = new Browser(ca);
  const firsts = [];
  for (let i = 0; i < 7; i++) {
    const r = await br.request(url('rogue', `/again/${i}`));
    assert.equal(r.status, 302, describe(r));
    loginCookie(r);
    firsts.push(r);
    const names = br.jar.names(host('rogue')).filter(isLogin);
    assert.equal(names.length, Math.min(i + 1, 4), `at most four sign-ins in progress: ${names}`);
  }
  const kept = br.jar.names(host('rogue')).filter(isLogin).sort();
  assert.deepEqual(kept, firsts.slice(-4).map((r) => loginCookie(r).name).sort(), 'the newest four are kept');
  const last = setCookies(firsts[6]);
  assert.ok(last.some((c) => c.name === loginCookie(firsts[2]).name && c.maxAge === 0), `the oldest is cleared by the next sign-in: ${describe(firsts[6])}`);
  // The oldest sign-in comes back from the provider: its cookie is gone, 400.
  const oldBack = await br.request(firsts[0].location);
  assert.equal(oldBack.status, 302, describe(oldBack));
  const old = await br.request(oldBack.location);
  assert.equal(old.status, 400, `a sign-in whose cookie was cleared: ${describe(old)}`);
  assert.ok(!br.jar.get(host('rogue'), SESSION), 'no session');
  // The newest completes.
  const back = await br.request(firsts[6].location);
  const done = await br.request(back.location);
  assert.equal(done.status, 302, describe(done));
  assert.equal(samePath(done), '/again/6');
  assert.equal((await br.request(url('rogue', '/again/in'))).status, 200);
});

test('a discovery document naming another issuer (mix-up) is refused: sign-in unavailable', async () => {
  const r = await new Browser(ca).request(url('mixup', '/'));
  checkPage(r, 503, 'auth_unavailable');
  assert.ok(mixup.discoveryFetches >= 1, 'the edge did fetch the discovery document');
  await eventually(() => edge.proc.lines.some((l) => /issuer/.test(l._raw) && /mixup|127\.0\.0\.5/.test(l._raw)), 3000, 50, 'a log line about the issuer');
});

// ---- availability ----

test('the identity provider unreachable: 503 auth_unavailable for a new sign-in; once it answers, sign-in works; a session outlives the provider going down again', async () => {
  const br = new Browser(ca);
  const r = await br.request(url('flaky', '/'));
  checkPage(r, 503, 'auth_unavailable');
  flaky.down = false;
  await eventually(async () => (await new Browser(ca).request(url('flaky', '/'))).status === 302, 40000, 1000, 'sign-in available once the provider answers');
  const first = await br.request(url('flaky', '/in'));
  assert.equal(first.status, 302, describe(first));
  const back = await br.request(first.location);
  const cb = await br.request(back.location);
  assert.equal(cb.status, 302, describe(cb));
  assert.equal((await br.request(url('flaky', '/in'))).status, 200);
  flaky.down = true;
  for (let i = 0; i < 3; i++) {
    const ok = await br.request(url('flaky', `/still/${i}`));
    assert.equal(ok.status, 200, `an existing session keeps working: ${describe(ok)}`);
    assert.equal(ok.json.headers['x-auth-email'], bob.email);
  }
  flaky.down = false;
});

test('the portal on the edge host lists the apps alice is assigned to', async () => {
  const br = new Browser(ca);
  const first = await br.request(`https://${EDGE_HOST}:${edge.port}/`);
  assert.equal(first.status, 302, describe(first));
  assert.ok(first.location.startsWith(`${idp.issuer}/auth?`), describe(first));
  const redirectUri = new URL(first.location).searchParams.get('redirect_uri');
  assert.match(redirectUri, new RegExp(`^https://${EDGE_HOST}(:${edge.port})?/\\.portico/callback$`));
  const flow = await signIn(br, `https://${EDGE_HOST}:${edge.port}/`, alice, {
    callback: false, appOrigin: new URL(redirectUri).origin,
  });
  assert.ok(flow.callbackUrl, 'back from the provider');
  const cbu = new URL(flow.callbackUrl);
  cbu.port = String(edge.port); // the edge host's public port maps to the test port
  const cb = await br.request(cbu.toString());
  assert.equal(cb.status, 302, describe(cb));
  const home = await br.request(`https://${EDGE_HOST}:${edge.port}/`);
  assert.equal(home.status, 200, describe(home));
  for (const a of ['app', 'admins', 'everyone']) assert.ok(home.text.includes(host(a)), `My apps lists ${a}: ${home.text.slice(0, 2000)}`);
  assert.ok(!home.text.includes(host('byuser')), 'not byuser (carol only)');
});

test('sessions and the assertion key survive an edge restart; the key files are private', async () => {
  const { br } = await signedIn('app', bob);
  const before = await br.request(url('app', '/r1'));
  const kid = JSON.parse(Buffer.from(before.json.headers['x-portico-assertion'].split('.')[0], 'base64url')).kid;
  const modes = treeModes(edge.stateDir);
  for (const f of ['session_keys.json', 'assertion_key.json']) {
    assert.equal(modes[f], 0o600, `${f} is 0600: ${JSON.stringify(modes)}`);
  }
  await edge.stop();
  await edge.start();
  await edge.waitActive(site.conn.id, site.conn.tunnelCount, 20000);
  const after = await br.request(url('app', '/r2'));
  assert.equal(after.status, 200, `the session cookie still works: ${describe(after)}`);
  const { header } = await verifyAssertion(after.json.headers['x-portico-assertion'], host('app'));
  assert.equal(header.kid, kid, 'the same assertion key');
});

test('the provider down: an existing session keeps working', async () => {
  const { br } = await signedIn('app', bob);
  await idp.stop();
  const r = await br.request(url('app', '/after-idp'));
  assert.equal(r.status, 200, describe(r));
  assert.equal(r.json.headers['x-auth-email'], bob.email);
  const me = await br.request(url('app', '/.portico/me'));
  assert.equal(me.status, 200, describe(me));
  noSecretsLogged({ 'client secret': idp.clients[0].client_secret, 'post client secret': idp.clients[1].client_secret });
});
