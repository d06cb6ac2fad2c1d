// SPDX-License-Identifier: MIT
// Publishing apps, one app setting at a time (issue "Publishing apps", docs/protocol.md §5.5,
// the app settings of DESIGN.md §4 and edge/app.h): a real edge, two real connectors in two
// groups ("Default": a, "Site B": b), and test backends on loopback (lib/backend.mjs: an
// http one, an https one with a certificate from an untrusted CA). Each test publishes its
// own apps on the shared edge and checks what the client gets, what the backend receives and
// what the edge and connector log. A fake connector (lib/fake_connector.mjs) stands in where
// the REQUEST header block itself is the thing to check (backend_timeout).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  Edge, Connector, cleanup, sanitizerReports,
} from './lib/harness.mjs';
import { TestBackend, textTemplate, urlForms } from './lib/backend.mjs';
import {
  startSite, addApp, setApp, addGroup, appHost, REQUEST_ID_RE, socketOwner, parseRequestBlock,
} from './lib/publish.mjs';
import { FakeTunnel, registerFake, T, frame, requestBlock } from './lib/fake_connector.mjs';
import { FakeEdge } from './lib/fake_edge.mjs';

let edge;
let client;
let a;
let b;
let bk; // http backend, calls itself "localhost"
let rogue; // https backend, certificate from an untrusted CA
const extra = []; // more backends and fake tunnels, closed at the end

before(async () => {
  const site = await startSite({ connectors: [{ name: 'a' }, { name: 'b', group: 'Site B' }] });
  ({ edge, client } = site);
  ({ a, b } = site.conns);
  bk = await TestBackend.start({ name: 'localhost' });
  rogue = await TestBackend.start({ name: 'localhost', tls: site.certs.rogue.backend });
});

after(async () => {
  try {
    await cleanup();
  } finally {
    for (const x of [bk, rogue, ...extra]) if (x) await x.stop().catch(() => {});
  }
});

// Every test leaves the daemons running and free of sanitizer reports.
let reported = '';
afterEach(() => {
  for (const p of [edge.proc, a.proc, b.proc]) {
    assert.ok(p.running(), `${p.name} exited during the test: ${JSON.stringify(p.exitInfo)}\n${p.tail()}`);
  }
  const rep = sanitizerReports();
  if (rep && rep !== reported) {
    reported = rep;
    throw new Error(`sanitizer report:\n${rep}`);
  }
});

const sha = (s) => createHash('sha256').update(s).digest('hex');
const since = () => bk.requests.length;
const newAt = (mark, backend = bk) => backend.requests.slice(mark);

/** The edge's access line (http_request_done) for request id `id`. */
function accessLine(id, timeoutMs = 5000) {
  return edge.proc.waitLog((l) => l.event === 'http_request_done' && l.req === id, timeoutMs, `http_request_done req=${id}`);
}

/** Checks an error page: status, cause class, request id, and no internal address. */
function checkPage(r, status, cause, { json, internals = [] }) {
  const ctx = `${r.status} ${JSON.stringify(r.headers)}\n${r.text.slice(0, 600)}`;
  assert.equal(r.status, status, ctx);
  const id = r.headers['x-request-id'];
  assert.match(id || '', REQUEST_ID_RE, `X-Request-Id on the page: ${ctx}`);
  if (json) {
    assert.match(r.headers['content-type'] || '', /^application\/json/, ctx);
    assert.equal(r.json.error, cause, ctx);
    assert.equal(r.json.status, status, ctx);
    assert.equal(r.json.request_id, id, ctx);
    assert.equal(typeof r.json.message, 'string', ctx);
  } else {
    assert.match(r.headers['content-type'] || '', /^text\/html/, ctx);
    assert.ok(r.text.includes(id), `the HTML page shows the request id ${id}: ${ctx}`);
    assert.ok(r.text.includes(cause) || r.text.includes(String(status)), `the HTML page names ${cause} or ${status}: ${ctx}`);
  }
  for (const s of internals) assert.ok(!r.text.includes(s), `the page does not show the internal "${s}": ${ctx}`);
  return id;
}

test('a passthrough app: the request reaches the backend through a connector and the answer comes back; edge and connector log the same request id', async () => {
  await addApp(edge, 'echo', { internal: `http://127.0.0.1:${bk.port}/` });
  const host = appHost('echo');
  const mark = since();
  const r = await client.request(host, '/hello/world?q=1&r=%20x', { method: 'POST', body: 'abc', headers: { 'x-test': 'yes', 'content-type': 'text/plain' } });
  assert.equal(r.status, 200, r.text);
  const e = r.json;
  assert.equal(e.method, 'POST');
  assert.equal(e.url, '/hello/world?q=1&r=%20x');
  assert.equal(e.body.length, 3);
  assert.equal(e.body.sha256, sha('abc'));
  assert.equal(e.headers['x-test'], 'yes');
  assert.equal(e.headers['content-type'], 'text/plain');
  assert.equal(newAt(mark).length, 1, 'exactly one request reached the backend');

  const id = r.headers['x-request-id'];
  assert.match(id, REQUEST_ID_RE, 'the edge returns an X-Request-Id');
  assert.equal(e.headers['x-request-id'], id, 'the backend got the same X-Request-Id');

  const l = await accessLine(id);
  assert.equal(l.method, 'POST', l._raw);
  assert.equal(l.host, host, l._raw);
  assert.equal(l.path, '/hello/world', l._raw);
  assert.equal(l.status, 200, l._raw);
  assert.equal(l.result, 'ok', l._raw);
  assert.equal(l.bytes_in, 3, l._raw);
  assert.ok(l.bytes_out > r.body.length, `bytes_out counts head and body: ${l._raw}`);
  assert.equal(l.app, 'echo', l._raw);
  assert.equal(l.connector, a.id, l._raw);
  assert.match(String(l.tunnel), /^tn_/, l._raw);
  assert.equal(l.client_ip, '127.0.0.1', l._raw);
  assert.equal(typeof l.dur_ms, 'number', l._raw);
  assert.equal(typeof l.upstream_ms, 'number', l._raw);
  const c = await a.proc.waitLog((x) => x.event === 'backend_request_done' && x.req === id, 5000, `connector backend_request_done req=${id}`);
  assert.equal(c.status, 200, c._raw);
  assert.equal(c.result, 'ok', c._raw);
  assert.equal(c.method, 'POST', c._raw);
  assert.equal(c.bytes_in, 3, c._raw);
  assert.ok(!b.proc.lines.some((x) => x.req === id), 'the other group\'s connector never saw it');
});

test('X-Request-Id: a valid client id is kept, an invalid one is replaced; either way the backend gets it and the client gets it back', async () => {
  await addApp(edge, 'rid', { internal: `http://127.0.0.1:${bk.port}/` });
  const host = appHost('rid');
  const kept = 'Client-id_1.2-3';
  const r1 = await client.request(host, '/k', { headers: { 'x-request-id': kept } });
  assert.equal(r1.status, 200);
  assert.equal(r1.headers['x-request-id'], kept);
  assert.equal(r1.json.headers['x-request-id'], kept);
  await accessLine(kept);

  const ids = new Set();
  for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', 'ü-umlaut', '']) {
    const r = await client.request(host, '/r', { headers: { 'x-request-id': bad } });
    assert.equal(r.status, 200, r.text);
    const id = r.headers['x-request-id'];
    assert.match(id, REQUEST_ID_RE, `a generated id for ${JSON.stringify(bad)}`);
    assert.notEqual(id, bad);
    assert.equal(r.json.headers['x-request-id'], id, 'the backend gets the generated id, once');
    assert.equal(r.json.raw.filter(([k]) => k.toLowerCase() === 'x-request-id').length, 1, 'one X-Request-Id');
    ids.add(id);
  }
  // Two ids at once are not "the client's id".
  const r2 = await client.request(host, '/two', { headers: { 'x-request-id': ['first-id', 'second-id'] } });
  assert.match(r2.headers['x-request-id'], REQUEST_ID_RE);
  assert.equal(r2.json.raw.filter(([k]) => k.toLowerCase() === 'x-request-id').length, 1, `one X-Request-Id: ${JSON.stringify(r2.json.raw)}`);
  // Without one, each request gets its own.
  for (let i = 0; i < 3; i++) ids.add((await client.request(host, '/n')).headers['x-request-id']);
  assert.equal(ids.size, 8, `distinct generated ids: ${[...ids].join(' ')}`);
  // The connector logs the request under the same id.
  await a.proc.waitLog((x) => x.event === 'backend_request_done' && x.req === kept, 5000, 'connector line with the client id');
});

test('X-Forwarded-For is appended to, X-Forwarded-Proto and X-Forwarded-Host are the edge\'s', async () => {
  await addApp(edge, 'xff', { internal: `http://127.0.0.1:${bk.port}/` });
  const host = appHost('xff');
  const r = await client.request(host, '/', {
    headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' },
  });
  assert.equal(r.status, 200);
  const h = r.json.headers;
  assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'the client address appended');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-host'], `${host}:${client.port}`, 'X-Forwarded-Host is the client\'s Host as sent');
  for (const k of ['x-forwarded-proto', 'x-forwarded-host']) {
    assert.equal(r.json.raw.filter(([n]) => n.toLowerCase() === k).length, 1, `one ${k}`);
  }
  const r2 = await client.request(host, '/');
  assert.equal(r2.json.headers['x-forwarded-for'], '127.0.0.1', 'set when the client sent none');
});

test('hop-by-hop fields are removed both ways; X-Portico-* and the edge\'s own cookies never reach the backend', async () => {
  await addApp(edge, 'hop', { internal: `http://127.0.0.1:${bk.port}/` });
  const host = appHost('hop');
  const r = await client.request(host, '/h', {
    headers: {
      connection: 'keep-alive, X-Hop-A', 'x-hop-a': 'secret', 'keep-alive': 'timeout=5', te: 'trailers',
      'proxy-connection': 'keep-alive', 'x-keep': 'kept',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0', forwarded: 'for=192.0.2.1',
      'x-portico-user': 'admin@example.com', 'X-Portico-Assertion': 'forged', 'x-portico-groups': 'admins',
      cookie: 'a=1; portico_session=s3cr3t; __Host-portico-csrf=t0k; __Secure-portico_x=y; b=2',
    },
  });
  assert.equal(r.status, 200, r.text);
  const names = r.json.raw.map(([k]) => k.toLowerCase());
  for (const k of ['x-hop-a', 'keep-alive', 'te', 'proxy-connection', 'upgrade', 'trailer', 'proxy-authorization', 'forwarded']) {
    assert.ok(!names.includes(k), `${k} not forwarded: ${JSON.stringify(r.json.raw)}`);
  }
  assert.doesNotMatch(r.json.headers.connection || '', /x-hop-a/i, 'the client\'s Connection is not forwarded');
  assert.ok(!names.some((k) => k.startsWith('x-portico-')), `no X-Portico-*: ${JSON.stringify(r.json.raw)}`);
  assert.equal(r.json.headers['x-keep'], 'kept', 'end-to-end fields are forwarded');
  const cookies = r.json.raw.filter(([k]) => k.toLowerCase() === 'cookie').map(([, v]) => v).join('; ');
  assert.match(cookies, /(^|; )a=1(;|$)/, cookies);
  assert.match(cookies, /(^|; )b=2(;|$)/, cookies);
  assert.doesNotMatch(cookies, /portico|s3cr3t|t0k/i, `the edge's cookies are removed: ${cookies}`);

  // Several Cookie fields become one (raw bytes: node:http joins them itself).
  const c = await client.raw(host);
  c.write(c.head('GET', '/two-cookies', [['Cookie', 'a=1; portico=x'], ['Cookie', 'Portico_S=y; b=2'], ['Trailer', 'X-Checksum'], ['Connection', 'close']]));
  const two = JSON.parse((await c.response()).body);
  c.close();
  assert.ok(!two.raw.some(([k]) => k.toLowerCase() === 'trailer'), 'Trailer is not forwarded');
  const cf = two.raw.filter(([k]) => k.toLowerCase() === 'cookie').map(([, v]) => v);
  assert.equal(cf.length, 1, `one Cookie field: ${JSON.stringify(cf)}`);
  assert.deepEqual(cf[0].split(/;\s*/).sort(), ['a=1', 'b=2'], `only the backend's cookies: ${cf[0]}`);

  // The other direction: the backend's hop-by-hop fields stay out of the client's answer.
  const h = await client.request(host, '/_t/hop');
  assert.equal(h.status, 200);
  assert.equal(h.text, 'hop\n');
  assert.equal(h.headers['x-end'], 'kept');
  assert.equal(h.headers['x-resp-hop'], undefined, `X-Resp-Hop (named in Connection) removed: ${JSON.stringify(h.raw)}`);
  assert.notEqual(h.headers['keep-alive'], 'timeout=9', 'the backend\'s Keep-Alive is not passed on');
  assert.doesNotMatch(h.headers.connection || '', /x-resp-hop/i);
  assert.match(h.headers['x-request-id'], REQUEST_ID_RE);
  assert.notEqual(h.headers['x-request-id'], 'from-backend', 'the backend\'s X-Request-Id is replaced by the edge\'s');
  assert.equal(h.raw.filter(([k]) => k.toLowerCase() === 'x-request-id').length, 1);
});

test('maintenance_mode: a 503 page (HTML, or JSON when asked) with the request id; the backend sees nothing; turned off, the app answers again', async () => {
  await addApp(edge, 'maint', { internal: `http://127.0.0.1:${bk.port}/` });
  const host = appHost('maint');
  assert.equal((await client.request(host, '/')).status, 200);
  await setApp(edge, 'maint', { maintenance_mode: true });
  const mark = since();
  const html = await client.request(host, '/page', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  const id = checkPage(html, 503, 'maintenance', { json: false, internals: ['127.0.0.1', String(bk.port)] });
  const j = await client.requestJson(host, '/api', { method: 'POST', body: 'x' });
  checkPage(j, 503, 'maintenance', { json: true, internals: ['127.0.0.1', String(bk.port)] });
  assert.equal(newAt(mark).length, 0, 'nothing reached the backend');
  const l = await accessLine(id);
  assert.equal(l.status, 503, l._raw);
  assert.equal(l.app, 'maint', l._raw);
  await setApp(edge, 'maint', { maintenance_mode: false });
  const r = await client.request(host, '/page');
  assert.equal(r.status, 200);
  assert.equal(r.json.url, '/page');
});

/**
 * What a backend that percent-decodes (except %2F, which the edge keeps as data) and removes
 * dot segments would make of a path.
 */
function backendView(path) {
  const decoded = path.split('?')[0].replace(/%(?!2[fF])([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  const out = [];
  for (const seg of decoded.split('/').slice(1)) {
    if (seg === '..') out.pop();
    else if (seg !== '.') out.push(seg);
  }
  return `/${out.join('/')}`;
}

test('internal_url with a path: only that path is published; /app/../admin and /app/%2e%2e/admin never reach the backend', async () => {
  await addApp(edge, 'sub', { internal: `http://127.0.0.1:${bk.port}/app/`, external: `https://${appHost('sub')}/app/` });
  const host = appHost('sub');
  const ok = await client.request(host, '/app/x/y?z=1');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.url, '/app/x/y?z=1');
  const bare = await client.request(host, '/app');
  assert.equal(bare.status, 200, bare.text);
  assert.equal(bare.json.path, '/app/', '/app is the app\'s root');
  const mark = since();
  const out = await client.request(host, '/other');
  assert.equal(out.status, 404, 'a path outside the published prefix');
  assert.equal(newAt(mark).length, 0);

  // Raw bytes: node:http would send them as they are too, but a raw connection is exact.
  const escapes = ['/app/../admin', '/app/%2e%2e/admin', '/app/%2E%2E/admin', '/app/.%2e/admin', '/app/%2e./admin',
    '/app/x/../../admin', '/app/./../admin', '/app/%2e%2e%2fadmin', '/app/..%2Fadmin', '/app/..;/admin',
    '/app/%252e%252e/admin', '/app/x/%2e%2e/%2e%2e/admin?q=/app/'];
  for (const path of escapes) {
    const c = await client.raw(host);
    const m = since();
    c.write(c.head('GET', path, [['Connection', 'close']]));
    const r = await c.response();
    c.close();
    const got = newAt(m);
    if (r.status >= 400) {
      assert.ok([400, 404].includes(r.status), `${path}: ${r.status}`);
      assert.equal(got.length, 0, `${path} answered ${r.status} by the edge, nothing at the backend`);
    } else {
      assert.equal(r.status, 200, `${path}: ${r.raw}`);
      for (const g of got) {
        const v = backendView(g.url);
        assert.ok(v === '/app' || v.startsWith('/app/'), `${path} reached the backend as ${g.url} (${v}): outside /app/`);
      }
    }
    // docs/apps.md: escapes that leave the prefix, and dot segments hidden behind %2F, get 404.
    if (['/app/../admin', '/app/%2e%2e/admin', '/app/x/../../admin', '/app/..%2Fadmin', '/app/%2e%2e%2fadmin'].includes(path)) {
      assert.ok(r.status === 404 || r.status === 400, `${path} leaves the published path: refused, got ${r.status}`);
    }
  }
  assert.ok(!bk.requests.some((g) => /admin/.test(g.url) && !backendView(g.url).startsWith('/app/')), 'no /admin at the backend');

  // External root mapped to an internal path: the dot segments stay inside it.
  await addApp(edge, 'sub2', { internal: `http://127.0.0.1:${bk.port}/app/` });
  for (const [p, want] of [['/x', '/app/x'], ['/../admin', '/app/admin'], ['/%2e%2e/%2e%2e/etc/passwd', '/app/etc/passwd'], ['/', '/app/']]) {
    const c = await client.raw(appHost('sub2'));
    c.write(c.head('GET', p, [['Connection', 'close']]));
    const r = await c.response();
    c.close();
    assert.equal(r.status, 200, `${p}: ${r.raw}`);
    assert.equal(JSON.parse(r.body).path, want, `${p} maps to ${want}`);
  }
});

test('external_url: routing by host, then the longest path prefix; each prefix maps to its internal path', async () => {
  const h = appHost('pfx');
  await addApp(edge, 'pfx-root', { internal: `http://127.0.0.1:${bk.port}/root/`, external: `https://${h}/` });
  await addApp(edge, 'pfx-b', { internal: `http://127.0.0.1:${bk.port}/bee/`, external: `https://${h}/b/` });
  await addApp(edge, 'pfx-bc', { internal: `http://127.0.0.1:${bk.port}/sea/`, external: `https://${h}/b/c/` });
  for (const [path, want, app] of [
    ['/x', '/root/x', 'pfx-root'], ['/b/x', '/bee/x', 'pfx-b'], ['/b/c/x?q', '/sea/x?q', 'pfx-bc'],
    ['/b', '/bee/', 'pfx-b'], ['/bc', '/root/bc', 'pfx-root'], ['/b/cx', '/bee/cx', 'pfx-b'], ['/B/x', '/root/B/x', 'pfx-root'],
  ]) {
    const r = await client.request(h, path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    assert.equal(r.json.url, want, `${path} goes to ${want}`);
    assert.equal((await accessLine(r.headers['x-request-id'])).app, app, `${path} is app ${app}`);
  }
  // Host names are case-insensitive; the port is not part of the routing.
  const r = await client.request(h, '/b/y', { headers: { host: `PFX.Apps.LocalHost:${client.port}` } });
  assert.equal(r.status, 200);
  assert.equal(r.json.url, '/bee/y');
  // An app on an external host of its own, with a path.
  await addApp(edge, 'ownhost', { internal: `http://127.0.0.1:${bk.port}/in/`, external: 'https://own-name.apps.localhost/deep/path/' });
  const o = await client.request('own-name.apps.localhost', '/deep/path/z');
  assert.equal(o.json.url, '/in/z');
  assert.equal((await client.request('own-name.apps.localhost', '/deep/z')).status, 404, 'outside its prefix: 404');
});

test('unknown host: 404 page (HTML, or JSON when asked) with the request id', async () => {
  const mark = since();
  const html = await client.request('nothing-here.apps.localhost', '/x');
  const id = checkPage(html, 404, 'not_found', { json: false });
  const j = await client.requestJson('nothing-here.apps.localhost', '/x');
  checkPage(j, 404, 'not_found', { json: true });
  assert.equal(newAt(mark).length, 0);
  const l = await accessLine(id);
  assert.equal(l.status, 404);
});

test('connector_group: requests go only to the connectors of the app\'s group (access log, connector logs and the backend\'s view of the connection)', async () => {
  await addApp(edge, 'ga', { internal: `http://127.0.0.1:${bk.port}/` });
  await addApp(edge, 'gb', { internal: `http://127.0.0.1:${bk.port}/`, group: 'Site B' });
  const pids = { a: a.proc.pid, b: b.proc.pid };
  const served = [];
  for (const [app, want, other] of [['ga', a, b], ['gb', b, a]]) {
    for (let i = 0; i < 6; i++) {
      const r = await client.request(appHost(app), `/g/${i}`);
      assert.equal(r.status, 200, r.text);
      const id = r.headers['x-request-id'];
      const l = await accessLine(id);
      assert.equal(l.connector, want.id, `${app}: served by ${want.name}: ${l._raw}`);
      served.push([id, want, other]);
      // The backend's view: its client connection belongs to that connector's process.
      const owner = socketOwner(r.json.remotePort, bk.port, pids);
      assert.equal(owner, want.name, `${app}: the backend connection is ${want.name}'s (port ${r.json.remotePort})`);
    }
  }
  // Moving the app to the other group applies at once.
  await setApp(edge, 'gb', { connector_group: 'Default' });
  const r = await client.request(appHost('gb'), '/moved');
  assert.equal((await accessLine(r.headers['x-request-id'])).connector, a.id);
  // The connectors' own logs agree.
  for (const [id, want, other] of served) {
    await want.proc.waitLog((x) => x.event === 'backend_request_done' && x.req === id, 5000, `${want.name} logs ${id}`);
    assert.ok(!other.proc.lines.some((x) => x.req === id), `${other.name} never saw ${id}`);
  }
});

test('no live connector in the app\'s group: 502 no_connector (HTML or JSON)', async () => {
  await addGroup(edge, 'Empty');
  await addApp(edge, 'lonely', { internal: `http://127.0.0.1:${bk.port}/`, group: 'Empty' });
  const mark = since();
  const id = checkPage(await client.request(appHost('lonely'), '/'), 502, 'no_connector', { json: false, internals: ['127.0.0.1', String(bk.port)] });
  checkPage(await client.requestJson(appHost('lonely'), '/'), 502, 'no_connector', { json: true, internals: ['127.0.0.1', String(bk.port)] });
  assert.equal(newAt(mark).length, 0);
  assert.equal((await accessLine(id)).status, 502);
});

test('backend failures: refused and unresolvable backends are 502 pages by cause class, naming no internal host', async () => {
  const stopped = await TestBackend.start();
  const port = stopped.port;
  await stopped.stop();
  await addApp(edge, 'refused', { internal: `http://127.0.0.1:${port}/` });
  checkPage(await client.request(appHost('refused'), '/'), 502, 'backend_refused', { json: false, internals: ['127.0.0.1', String(port)] });
  const j = await client.requestJson(appHost('refused'), '/');
  const id = checkPage(j, 502, 'backend_refused', { json: true, internals: ['127.0.0.1', String(port)] });
  const u = await edge.proc.waitLog((x) => x.event === 'http_upstream_error' && x.req === id, 5000, 'http_upstream_error');
  assert.equal(u.cause, 'backend_refused', u._raw);

  await addApp(edge, 'nodns', { internal: 'http://no-such-host.invalid:8080/' });
  checkPage(await client.requestJson(appHost('nodns'), '/'), 502, 'backend_dns', { json: true, internals: ['no-such-host', '8080'] });
  checkPage(await client.request(appHost('nodns'), '/'), 502, 'backend_dns', { json: false, internals: ['no-such-host'] });

  const c = await a.proc.waitLog((x) => x.event === 'backend_request_done' && x.req === id, 5000, 'connector line');
  assert.equal(c.result, 'BACKEND_REFUSED', c._raw);
});

test('backend_timeout: the REQUEST carries 85 s by default and 180 s for "long"; BACKEND_TIMEOUT becomes a 504 page', async () => {
  // A fake connector (the protocol written by hand) in its own group shows the header block.
  await addGroup(edge, 'Fake');
  const tok = await edge.mintToken({ group: 'Fake' });
  const { connectorId, keys } = await registerFake(edge.port, edge.certs.ca, tok.token);
  const ft = await FakeTunnel.connect(edge.port, edge.certs.ca);
  extra.push({ stop: async () => ft.close() });
  await ft.handshake(connectorId, keys);
  await addApp(edge, 'slowapp', { internal: `http://127.0.0.1:${bk.port}/app/`, group: 'Fake' });
  const host = appHost('slowapp');

  const nextRequest = async (from) => {
    const f = await ft.waitFrame((x) => x.type === T.REQUEST && ft.frames.indexOf(x) >= from, 5000, 'REQUEST');
    return { f, blk: parseRequestBlock(f.payload) };
  };
  let from = ft.frames.length;
  const p1 = client.requestJson(host, '/x?y=1', { headers: { 'x-request-id': 'timeout-1' } });
  const { f: f1, blk: r1 } = await nextRequest(from);
  assert.equal(r1.timeoutMs, 85000, 'backend_timeout "default" is 85 s in the REQUEST');
  assert.equal(r1.scheme, 0);
  assert.equal(r1.port, bk.port);
  assert.equal(r1.host, '127.0.0.1');
  assert.equal(r1.sni, '', 'no SNI for an IP literal');
  assert.equal(r1.flags & 0x02, 0, 'no UPGRADE flag');
  assert.equal(r1.method, 'GET');
  assert.equal(r1.target, '/app/x?y=1');
  assert.deepEqual(r1.get('host'), [`127.0.0.1:${bk.port}`], 'exactly one host: the internal one');
  for (const k of ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'content-length']) {
    assert.deepEqual(r1.get(k), [], `no ${k} in the block of a GET: ${JSON.stringify(r1.headers)}`);
  }
  assert.deepEqual(r1.get('x-request-id'), ['timeout-1']);
  // The connector gives up on the backend: BACKEND_TIMEOUT before any RESPONSE.
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(0x13);
  ft.write(frame(T.RESET, 0, f1.stream, rst));
  const res1 = await p1;
  const id = checkPage(res1, 504, 'backend_timeout', { json: true, internals: ['127.0.0.1', String(bk.port)] });
  assert.equal(id, 'timeout-1');
  assert.equal((await accessLine('timeout-1')).status, 504);

  await setApp(edge, 'slowapp', { backend_timeout: 'long' });
  from = ft.frames.length;
  const p2 = client.request(host, '/up', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
  const { f: f2, blk: r2 } = await nextRequest(from);
  assert.equal(r2.timeoutMs, 180000, 'backend_timeout "long" is 180 s in the REQUEST');
  assert.equal(r2.method, 'POST');
  assert.deepEqual(r2.get('transfer-encoding'), []);
  const cl = r2.get('content-length');
  assert.ok(cl.length === 0 || (cl.length === 1 && cl[0] === '5'), `content-length, when passed, is the body's: ${cl}`);
  await ft.waitFrame((x) => x.stream === f2.stream && x.type === T.DATA && (x.flags & 1), 5000, 'the body\'s END_STREAM');
  const body = Buffer.concat(ft.frames.filter((x) => x.stream === f2.stream && x.type === T.DATA).map((x) => x.payload));
  assert.equal(body.toString(), 'hello', 'the body travels in DATA frames');
  const resp = Buffer.concat([Buffer.from([0, 200, 0, 1]), Buffer.from([0, 12]), Buffer.from('content-type'), Buffer.from([0, 10]), Buffer.from('text/plain')]);
  ft.write(frame(T.RESPONSE, 0, f2.stream, resp));
  ft.write(frame(T.DATA, 1, f2.stream, Buffer.from('answered')));
  const res2 = await p2;
  assert.equal(res2.status, 200);
  assert.equal(res2.text, 'answered');
});

test('backend_timeout: a real connector gives up at the REQUEST\'s timeout with BACKEND_TIMEOUT (fake edge, 1 s)', async () => {
  // The edge only ever sends 85 s or 180 s; a fake edge sends a short one to see the connector
  // enforce it without waiting that long.
  const e2 = await Edge.create();
  await e2.start();
  const k = new Connector(e2, 'k');
  await k.registerOk();
  const cred = k.credentials;
  await e2.stop();
  const fe = await FakeEdge.start({ cert: e2.certs.edge.crt, key: e2.certs.edge.key, connectorId: cred.connector_id, publicKey: cred.public_key });
  extra.push({ stop: async () => fe.close() });
  k.extra = { edges: [`localhost:${fe.port}`], tunnels_per_edge: 1 };
  k.writeConfig();
  const p = k.start();
  await fe.until(() => fe.live().length === 1, 8000, 'the tunnel');
  const [t] = fe.live();
  const mark = since();
  const t0 = Date.now();
  fe.send(t, frame(T.REQUEST, 1, 1, requestBlock({ port: bk.port, host: '127.0.0.1', timeoutMs: 1000, target: '/_t/sleep?ms=6000', headers: [['host', `127.0.0.1:${bk.port}`], ['x-request-id', 'fe-timeout']] })));
  await fe.until(() => fe.streamFrames(t, 1).some((f) => f.type === T.RESET || f.type === T.RESPONSE), 5000, 'an answer on stream 1');
  const dt = Date.now() - t0;
  const s = fe.streamFrames(t, 1);
  assert.equal(s[0].type, T.RESET, `RESET, not RESPONSE: ${JSON.stringify(s.map((f) => f.type))}`);
  assert.equal(s[0].payload.readUInt32BE(0), 0x13, 'BACKEND_TIMEOUT');
  assert.ok(dt >= 900 && dt < 4000, `after about 1 s: ${dt} ms`);
  assert.equal(newAt(mark).length, 1, 'the backend had the request');
  const l = await p.waitLog((x) => x.event === 'backend_request_done' && x.req === 'fe-timeout', 3000, 'backend_request_done');
  assert.equal(l.result, 'BACKEND_TIMEOUT', l._raw);
  await p.stop('SIGTERM', 8000);
});

test('translate_headers: Host is the internal host; Location, Content-Location, Refresh and Set-Cookie Domain/Path are rewritten with the prefix mapping', async () => {
  const ext = `https://${appHost('th')}:${client.port}/pub/`;
  const extBase = `https://${appHost('th')}:${client.port}/pub`;
  await addApp(edge, 'th', { internal: `http://localhost:${bk.port}/app/`, external: ext });
  const host = appHost('th');
  const r = await client.request(host, '/pub/_t/redirect?p=/app');
  assert.equal(r.status, 302, r.text);
  const got = bk.requests[bk.requests.length - 1];
  assert.equal(got.url, '/app/_t/redirect?p=/app');
  assert.equal(got.headers.host, `localhost:${bk.port}`, 'Host = the internal host:port');
  assert.equal(r.headers.location, `${extBase}/next?x=1`);
  assert.equal(r.headers['content-location'], `${extBase}/content`);
  assert.equal(r.headers.refresh, `3; url=${extBase}/refreshed`);
  assert.deepEqual(r.headers['set-cookie'], [
    `sid=abc; Domain=${host}; Path=/pub/; HttpOnly`,
    'pref=1; Path=/pub; Secure',
    'plain=2',
  ]);
  assert.equal(r.headers['x-link'], `http://localhost:${bk.port}/app/untouched`, 'other headers are not rewritten');

  const p = await client.request(host, '/pub/_t/redirect?p=/app&kind=path');
  assert.equal(p.headers.location, '/pub/next', 'an absolute path under the internal prefix');
  const o = await client.request(host, '/pub/_t/redirect?p=/app&kind=outside');
  assert.equal(o.headers.location, `http://localhost:${bk.port}/other/x`, 'outside the published path: untouched');
  const f = await client.request(host, '/pub/_t/redirect?p=/app&kind=foreign');
  assert.equal(f.headers.location, 'http://example.invalid/app/x', 'another origin: untouched');

  // translate_headers=false: the external host goes to the backend and nothing is rewritten.
  await addApp(edge, 'th2', { internal: `http://localhost:${bk.port}/app/`, external: `https://${appHost('th2')}:${client.port}/pub/`, set: { translate_headers: false } });
  const n = await client.request(appHost('th2'), '/pub/_t/redirect?p=/app');
  const g2 = bk.requests[bk.requests.length - 1];
  assert.equal(g2.headers.host, `${appHost('th2')}:${client.port}`, 'Host = the client\'s Host');
  assert.equal(n.headers.location, `http://localhost:${bk.port}/app/next?x=1`);
  assert.equal(n.headers['set-cookie'][0], 'sid=abc; Domain=localhost; Path=/app/; HttpOnly');
});

test('translate_body: internal URLs in HTML, CSS and JavaScript are rewritten while streaming, across chunk boundaries; Accept-Encoding is removed toward the backend', async () => {
  const extAuth = `${appHost('tb')}:${client.port}`;
  await addApp(edge, 'tb', { internal: `http://localhost:${bk.port}/app/`, external: `https://${extAuth}/pub/`, set: { translate_body: true } });
  const keep = { KEEP: `http://localhost:${bk.port}`, P: '/app' };
  const internal = { ...urlForms('http', `localhost:${bk.port}`, '/app'), ...keep };
  const external = { ...urlForms('https', extAuth, '/pub'), ...keep };
  for (const [kind, chunk, rep, cl] of [['html', 3, 1, 0], ['html', 7, 4, 1], ['css', 2, 2, 0], ['js', 5, 3, 1], ['html', 1, 1, 0]]) {
    const mark = since();
    const r = await client.request(appHost('tb'), `/pub/_t/text?kind=${kind}&p=/app&chunk=${chunk}&rep=${rep}&cl=${cl}`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(r.status, 200);
    const want = textTemplate(kind, external, rep);
    assert.equal(r.text, want, `${kind} in ${chunk}-byte pieces${cl ? ' with Content-Length' : ''}: rewritten`);
    assert.notEqual(want, textTemplate(kind, internal, rep));
    const seen = newAt(mark);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers['accept-encoding'], undefined, `no Accept-Encoding toward the backend: ${JSON.stringify(seen[0].raw)}`);
  }
  // Not a text type: passed through as it is.
  const bin = await client.request(appHost('tb'), '/pub/_t/text?kind=bin&p=/app&chunk=64');
  assert.equal(bin.text, textTemplate('bin', internal), 'application/octet-stream is not rewritten');

  // translate_body=false (the default): bodies untouched, Accept-Encoding forwarded.
  await addApp(edge, 'tb0', { internal: `http://localhost:${bk.port}/app/`, external: `https://${appHost('tb0')}:${client.port}/pub/` });
  const mark = since();
  const plain = await client.request(appHost('tb0'), '/pub/_t/text?kind=html&p=/app&chunk=50', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(plain.text, textTemplate('html', internal));
  assert.equal(newAt(mark)[0].headers['accept-encoding'], 'gzip');
});

test('validate_backend_tls: a backend certificate from an untrusted CA is refused (502 backend_tls); with false the request goes through', async () => {
  await addApp(edge, 'tlsapp', { internal: `https://localhost:${rogue.port}/` });
  const host = appHost('tlsapp');
  const mark = rogue.requests.length;
  const j = await client.requestJson(host, '/secure');
  const id = checkPage(j, 502, 'backend_tls', { json: true, internals: ['localhost:', String(rogue.port)] });
  checkPage(await client.request(host, '/secure'), 502, 'backend_tls', { json: false, internals: [String(rogue.port)] });
  assert.equal(rogue.requests.length, mark, 'no HTTP request was sent over the untrusted connection');

  await setApp(edge, 'tlsapp', { validate_backend_tls: false });
  const r = await client.request(host, '/secure');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.url, '/secure');
  assert.equal(r.json.headers.host, `localhost:${rogue.port}`);
  const c = await a.proc.waitLog((x) => x.event === 'backend_request_done' && x.req === id, 5000, 'connector line');
  assert.equal(c.result, 'BACKEND_TLS', c._raw);
});

test('home_page: the external root redirects (302) to it; other paths go to the backend', async () => {
  const ext = `https://${appHost('hp')}:${client.port}/pub/`;
  const home = `https://${appHost('hp')}:${client.port}/pub/start/here`;
  await addApp(edge, 'hp', { internal: `http://127.0.0.1:${bk.port}/`, external: ext, set: { home_page: home } });
  const mark = since();
  const r = await client.request(appHost('hp'), '/pub/');
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, home);
  assert.match(r.headers['x-request-id'], REQUEST_ID_RE);
  assert.equal(newAt(mark).length, 0, 'the redirect is the edge\'s');
  const o = await client.request(appHost('hp'), '/pub/start/here');
  assert.equal(o.status, 200);
  assert.equal(o.json.url, '/start/here');
  // Without a home page the root is proxied like any path.
  await addApp(edge, 'hp0', { internal: `http://127.0.0.1:${bk.port}/` });
  const z = await client.request(appHost('hp0'), '/');
  assert.equal(z.status, 200);
  assert.equal(z.json.url, '/');
});

test('robots.txt: answered by the edge with "Disallow: /" unless robots_txt is false', async () => {
  await addApp(edge, 'rb', { internal: `http://127.0.0.1:${bk.port}/` });
  const mark = since();
  const r = await client.request(appHost('rb'), '/robots.txt');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);
  assert.equal(r.text, 'User-agent: *\nDisallow: /\n');
  assert.equal(newAt(mark).length, 0, 'the backend is not asked');
  // An app published under a path only: the host's /robots.txt is still the edge's.
  await addApp(edge, 'rb-deep', { internal: `http://127.0.0.1:${bk.port}/`, external: `https://${appHost('rbdeep')}/deep/` });
  const deep = await client.request(appHost('rbdeep'), '/robots.txt');
  assert.equal(deep.status, 200);
  assert.equal(deep.text, 'User-agent: *\nDisallow: /\n');
  await setApp(edge, 'rb', { robots_txt: false });
  const p = await client.request(appHost('rb'), '/robots.txt');
  assert.equal(p.status, 200);
  assert.equal(p.json.url, '/robots.txt', 'the backend\'s own robots.txt');
});

test('hsts: Strict-Transport-Security on an https app\'s answers only when hsts is true', async () => {
  await addApp(edge, 'hs', { internal: `http://127.0.0.1:${bk.port}/` });
  const off = await client.request(appHost('hs'), '/');
  assert.equal(off.headers['strict-transport-security'], undefined, 'off by default');
  await setApp(edge, 'hs', { hsts: true });
  const on = await client.request(appHost('hs'), '/');
  assert.equal(on.status, 200);
  assert.equal(on.headers['strict-transport-security'], 'max-age=31536000');
  // Pages of the edge carry it too.
  await setApp(edge, 'hs', { maintenance_mode: true });
  const page = await client.request(appHost('hs'), '/');
  assert.equal(page.status, 503);
  assert.equal(page.headers['strict-transport-security'], 'max-age=31536000', 'on the maintenance page');
  const robots = await client.request(appHost('hs'), '/robots.txt');
  assert.equal(robots.headers['strict-transport-security'], 'max-age=31536000', 'on robots.txt');
});

test('max_body_size: a body announced above the app\'s limit is refused with 413 before it is read', async () => {
  await addApp(edge, 'small', { internal: `http://127.0.0.1:${bk.port}/`, set: { max_body_size: 1000 } });
  const mark = since();
  const big = await client.requestJson(appHost('small'), '/up', { method: 'POST', body: Buffer.alloc(1001, 0x41) });
  checkPage(big, 413, 'body_too_large', { json: true });
  assert.equal(newAt(mark).length, 0);
  const fits = await client.request(appHost('small'), '/up', { method: 'POST', body: Buffer.alloc(1000, 0x41) });
  assert.equal(fits.status, 200);
  assert.equal(fits.json.body.length, 1000);
  // Announced: refused before the body is read (no 100 Continue), then the connection closes.
  const c = await client.raw(appHost('small'));
  c.write(c.head('POST', '/up', [['Content-Length', '5000'], ['Expect', '100-continue']]));
  const r = await c.response();
  assert.equal(r.status, 413, r.raw);
  assert.ok(await c.closesWithin(5000), 'the connection closes after the 413');
  c.close();
  // Chunked: refused when the limit is passed (no response began: the 413 page).
  const d = await client.raw(appHost('small'));
  const m2 = since();
  d.write(d.head('POST', '/up', [['Transfer-Encoding', 'chunked']]));
  d.write(`400\r\n${'x'.repeat(0x400)}\r\n`);
  d.write(`400\r\n${'y'.repeat(0x400)}\r\n`);
  const r2 = await d.response();
  assert.equal(r2.status, 413, r2.raw);
  d.close();
  assert.ok(newAt(m2).every((g) => g.url === '/up'), 'nothing else at the backend');
});

test('http_only_cookie, secure_cookie, persistent_cookie: stored, and the edge sets no cookie of its own on a passthrough app', async () => {
  // These settings shape the edge's own cookies (sessions), which exist only with pre_auth
  // "oidc"; a passthrough app must see only its backend's cookies.
  const app = await addApp(edge, 'ck', { internal: `http://localhost:${bk.port}/`, set: { http_only_cookie: false, secure_cookie: false, persistent_cookie: true } });
  assert.equal(app.http_only_cookie, false);
  assert.equal(app.secure_cookie, false);
  assert.equal(app.persistent_cookie, true);
  const r = await client.request(appHost('ck'), '/_t/redirect?p=');
  assert.deepEqual((r.headers['set-cookie'] || []).map((c) => c.split('=')[0]), ['sid', 'pref', 'plain'], 'only the backend\'s cookies');
  assert.equal((await client.request(appHost('ck'), '/')).headers['set-cookie'], undefined);
});

test('pre_auth oidc without a configured identity provider: 503 auth_unavailable for every request; nothing reaches the backend', async () => {
  const app = await addApp(edge, 'sso', { internal: `http://127.0.0.1:${bk.port}/`, preAuth: null });
  assert.equal(app.pre_auth, 'oidc', 'oidc is the default');
  const mark = since();
  checkPage(await client.requestJson(appHost('sso'), '/'), 503, 'auth_unavailable', { json: true, internals: ['127.0.0.1', String(bk.port)] });
  checkPage(await client.request(appHost('sso'), '/x'), 503, 'auth_unavailable', { json: false, internals: ['127.0.0.1'] });
  assert.equal(newAt(mark).length, 0);
});

test('portico app test: a backend answering 404 fails the probe at http, an unresolvable host at dns; each with its hint', async () => {
  // The other cases of the report (healthy, stopped, untrusted, empty group, certificate) are
  // in apptest.test.mjs.
  const run = async (name) => {
    const r = await edge.cli(['--json', 'app', 'test', name], { timeoutMs: 20000 });
    assert.equal(r.code, 1, `exit 1 when a check fails: ${r.stdout} ${r.stderr}`);
    const rep = JSON.parse(r.stdout);
    assert.equal(rep.ok, false);
    const probes = rep.checks.filter((c) => c.check === 'probe');
    assert.equal(probes.length, 1, `one live connector in Default: ${r.stdout}`);
    return probes[0];
  };
  await addApp(edge, 'probe404', { internal: `http://127.0.0.1:${bk.port}/_t/status/404/` });
  const mark = since();
  const p = await run('probe404');
  assert.equal(p.connector, a.id);
  assert.equal(p.ok, false, JSON.stringify(p));
  const last = p.steps[p.steps.length - 1];
  assert.deepEqual([last.step, last.ok, last.status], ['http', true, 404], `the http step worked, its status fails the probe: ${JSON.stringify(p)}`);
  assert.match(p.hint, /404/, p.hint);
  assert.deepEqual(newAt(mark).map((g) => [g.method, g.url]), [['GET', '/_t/status/404/']], 'the probe asked the internal path');

  await addApp(edge, 'probedns', { internal: 'http://no-such-host.invalid:8080/' });
  const d = await run('probedns');
  assert.deepEqual([d.steps[0].step, d.steps[0].ok, d.steps[0].error], ['dns', false, 'not_found'], JSON.stringify(d));
  assert.match(d.hint, /no-such-host\.invalid/, d.hint);
});
