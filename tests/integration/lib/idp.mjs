// SPDX-License-Identifier: MIT
// The test identity provider for the OIDC tests (tests/idp/provider.mjs, npm oidc-provider)
// started through the harness, so that cleanup() stops it like any other process; its test
// users; a confidential client per test edge (secret in a file for edge.json's
// client_secret_file); the edge.json `idps` entry that points at it; startOidcSite(), an
// edge with identity providers and one connector; and a client-side cookie jar with a
// redirect-following HTTP client (`Browser`) that talks to the edge (HTTPS with the test
// CA, *.localhost on 127.0.0.1) and to the providers (plain HTTP on loopback).
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Proc, Edge, Connector, EDGE_HOST, tempDir, freePort, eventually, SRC,
} from './harness.mjs';
import { publishCerts, PUBLISH_LIMITS, APPS_DOMAIN, AppClient } from './publish.mjs';

/** Where the provider runs: not 127.0.0.1, whose cookies the edge's hosts would share. */
export const IDP_HOST = '127.0.0.2';

/** The provider's script and the npm packages it needs (scripts/deps.sh runs npm ci). */
export const PROVIDER = join(SRC, 'tests', 'idp', 'provider.mjs');
export const haveProvider = () => existsSync(join(SRC, 'node_modules', 'oidc-provider', 'package.json'));

/** The test users: two in groups, one in none. */
export const USERS = {
  alice: {
    username: 'alice', password: 'alice-Pa55word!', sub: 'u-alice-0001', email: 'alice@example.com',
    name: 'Alice Anders', groups: ['staff', 'admins'],
  },
  bob: {
    username: 'bob', password: 'bob-Pa55word!', sub: 'u-bob-0002', email: 'bob@example.com',
    name: 'Bob Berg', groups: ['staff'],
  },
  carol: {
    username: 'carol', password: 'carol-Pa55word!', sub: 'u-carol-0003', email: 'carol@example.com',
    name: 'Carol Carter', groups: [],
  },
};

/**
 * A confidential client for an edge on `port`, with redirect URIs for every host in `hosts`
 * (app hosts and the edge host): https://<host>:<port>/.portico/callback, and the app roots as
 * post-logout redirect URIs. The secret has characters that client_secret_basic must
 * form-urlencode (RFC 6749 §2.3.1).
 */
export function edgeClient({ clientId = `portico-${randomBytes(3).toString('hex')}`, port, hosts, method = 'client_secret_basic', alg = null }) {
  const c = {
    client_id: clientId,
    client_secret: `s3:cr+t/${randomBytes(12).toString('base64url')} %&=`,
    token_endpoint_auth_method: method,
    redirect_uris: hosts.map((h) => `https://${h}:${port}/.portico/callback`),
    post_logout_redirect_uris: hosts.map((h) => `https://${h}:${port}/`),
  };
  if (alg) c.id_token_signed_response_alg = alg;
  return c;
}

/** One running test identity provider. */
export class Idp {
  constructor({ dir, port, host = IDP_HOST, clients, users = Object.values(USERS) }) {
    this.dir = dir || tempDir('idp');
    this.host = host;
    this.port = port;
    this.clients = clients;
    this.users = users;
    this.proc = null;
    this.runs = [];
  }

  get issuer() {
    return `http://${this.host}:${this.port}`;
  }

  /** Writes the users and clients files and starts the provider; resolves once discovery answers. */
  async start({ timeoutMs = 15000 } = {}) {
    if (!this.port) this.port = await freePort(this.host);
    const usersFile = join(this.dir, 'users.json');
    const clientsFile = join(this.dir, 'clients.json');
    writeFileSync(usersFile, JSON.stringify(this.users, null, 2));
    writeFileSync(clientsFile, JSON.stringify(this.clients, null, 2));
    const p = new Proc(`idp#${this.runs.length + 1}`, process.execPath, [PROVIDER, '--issuer', this.issuer,
      '--port', String(this.port), '--host', this.host, '--users', usersFile, '--clients', clientsFile], { cwd: SRC });
    this.proc = p;
    this.runs.push(p);
    await p.waitLog('idp_ready', timeoutMs);
    await eventually(async () => {
      const r = await httpRequest(`${this.issuer}/.well-known/openid-configuration`);
      return r.status === 200 && r.json && r.json.issuer === this.issuer;
    }, timeoutMs, 50, `discovery of ${this.issuer}`);
    return p;
  }

  async stop() {
    if (this.proc) await this.proc.stop();
  }

  /** The secret of client id, written to a file (0600) for edge.json's client_secret_file. */
  secretFile(clientId) {
    const c = this.clients.find((x) => x.client_id === clientId);
    const f = join(this.dir, `${clientId}.secret`);
    writeFileSync(f, `${c.client_secret}\n`, { mode: 0o600 });
    return f;
  }

  /** The edge.json `idps` entry for client id (named `name`). */
  edgeEntry(name, clientId, { scopes = ['openid', 'email', 'profile', 'groups'] } = {}) {
    const c = this.clients.find((x) => x.client_id === clientId);
    return {
      name, issuer: this.issuer, client_id: clientId, client_secret_file: this.secretFile(clientId),
      token_endpoint_auth_method: c.token_endpoint_auth_method, scopes, groups_claim: 'groups',
    };
  }
}

/**
 * An edge with identity providers and a connector in the Default group. `idps(port)` returns
 * {idps: [edge.json entries], servers: [things with start() to run before the edge]}; it is
 * called with the edge's port once that is known, so that the clients' redirect URIs name it.
 * Resolves {edge, certs, conn, client, dir}.
 */
export async function startOidcSite({ idps, session = null, limits = {}, logLevel = 'info', extra = {} }) {
  const dir = tempDir('oidc');
  const certs = publishCerts(join(dir, 'certs'));
  const port = await freePort();
  const { idps: entries, servers = [] } = await idps(port);
  for (const s of servers) await s.start();
  const cfgExtra = { idps: entries, ...extra };
  if (session) cfgExtra.session = session;
  const edge = await Edge.create({ dir, certs, port, limits: { ...PUBLISH_LIMITS, ...limits }, logLevel, extra: cfgExtra });
  await edge.start();
  const conn = new Connector(edge, 'conn', { logLevel });
  await conn.registerOk();
  conn.start();
  await edge.waitActive(conn.id, conn.tunnelCount, 15000);
  return { edge, certs, conn, client: new AppClient(edge), dir };
}

/** host:port of the edge for an app name (or the edge host itself). */
export const hostOf = (name) => (name === EDGE_HOST ? EDGE_HOST : `${name}.${APPS_DOMAIN}`);

// ---------------------------------------------------------------------------------------
// HTTP with a cookie jar, redirects followed by hand

function parseSetCookie(line, url) {
  const parts = line.split(';').map((s) => s.trim());
  const [nv, ...attrs] = parts;
  const i = nv.indexOf('=');
  const c = {
    name: nv.slice(0, i).trim(), value: nv.slice(i + 1).trim(), host: url.hostname, path: '/',
    secure: false, httpOnly: false, sameSite: null, maxAge: null, expires: null, domain: null, raw: line,
  };
  const defPath = url.pathname.lastIndexOf('/') > 0 ? url.pathname.slice(0, url.pathname.lastIndexOf('/')) : '/';
  c.path = defPath;
  for (const a of attrs) {
    const j = a.indexOf('=');
    const k = (j < 0 ? a : a.slice(0, j)).trim().toLowerCase();
    const v = j < 0 ? '' : a.slice(j + 1).trim();
    if (k === 'path') c.path = v || '/';
    else if (k === 'secure') c.secure = true;
    else if (k === 'httponly') c.httpOnly = true;
    else if (k === 'samesite') c.sameSite = v;
    else if (k === 'max-age') c.maxAge = Number(v);
    else if (k === 'expires') c.expires = Date.parse(v);
    else if (k === 'domain') c.domain = v;
  }
  return c;
}

/** Splits a raw response's Set-Cookie values into parsed cookies (for flag checks). */
export function setCookies(res) {
  return (res.raw || []).filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => parseSetCookie(v, res.url));
}

/** A cookie jar per host name (ports share cookies, as in browsers). */
export class CookieJar {
  constructor() {
    this.cookies = []; // parsed cookies with `host`
  }

  store(res) {
    for (const c of setCookies(res)) {
      this.cookies = this.cookies.filter((x) => !(x.host === c.host && x.name === c.name && x.path === c.path));
      const expired = (c.maxAge !== null && c.maxAge <= 0) || (c.expires !== null && c.expires < Date.now());
      if (!expired) this.cookies.push({ ...c, storedAt: Date.now() });
    }
  }

  header(url) {
    const now = Date.now();
    const list = this.cookies.filter((c) => c.host === url.hostname
      && (url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      && (!c.secure || url.protocol === 'https:')
      && (c.maxAge === null || c.storedAt + c.maxAge * 1000 > now));
    return list.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  get(host, name) {
    return this.cookies.find((c) => c.host === host && c.name === name);
  }

  set(host, name, value, path = '/') {
    this.cookies = this.cookies.filter((c) => !(c.host === host && c.name === name));
    this.cookies.push({ host, name, value, path, secure: false, maxAge: null, storedAt: Date.now() });
  }

  delete(host, name) {
    this.cookies = this.cookies.filter((c) => !(c.host === host && c.name === name));
  }

  names(host) {
    return this.cookies.filter((c) => c.host === host).map((c) => c.name);
  }
}

/**
 * One HTTP(S) request; resolves {url, status, headers, raw, body, text, json, location}.
 * https URLs go to 127.0.0.1:port with SNI = the URL's host and the CA given; http URLs to
 * their own address. Never follows redirects.
 */
export function httpRequest(urlStr, { method = 'GET', headers = {}, body = null, ca = null, timeoutMs = 20000 } = {}) {
  const url = new URL(urlStr);
  const isTls = url.protocol === 'https:';
  const port = Number(url.port || (isTls ? 443 : 80));
  const opts = {
    method, path: url.pathname + url.search, agent: false,
    host: url.hostname.endsWith('localhost') ? '127.0.0.1' : url.hostname, port,
    headers: { host: url.host, ...headers },
  };
  if (isTls) {
    opts.servername = url.hostname;
    if (ca) opts.ca = ca;
  }
  const mod = isTls ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(opts, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        const raw = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) raw.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
        let json;
        try {
          json = JSON.parse(b.toString('utf8'));
        } catch { /* not JSON */ }
        const location = res.headers.location ? new URL(res.headers.location, url).toString() : null;
        resolve({ url, method, status: res.statusCode, headers: res.headers, raw, body: b, text: b.toString('utf8'), json, location });
      });
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlStr}: no answer within ${timeoutMs} ms`)));
    if (body !== null) req.end(body);
    else req.end();
  });
}

/** Short description of a response for assertion messages. */
export function describe(r) {
  const hdrs = r.raw.map(([k, v]) => `${k}: ${k.toLowerCase() === 'set-cookie' ? v.replace(/=([^;]{12})[^;]*/, '=$1…') : v}`).join('\n  ');
  return `${r.method} ${r.url} -> ${r.status}\n  ${hdrs}\n${r.text.slice(0, 800)}`;
}

/** A user agent: a cookie jar and the test CA; follows redirects only when asked to. */
export class Browser {
  constructor(ca) {
    this.ca = ca;
    this.jar = new CookieJar();
    this.history = [];
  }

  async request(url, { method = 'GET', headers = {}, body = null, form = null, cookies = true } = {}) {
    const u = new URL(url);
    const h = { ...headers };
    const ck = cookies ? this.jar.header(u) : '';
    if (ck && !Object.keys(h).some((k) => k.toLowerCase() === 'cookie')) h.cookie = ck;
    let b = body;
    if (form) {
      b = new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
      method = 'POST';
    }
    const r = await httpRequest(url, { method, headers: h, body: b, ca: this.ca });
    this.jar.store(r);
    this.history.push(r);
    return r;
  }

  /**
   * Requests url and follows redirects (GET after 301/302/303) until an answer that is not a
   * redirect, or until stop(response) is true; at most `max` hops. Resolves the list of
   * responses, the last one being where it stopped.
   */
  async follow(url, { stop = () => false, max = 12, ...opts } = {}) {
    const chain = [];
    let r = await this.request(url, opts);
    chain.push(r);
    while (r.status >= 300 && r.status < 400 && r.location && !stop(r)) {
      if (chain.length > max) throw new Error(`more than ${max} redirects:\n${chain.map((x) => `${x.status} ${x.url}`).join('\n')}`);
      r = await this.request(r.location);
      chain.push(r);
    }
    return chain;
  }
}

/** The form action of the provider's login page (absolute), or null. */
export function loginFormAction(r) {
  const m = /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(r.text);
  return m ? new URL(m[1].replace(/&amp;/g, '&'), r.url).toString() : null;
}

/**
 * The sign-in of `user` at an oidc app, step by step, as a browser would do it: the app's URL
 * → 302 to the provider → its login form → POST username and password → (consent) → the
 * edge's callback. When the browser still has a session at the provider, the provider sends
 * it straight back (no login form). Stops before the callback is requested unless `callback`
 * is true. `user` null: stop at the login page. Resolves {first (the edge's first answer),
 * authorize (URL), loginPage, afterLogin (chain), callbackUrl, callback (the edge's answer
 * to it, when requested), failed (where the provider stopped instead)}. `appOrigin` is where
 * the provider's redirect is expected (default: the origin of appUrl).
 */
export async function signIn(br, appUrl, user, { password = user && user.password, callback = true, firstHeaders = {}, appOrigin = new URL(appUrl).origin } = {}) {
  const out = {};
  out.first = await br.request(appUrl, { headers: firstHeaders });
  if (out.first.status !== 302 || !out.first.location) throw new Error(`expected a redirect to the provider:\n${describe(out.first)}`);
  out.authorize = out.first.location;
  const atApp = (r) => r.status >= 300 && r.status < 400 && r.location && new URL(r.location).origin === appOrigin;
  let chain = await br.follow(out.authorize, { stop: atApp });
  let last = chain[chain.length - 1];
  if (!atApp(last)) {
    out.loginPage = last;
    const action = loginFormAction(last);
    if (last.status !== 200 || !action) throw new Error(`expected the provider's login page:\n${describe(last)}`);
    if (user === null) return out;
    chain = await br.follow(action, { form: { username: user.username, password }, stop: atApp });
    out.afterLogin = chain;
    last = chain[chain.length - 1];
    if (!atApp(last)) {
      out.failed = last;
      return out;
    }
  }
  out.callbackUrl = last.location;
  if (callback) out.callback = await br.request(out.callbackUrl);
  return out;
}

/** Reads a file as Buffer (the CA for Browser). */
export const readCa = (path) => readFileSync(path);
