// SPDX-License-Identifier: MIT
// OIDC sign-in in a real browser (issue "OIDC pre-authentication", "Must show"): Debian's
// headless Chromium driven by npm playwright-core (never a downloaded browser), a real edge
// and connector, the test identity provider (tests/idp/provider.mjs, oidc-provider) on
// 127.0.0.2 and the echo backend. Alice signs in at the provider's login page, lands on the
// app, talks through a WebSocket, reads /.portico/me and signs out (at the edge and at the
// provider); carol, who is not assigned, sees the 403 page. Screenshots go to $PTC_ARTIFACTS
// (default: <build dir>/meson-logs/artifacts, see README.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  cleanup, sanitizerReports, freePort, BUILD, EDGE_HOST,
} from './lib/harness.mjs';
import { TestBackend } from './lib/backend.mjs';
import { addApp } from './lib/publish.mjs';
import {
  Idp, USERS, edgeClient, startOidcSite, haveProvider, IDP_HOST,
} from './lib/idp.mjs';

const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (scripts/deps.sh check installs Debian's chromium)` : false;

/** Where screenshots go. */
export const ARTIFACTS = process.env.PTC_ARTIFACTS
  || (existsSync(join(BUILD, 'meson-logs')) ? join(BUILD, 'meson-logs', 'artifacts') : '/tmp/ptc-artifacts');

let site;
let edge;
let idp;
let bk;
let browser;
const alice = USERS.alice;
const carol = USERS.carol;
const APPS = ['web', 'team'];
const host = (name) => `${name}.apps.localhost`;
const url = (name, path = '/') => `https://${host(name)}:${edge.port}${path}`;

/** base64 of SHA-256 of the certificate's SubjectPublicKeyInfo (Chromium's SPKI pin). */
function spkiHash(certFile) {
  const pub = execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout']);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
  return execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString('base64');
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `browser-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

before(async () => {
  if (skip) return;
  if (!haveProvider()) throw new Error('node_modules is missing oidc-provider/playwright-core: run scripts/deps.sh (npm ci)');
  bk = await TestBackend.start({ name: 'localhost' });
  site = await startOidcSite({
    idps: async (port) => {
      const c = edgeClient({ clientId: 'edge-browser', port, hosts: [...APPS.map(host), EDGE_HOST] });
      idp = new Idp({ clients: [c], port: await freePort(IDP_HOST) });
      return { servers: [idp], idps: [idp.edgeEntry('corp', 'edge-browser')] };
    },
  });
  edge = site.edge;
  for (const name of APPS) {
    await addApp(edge, name, {
      internal: `http://127.0.0.1:${bk.port}/`, external: url(name), preAuth: 'oidc',
      set: { assignment: { users: [], groups: ['staff'] }, sso_headers: { email: 'X-Auth-Email', name: 'X-Auth-Name' } },
    });
  }
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
      `--ignore-certificate-errors-spki-list=${spkiHash(edge.certs.edge.crt)}`,
      `--host-resolver-rules=MAP *.apps.localhost 127.0.0.1, MAP ${EDGE_HOST} 127.0.0.1`,
    ],
  });
});

after(async () => {
  try {
    if (browser) await browser.close();
    await cleanup();
  } finally {
    if (bk) await bk.stop().catch(() => {});
  }
  const rep = sanitizerReports();
  if (rep) throw new Error(`sanitizer report:\n${rep}`);
});

/** Signs user in from the app's URL at the provider's login page; resolves the page at the app. */
async function signInAt(page, name, user, path = '/') {
  await page.goto(url(name, path));
  await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'), { timeout: 15000 });
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await Promise.all([
    page.waitForURL((u) => u.origin === new URL(url(name)).origin && !u.pathname.startsWith('/.portico/'), { timeout: 15000 }),
    page.click('#submit'),
  ]);
  return page;
}

test('alice signs in at the provider\'s login page, lands on the app, uses a WebSocket, reads /.portico/me, and signs out', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  try {
    await page.goto(url('web', '/hello?from=browser'));
    await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'), { timeout: 15000 });
    assert.ok(await page.isVisible('#password'), 'the provider\'s login page');
    await shot(page, '01-provider-login');

    // A wrong password first: the provider says so and keeps the user.
    await page.fill('#username', alice.username);
    await page.fill('#password', 'wrong-password');
    await Promise.all([page.waitForLoadState('load'), page.click('#submit')]);
    await page.waitForSelector('#error', { timeout: 10000 });
    assert.equal(new URL(page.url()).origin, idp.issuer);
    await shot(page, '02-provider-wrong-password');

    await page.fill('#username', alice.username);
    await page.fill('#password', alice.password);
    await Promise.all([
      page.waitForURL((u) => u.origin === new URL(url('web')).origin && u.pathname === '/hello', { timeout: 15000 }),
      page.click('#submit'),
    ]);
    assert.equal(new URL(page.url()).search, '?from=browser', 'back at the original URL');
    const echo = JSON.parse(await page.textContent('body'));
    assert.equal(echo.url, '/hello?from=browser');
    assert.equal(echo.headers['x-auth-email'], alice.email);
    assert.equal(echo.headers['x-auth-name'], alice.name);
    assert.ok(echo.headers['x-portico-assertion'], 'the assertion reached the backend');
    assert.ok(!/portico/i.test(echo.headers.cookie || ''), 'no edge cookie at the backend');
    await shot(page, '03-app-signed-in');

    const cookies = await ctx.cookies(url('web'));
    const sess = cookies.find((c) => c.name === '__Host-portico_session');
    assert.ok(sess, `a session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert.ok(sess.httpOnly && sess.secure && sess.sameSite === 'Lax', JSON.stringify(sess));
    assert.equal(await page.evaluate(() => document.cookie.includes('portico')), false, 'HttpOnly: scripts cannot read it');

    // A WebSocket from the page, through the edge's gate, to the echo backend.
    const wsMark = bk.requests.length;
    const reply = await page.evaluate((u) => new Promise((resolve, reject) => {
      const ws = new WebSocket(u);
      const t = setTimeout(() => reject(new Error('no WebSocket answer in 10 s')), 10000);
      ws.onopen = () => ws.send('hello from chromium');
      ws.onmessage = (ev) => {
        clearTimeout(t);
        ws.close();
        resolve(String(ev.data));
      };
      ws.onerror = () => reject(new Error('WebSocket error'));
    }), `wss://${host('web')}:${edge.port}/ws`);
    assert.equal(reply, 'hello from chromium');
    const up = bk.requests.slice(wsMark).find((r) => (r.headers.upgrade || '').toLowerCase() === 'websocket');
    assert.ok(up, 'the upgrade reached the backend');
    assert.equal(up.headers['x-auth-email'], alice.email, 'with the identity headers');

    const me = await page.evaluate(async () => (await fetch('/.portico/me', { headers: { accept: 'application/json' } })).json());
    assert.equal(me.email, alice.email);
    assert.equal(me.idp, 'corp');

    // Sign out: the edge clears its cookie and sends the browser to the provider, which asks.
    await page.goto(url('web', '/.portico/logout'));
    await page.waitForURL((u) => u.origin === idp.issuer, { timeout: 15000 });
    assert.equal((await ctx.cookies(url('web'))).find((c) => c.name === '__Host-portico_session'), undefined, 'the session cookie is gone');
    await page.waitForSelector('#logout-yes', { timeout: 10000 });
    await shot(page, '04-provider-logout');
    // Confirmed, the provider returns to the app, which sends the browser to sign in again.
    await Promise.all([
      page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'), { timeout: 15000 }),
      page.click('#logout-yes'),
    ]);
    assert.ok(await page.isVisible('#password'), 'signed out at the provider too: its login page again');
    await shot(page, '05-signed-out');
  } finally {
    await ctx.close();
  }
});

test('carol, who is not assigned, sees the 403 page that names her and offers sign-out', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  try {
    const statuses = [];
    page.on('response', (r) => {
      if (r.url().startsWith(url('team'))) statuses.push([r.status(), r.url()]);
    });
    await signInAt(page, 'team', carol, '/private');
    await page.waitForLoadState('load');
    const last = statuses[statuses.length - 1];
    assert.equal(last[0], 403, `the app answered 403: ${JSON.stringify(statuses)}`);
    const text = await page.textContent('body');
    assert.ok(text.includes(carol.email) || text.includes(carol.name), `names carol: ${text}`);
    assert.match(text, /not_assigned|access/i);
    const link = await page.$('a[href="/.portico/logout"]');
    assert.ok(link, 'a sign-out link');
    await shot(page, '06-not-assigned');
    await Promise.all([page.waitForURL((u) => u.origin === idp.issuer, { timeout: 15000 }), link.click()]);
    assert.equal((await ctx.cookies(url('team'))).find((c) => c.name === '__Host-portico_session'), undefined, 'signed out at the edge');
  } finally {
    await ctx.close();
  }
});
