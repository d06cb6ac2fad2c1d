// SPDX-License-Identifier: MIT
// Portico's test identity provider: a real OpenID provider (npm oidc-provider) on loopback,
// made as strict as a production one. PKCE S256 is required of every client, each client's
// registered token_endpoint_auth_method is enforced (client_secret_basic and
// client_secret_post are not interchangeable), the email, name and groups claims are in the
// ID token, sign-in goes through its own login page that checks real passwords, consent is
// granted automatically, and RP-initiated logout is on. Users and clients come from JSON
// files; one JSON line per event goes to stdout, the first being
// {"event":"idp_ready","issuer":...} once it serves.
//
// Usage: node tests/idp/provider.mjs --issuer http://127.0.0.2:PORT --port PORT
//          [--host 127.0.0.2] --clients clients.json --users users.json
//   users.json:   [{"username", "password", "sub"?, "email"?, "name"?, "groups"?: [..]}]
//   clients.json: [oidc-provider client metadata: client_id, client_secret, redirect_uris,
//                  post_logout_redirect_uris?, token_endpoint_auth_method?,
//                  id_token_signed_response_alg? ("RS256" default, or "ES256")]
import http from 'node:http';
import { readFileSync } from 'node:fs';
import * as nodeCrypto from 'node:crypto';
import { parse as parseQuery } from 'node:querystring';
import Provider from 'oidc-provider';

function usage(msg) {
  process.stderr.write(`provider.mjs: ${msg}\nusage: node provider.mjs --issuer URL --port PORT [--host ADDR] --clients FILE --users FILE\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { host: '127.0.0.2' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!['--issuer', '--port', '--host', '--clients', '--users'].includes(k)) usage(`unknown argument ${k}`);
    if (v === undefined) usage(`${k} needs a value`);
    out[k.slice(2)] = v;
    i++;
  }
  for (const k of ['issuer', 'port', 'clients', 'users']) if (!out[k]) usage(`--${k} is required`);
  out.port = Number(out.port);
  if (!Number.isInteger(out.port) || out.port <= 0 || out.port > 65535) usage('--port: not a port number');
  return out;
}

const args = parseArgs(process.argv.slice(2));
const { generateKeyPairSync, randomBytes, timingSafeEqual, createHash } = nodeCrypto;

// oidc-provider 9 calls crypto.hash (Node.js 20.12 and later).
if (typeof nodeCrypto.hash !== 'function') {
  process.stderr.write(`provider.mjs: Node.js ${process.version} is too old: oidc-provider 9 needs 20.12 or later\n`);
  process.exit(1);
}

function log(obj) {
  process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), ...obj })}\n`);
}

function readJsonFile(path, what) {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8'));
    if (!Array.isArray(v)) throw new Error('expected a JSON array');
    return v;
  } catch (e) {
    return usage(`${what} ${path}: ${e.message}`);
  }
}

const users = readJsonFile(args.users, '--users');
const clients = readJsonFile(args.clients, '--clients').map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));
const clientById = new Map(clients.map((c) => [c.client_id, c]));
const userByName = new Map(users.map((u) => [u.username, u]));
const userBySub = new Map(users.map((u) => [u.sub || u.username, u]));

// Signing keys, fresh each start: RS256 (the default) and ES256 (for clients that ask).
function signingKey(type, opts, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const kidTag = randomBytes(4).toString('hex');
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256', `rs-${kidTag}`),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256', `es-${kidTag}`),
  ],
};

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;background:#eef1f5;margin:0}main{max-width:22rem;margin:4rem auto;
background:#fff;padding:1.5rem 2rem;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.2)}
h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00020}</style></head>
<body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid, clientId, { error = null, username = '' } = {}) {
  return page('Portico test identity provider: sign in', `
<p>Sign in to continue to <b>${esc(clientId)}</b>.</p>
${error ? `<p class="error" id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" value="${esc(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit" id="submit">Sign in</button>
</form>`);
}

// Constant-time comparison of the SHA-256 digests of two strings.
function sameSecret(a, b) {
  const h = (s) => createHash('sha256').update(String(s)).digest();
  return timingSafeEqual(h(a), h(b));
}

const configuration = {
  clients,
  jwks,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  responseTypes: ['code'],
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // The claims of the granted scopes go into the ID token, not only to userinfo.
  conformIdTokenClaims: false,
  allowOmittingSingleRegisteredRedirectUri: false,
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `<p>Sign out of the Portico test identity provider?</p>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout" id="logout-yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" id="logout-no">No, stay signed in</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<p id="signed-out">You are signed out of the Portico test identity provider.</p>');
      },
    },
  },
  interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Sign-in error', Object.entries(out).map(([k, v]) => `<p><b>${esc(k)}</b>: <span class="${esc(k)}">${esc(v)}</span></p>`).join(''));
  },
  findAccount: async (ctx, sub) => {
    const u = userBySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      async claims() {
        const c = { sub };
        if (u.email !== undefined) {
          c.email = u.email;
          c.email_verified = true;
        }
        if (u.name !== undefined) c.name = u.name;
        if (u.groups !== undefined) c.groups = u.groups;
        return c;
      },
    };
  },
  ttl: {
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    IdToken: 600,
    AccessToken: 600,
    AuthorizationCode: 60,
  },
};

const provider = new Provider(args.issuer, configuration);

provider.on('grant.error', (ctx, err) => log({ event: 'token_error', client: ctx.oidc?.client?.clientId, error: err.error || err.message, description: err.error_description }));
provider.on('authorization.error', (ctx, err) => log({ event: 'authorization_error', error: err.error || err.message, description: err.error_description }));
provider.on('end_session.error', (ctx, err) => log({ event: 'end_session_error', error: err.error || err.message, description: err.error_description }));
provider.on('end_session.success', (ctx) => log({ event: 'end_session', client: ctx.oidc?.client?.clientId }));
provider.on('server_error', (ctx, err) => log({ event: 'server_error', error: err.message }));
provider.on('grant.success', (ctx) => log({ event: 'token_issued', client: ctx.oidc?.client?.clientId }));

// Strict client authentication at the token endpoint: oidc-provider accepts
// client_secret_basic and client_secret_post for either registration; a real provider does
// not. The body is read here (oidc-provider then uses the parsed copy).
provider.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || ctx.path !== '/token') return next();
  const chunks = [];
  let n = 0;
  for await (const c of ctx.req) {
    n += c.length;
    if (n > 64 * 1024) {
      ctx.status = 413;
      ctx.body = { error: 'invalid_request', error_description: 'request body too large' };
      return undefined;
    }
    chunks.push(c);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  ctx.req.body = raw;
  const body = ctx.is('application/x-www-form-urlencoded') ? parseQuery(raw) : {};
  const auth = ctx.get('authorization');
  let used = null;
  let clientId = typeof body.client_id === 'string' ? body.client_id : null;
  if (/^basic /i.test(auth)) {
    used = 'client_secret_basic';
    const dec = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) {
      try {
        clientId = decodeURIComponent(dec.slice(0, i).replace(/\+/g, '%20'));
      } catch { /* oidc-provider answers the malformed header */ }
    }
  } else if (body.client_secret !== undefined) {
    used = 'client_secret_post';
  }
  const registered = clientId !== null ? clientById.get(clientId) : undefined;
  if (used && registered && registered.token_endpoint_auth_method !== used) {
    log({ event: 'token_error', client: clientId, error: 'invalid_client', description: `client authentication ${used}, registered ${registered.token_endpoint_auth_method}` });
    ctx.status = 401;
    if (used === 'client_secret_basic') ctx.set('WWW-Authenticate', `Basic realm="${args.issuer}"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'invalid_client', error_description: 'the provided authentication mechanism does not match the registered client authentication method' };
    return undefined;
  }
  return next();
});

function readForm(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      s += d;
      if (s.length > 16384) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(parseQuery(s)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

// The interaction pages: login (username and password), consent (granted at once).
async function interaction(req, res, url) {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(url.pathname);
  if (!m) return send(res, 404, page('Not found', '<p>No such page.</p>'));
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (e) {
    return send(res, 400, page('Sign-in error', `<p class="error">${esc(e.error_description || e.message)}</p>`));
  }
  if (details.uid !== m[1]) return send(res, 400, page('Sign-in error', '<p class="error">interaction mismatch</p>'));
  const { prompt, params } = details;
  if (m[2]) {
    if (req.method !== 'POST') return send(res, 405, page('Method not allowed', ''));
    const form = await readForm(req);
    const u = userByName.get(String(form.username || ''));
    const ok = u !== undefined && sameSecret(u.password, String(form.password || ''));
    if (!ok) {
      log({ event: 'login_failed', username: String(form.username || '') });
      return send(res, 200, loginPage(details.uid, params.client_id, { error: 'Invalid username or password.', username: form.username || '' }));
    }
    const sub = u.sub || u.username;
    log({ event: 'login', username: u.username, sub });
    return provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
  }
  if (req.method !== 'GET') return send(res, 405, page('Method not allowed', ''));
  if (prompt.name === 'login') return send(res, 200, loginPage(details.uid, params.client_id));
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    log({ event: 'consent', client: params.client_id, sub: details.session.accountId });
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, page('Sign-in error', `<p class="error">unsupported prompt ${esc(prompt.name)}</p>`));
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, args.issuer);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((e) => {
      log({ event: 'server_error', error: e.message });
      if (!res.headersSent) send(res, 500, page('Error', '<p>internal error</p>'));
    });
    return;
  }
  callback(req, res);
});

server.on('error', (e) => {
  process.stderr.write(`provider.mjs: ${e.message}\n`);
  process.exit(1);
});
server.listen(args.port, args.host, () => {
  log({ event: 'idp_ready', issuer: args.issuer, host: args.host, port: args.port, clients: clients.map((c) => c.client_id), users: users.length });
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
