// SPDX-License-Identifier: MIT
// A small OpenID "provider" (node:http and node:crypto only) that runs inside the test
// process and hands out ID tokens with a chosen defect, so that the edge's refusals can be
// tested one by one. It serves discovery, a JWKS, an authorization endpoint that redirects
// straight back with a code (no login), and a token endpoint that checks what a real
// provider checks (client authentication by the registered method, redirect_uri, PKCE S256,
// a code used once: a replayed code gets invalid_grant) and answers an ID token shaped by
// `defect`:
//
//   null            a valid token
//   wrong_aud       aud is another client
//   wrong_iss       iss is another issuer
//   alg_none        {"alg":"none"} and an empty signature
//   alg_hs256       HS256 with the RSA public key (PEM) as the HMAC secret
//   expired         exp 10 minutes ago (beyond the 60 s skew)
//   iat_future      iat 10 minutes ahead
//   wrong_nonce     nonce is not the one of the authorization request
//   no_nonce        no nonce at all
//   unknown_key     signed by a key that is not in the JWKS (with a kid of its own)
//   bad_signature   one bit of the signature flipped
//   multi_aud_no_azp  aud [client, other] without azp
//   wrong_azp       aud is the client, azp another client
//   exp_in_skew     (valid) exp 30 s ago, within the 60 s clock skew
//   iat_in_skew     (valid) iat 30 s ahead, within the 60 s clock skew
//   aud_list_azp    (valid) aud [client, other] with azp = client
//
// `tokenMode` breaks the token endpoint's answer instead: 'garbage' (200 with HTML),
// 'error500', 'no_id_token' (200 JSON without id_token), 'hang' (no answer until release());
// `discoveryIssuer` makes discovery name another issuer (an issuer mix-up).
// `alg` picks the signing key of valid tokens: RS256 (default), ES256 or EdDSA. rotate()
// replaces the keys (new kids), as a provider rotating its keys does. The user's claims are
// `user`'s sub, email, name and groups, and its email_verified when it has one.
import http from 'node:http';
import {
  generateKeyPairSync, createSign, createHmac, sign as edSign, createHash, randomBytes, timingSafeEqual,
} from 'node:crypto';
import { parse as parseQuery } from 'node:querystring';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const b64uJson = (o) => b64u(JSON.stringify(o));

function makeKeys(tag) {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  return {
    RS256: { ...rsa, kid: `rs-${tag}` },
    ES256: { ...ec, kid: `es-${tag}` },
    EdDSA: { ...ed, kid: `ed-${tag}` },
  };
}

/** Signs a compact JWS with key k for alg (RS256, ES256 as r||s, EdDSA). */
export function signJws(header, claims, alg, k) {
  const input = `${b64uJson(header)}.${b64uJson(claims)}`;
  let sig;
  if (alg === 'RS256') sig = createSign('sha256').update(input).sign(k.privateKey);
  else if (alg === 'ES256') sig = createSign('sha256').update(input).sign({ key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'EdDSA') sig = edSign(null, Buffer.from(input), k.privateKey);
  else throw new Error(`signJws: ${alg}`);
  return `${input}.${b64u(sig)}`;
}

function jwk(k, alg) {
  return { ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg, use: 'sig' };
}

export class RogueIdp {
  /**
   * client: {client_id, client_secret, token_endpoint_auth_method}; user: the claims
   * {sub, email, name, groups}; host: a loopback address.
   */
  constructor({ client, user, host = '127.0.0.3', alg = 'RS256' }) {
    this.client = client;
    this.user = user;
    this.host = host;
    this.alg = alg;
    this.defect = null;
    this.tokenMode = null;
    this.discoveryIssuer = null;
    this.held = [];
    this.keys = makeKeys(randomBytes(3).toString('hex'));
    this.codes = new Map(); // code -> {params, used}
    this.tokenRequests = []; // {auth, code, ok, error}
    this.authRequests = []; // the authorization requests' parameters
    this.jwksFetches = 0;
    this.discoveryFetches = 0;
    this.down = false; // true: every request is answered 503
    this.sockets = new Set();
    this.server = http.createServer((req, res) => this.handle(req, res).catch((e) => {
      if (!res.headersSent) this.json(res, 500, { error: 'server_error', error_description: e.message });
    }));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get issuer() {
    return `http://${this.host}:${this.port}`;
  }

  async start(port = 0) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port || this.port || 0, this.host, resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  stop() {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  /** Answers the token requests held by tokenMode 'hang' (with a valid token). */
  release() {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }

  /** New signing keys with new kids (the old ones vanish from the JWKS). */
  rotate() {
    this.keys = makeKeys(randomBytes(3).toString('hex'));
  }

  /** The edge.json `idps` entry (secret written by the caller to secretFile). */
  edgeEntry(name, secretFile, { scopes = ['openid', 'email', 'profile'] } = {}) {
    return {
      name, issuer: this.issuer, client_id: this.client.client_id, client_secret_file: secretFile,
      token_endpoint_auth_method: this.client.token_endpoint_auth_method || 'client_secret_basic',
      scopes, groups_claim: 'groups',
    };
  }

  json(res, status, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  async handle(req, res) {
    const url = new URL(req.url, this.issuer);
    if (this.down) return this.json(res, 503, { error: 'temporarily_unavailable' });
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        this.discoveryFetches++;
        return this.json(res, 200, {
          issuer: this.discoveryIssuer || this.issuer,
          authorization_endpoint: `${this.issuer}/authorize`,
          token_endpoint: `${this.issuer}/token`,
          jwks_uri: `${this.issuer}/jwks`,
          end_session_endpoint: `${this.issuer}/logout`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        });
      case '/jwks':
        this.jwksFetches++;
        return this.json(res, 200, { keys: [jwk(this.keys.RS256, 'RS256'), jwk(this.keys.ES256, 'ES256'), jwk(this.keys.EdDSA, 'EdDSA')] });
      case '/authorize':
        return this.authorize(req, res, url);
      case '/token':
        return this.token(req, res);
      default:
        return this.json(res, 404, { error: 'not_found' });
    }
  }

  authorize(req, res, url) {
    const p = Object.fromEntries(url.searchParams);
    this.authRequests.push(p);
    const c = this.client;
    const okRedirect = (c.redirect_uris || []).includes(p.redirect_uri);
    if (p.client_id !== c.client_id || !okRedirect) {
      return this.json(res, 400, { error: 'invalid_request', error_description: 'unknown client or redirect_uri' });
    }
    const back = new URL(p.redirect_uri);
    if (p.response_type !== 'code' || p.code_challenge_method !== 'S256' || !p.code_challenge || !p.state || !p.nonce) {
      back.searchParams.set('error', 'invalid_request');
      back.searchParams.set('state', p.state || '');
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, { params: p, used: false, at: Date.now() });
    back.searchParams.set('code', code);
    back.searchParams.set('state', p.state);
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }

  async token(req, res) {
    let raw = '';
    for await (const d of req) raw += d;
    const body = parseQuery(raw);
    const rec = { auth: null, code: body.code, ok: false, error: null };
    this.tokenRequests.push(rec);
    const fail = (status, error, desc) => {
      rec.error = `${error}: ${desc}`;
      return this.json(res, status, { error, error_description: desc });
    };
    const c = this.client;
    const method = c.token_endpoint_auth_method || 'client_secret_basic';
    let id;
    let secret;
    const auth = req.headers.authorization || '';
    if (/^basic /i.test(auth)) {
      rec.auth = 'client_secret_basic';
      const dec = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const i = dec.indexOf(':');
      const unform = (s) => decodeURIComponent(s.replace(/\+/g, '%20'));
      try {
        id = unform(dec.slice(0, i));
        secret = unform(dec.slice(i + 1));
      } catch {
        return fail(400, 'invalid_request', 'malformed basic credentials');
      }
    } else if (body.client_secret !== undefined) {
      rec.auth = 'client_secret_post';
      id = body.client_id;
      secret = body.client_secret;
    }
    if (rec.auth !== method) return fail(401, 'invalid_client', `authentication ${rec.auth}, registered ${method}`);
    const h = (s) => createHash('sha256').update(String(s)).digest();
    if (id !== c.client_id || !timingSafeEqual(h(secret), h(c.client_secret))) return fail(401, 'invalid_client', 'bad client credentials');
    if (body.grant_type !== 'authorization_code') return fail(400, 'unsupported_grant_type', String(body.grant_type));
    const entry = this.codes.get(body.code);
    if (!entry) return fail(400, 'invalid_grant', 'unknown code');
    if (entry.used) return fail(400, 'invalid_grant', 'code already used');
    entry.used = true;
    if (body.redirect_uri !== entry.params.redirect_uri) return fail(400, 'invalid_grant', 'redirect_uri mismatch');
    const challenge = createHash('sha256').update(String(body.code_verifier || '')).digest('base64url');
    if (!body.code_verifier || challenge !== entry.params.code_challenge) return fail(400, 'invalid_grant', 'PKCE verification failed');
    rec.ok = true;
    rec.defect = this.defect;
    rec.mode = this.tokenMode;
    switch (this.tokenMode) {
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html><body>not a token response</body></html>');
      case 'error500':
        return this.json(res, 500, { error: 'server_error' });
      case 'no_id_token':
        return this.json(res, 200, { access_token: 'x', token_type: 'Bearer', expires_in: 600 });
      case 'hang':
        return new Promise((resolve) => {
          this.held.push(() => {
            if (!res.destroyed) this.json(res, 200, { access_token: 'x', token_type: 'Bearer', id_token: this.idToken(entry.params.nonce) });
            resolve();
          });
        });
      default:
    }
    return this.json(res, 200, {
      access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 600,
      id_token: this.idToken(entry.params.nonce),
    });
  }

  /** An ID token for the configured user, shaped by this.defect. */
  idToken(nonce) {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: this.issuer, sub: this.user.sub, aud: this.client.client_id, exp: now + 600, iat: now,
      auth_time: now, nonce, email: this.user.email, name: this.user.name, groups: this.user.groups,
    };
    if (this.user.email_verified !== undefined) claims.email_verified = this.user.email_verified;
    const alg = this.alg;
    let k = this.keys[alg];
    switch (this.defect) {
      case null: break;
      case 'wrong_aud': claims.aud = 'some-other-client'; break;
      case 'wrong_iss': claims.iss = 'http://127.0.0.9:1/'; break;
      case 'expired': claims.exp = now - 600; claims.iat = now - 1200; break;
      case 'iat_future': claims.iat = now + 600; claims.exp = now + 1200; break;
      case 'wrong_nonce': claims.nonce = randomBytes(32).toString('base64url'); break;
      case 'no_nonce': delete claims.nonce; break;
      case 'multi_aud_no_azp': claims.aud = [this.client.client_id, 'some-other-client']; break;
      case 'wrong_azp': claims.azp = 'some-other-client'; break;
      case 'exp_in_skew': claims.exp = now - 30; claims.iat = now - 600; break;
      case 'iat_in_skew': claims.iat = now + 30; break;
      case 'aud_list_azp': claims.aud = [this.client.client_id, 'some-other-client']; claims.azp = this.client.client_id; break;
      case 'alg_none': return `${b64uJson({ alg: 'none', typ: 'JWT' })}.${b64uJson(claims)}.`;
      case 'alg_hs256': {
        const pem = this.keys.RS256.publicKey.export({ type: 'spki', format: 'pem' });
        const input = `${b64uJson({ alg: 'HS256', typ: 'JWT', kid: this.keys.RS256.kid })}.${b64uJson(claims)}`;
        return `${input}.${b64u(createHmac('sha256', pem).update(input).digest())}`;
      }
      case 'unknown_key': {
        const stranger = makeKeys(`x${randomBytes(3).toString('hex')}`);
        k = stranger[alg];
        break;
      }
      case 'bad_signature': {
        const t = signJws({ alg, typ: 'JWT', kid: k.kid }, claims, alg, k);
        const [h, p, s] = t.split('.');
        const sig = Buffer.from(s, 'base64url');
        sig[sig.length >> 1] ^= 0x01;
        return `${h}.${p}.${b64u(sig)}`;
      }
      default: throw new Error(`unknown defect ${this.defect}`);
    }
    return signJws({ alg, typ: 'JWT', kid: k.kid }, claims, alg, k);
  }
}
