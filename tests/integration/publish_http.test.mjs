// SPDX-License-Identifier: MIT
// The edge's HTTP/1.1 side for published apps, on raw TLS connections (lib/publish.mjs
// RawConn) so that every byte is the test's: request smuggling attempts (Content-Length with
// Transfer-Encoding, two Content-Lengths, a bad chunk size, obs-fold) get 400 and a closed
// connection, oversized heads 431, overlong targets 414, and the edge stays healthy after
// each; pipelined requests are answered in order on one connection; keep-alive;
// idle connections and tunnels releasing their TLS buffers (and working after it);
// Expect: 100-continue; chunked request bodies; targets and methods the edge refuses itself;
// WebSockets through the tunnel (upgrade, echo both ways, close from either side). One edge,
// one connector, one test backend; a last test starts a second edge with the plain-HTTP
// listener, Server-Timing and short HTTP timeouts.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cleanup, sanitizerReports, sleep, freePort } from './lib/harness.mjs';
import { TestBackend } from './lib/backend.mjs';
import { startSite, addApp, appHost, REQUEST_ID_RE, wsConnect, RawConn } from './lib/publish.mjs';
import { OP } from './lib/websocket.mjs';

let edge;
let client;
let a;
let bk;
const HOST = appHost('web');

before(async () => {
  const site = await startSite({ connectors: [{ name: 'a' }] });
  ({ edge, client } = site);
  a = site.conns.a;
  bk = await TestBackend.start({ name: 'localhost' });
  await addApp(edge, 'web', { internal: `http://localhost:${bk.port}/` });
});

after(async () => {
  try {
    await cleanup();
  } finally {
    if (bk) await bk.stop();
  }
});

let reported = '';
afterEach(() => {
  for (const p of [edge.proc, a.proc]) {
    assert.ok(p.running(), `${p.name} exited during the test: ${JSON.stringify(p.exitInfo)}\n${p.tail()}`);
  }
  const rep = sanitizerReports();
  if (rep && rep !== reported) {
    reported = rep;
    throw new Error(`sanitizer report:\n${rep}`);
  }
});

const sha = (s) => createHash('sha256').update(s).digest('hex');

/** The edge still serves: its health check, and a request through the tunnel. */
async function assertHealthy(what) {
  assert.ok(await client.healthy(), `${what}: /healthz still answers`);
  const r = await client.request(HOST, '/still-alive');
  assert.equal(r.status, 200, `${what}: the app still answers: ${r.text}`);
  assert.equal(r.json.url, '/still-alive');
}

// ---- bad input ----

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n';
const smuggling = [
  ['Content-Length with Transfer-Encoding', ['POST /s1 HTTP/1.1', 'Content-Length: 4', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding with Content-Length', ['POST /s2 HTTP/1.1', 'Transfer-Encoding: chunked', 'Content-Length: 48'], `0\r\n\r\n${SMUGGLED}`],
  ['two different Content-Lengths', ['POST /s3 HTTP/1.1', 'Content-Length: 3', 'Content-Length: 41'], `abc${SMUGGLED}`],
  ['a Content-Length list', ['POST /s4 HTTP/1.1', 'Content-Length: 3, 41'], `abc${SMUGGLED}`],
  ['a signed Content-Length', ['POST /s5 HTTP/1.1', 'Content-Length: +3'], `abc${SMUGGLED}`],
  ['a space before the colon', ['POST /s6 HTTP/1.1', 'Content-Length : 3'], `abc${SMUGGLED}`],
  ['a bad chunk size', ['POST /s7 HTTP/1.1', 'Transfer-Encoding: chunked'], `zz\r\nabc\r\n0\r\n\r\n${SMUGGLED}`],
  ['an overflowing chunk size', ['POST /s8 HTTP/1.1', 'Transfer-Encoding: chunked'], `fffffffffffffffff1\r\nabc\r\n0\r\n\r\n${SMUGGLED}`],
  ['obs-fold (a folded header line)', ['GET /s9 HTTP/1.1', 'X-Folded: a', ' b'], SMUGGLED],
  ['obs-fold of Transfer-Encoding', ['POST /s10 HTTP/1.1', 'Content-Length: 3', 'Transfer-Encoding:', ' chunked'], `abc${SMUGGLED}`],
];

for (const [what, lines, rest] of smuggling) {
  test(`smuggling: ${what} gets 400 and the connection is closed; nothing smuggled reaches the backend; the edge stays healthy`, async () => {
    const c = await client.raw(HOST);
    const [reqLine, ...hdrs] = lines;
    const mark = bk.requests.length;
    c.write(`${reqLine}\r\nHost: ${c.hostHeader}\r\n${hdrs.join('\r\n')}\r\n\r\n${rest}`);
    const r = await c.response();
    assert.equal(r.status, 400, `${what}: ${r.raw}`);
    assert.ok(await c.closesWithin(5000), `${what}: the edge closes the connection`);
    assert.equal(c.buf.length, 0, `${what}: nothing after the 400: ${JSON.stringify(c.buf.toString('latin1'))}`);
    c.close();
    const got = bk.requests.slice(mark);
    assert.ok(!got.some((g) => g.url.includes('smuggled')), `${what}: no smuggled request at the backend`);
    // Errors in the head are refused before anything is forwarded.
    if (!/chunk size/.test(what)) assert.equal(got.length, 0, `${what}: nothing forwarded: ${JSON.stringify(got.map((g) => g.url))}`);
    await assertHealthy(what);
  });
}

test('an oversized head gets 431 (one huge field; too many fields), the connection is closed, the edge stays healthy', async () => {
  for (const [what, hdrs] of [
    ['a 20 KiB field', [['X-Big', 'x'.repeat(20 * 1024)]]],
    ['150 fields', Array.from({ length: 150 }, (_, i) => [`X-F${i}`, 'v'])],
  ]) {
    const c = await client.raw(HOST);
    const mark = bk.requests.length;
    c.write(c.head('GET', '/big-head', hdrs));
    const r = await c.response();
    assert.equal(r.status, 431, `${what}: ${r.raw}`);
    assert.ok(await c.closesWithin(5000), `${what}: closed`);
    c.close();
    assert.equal(bk.requests.length, mark, `${what}: nothing forwarded`);
    await assertHealthy(what);
  }
});

test('an overlong request target gets 414, the connection is closed, the edge stays healthy', async () => {
  const c = await client.raw(HOST);
  const mark = bk.requests.length;
  c.write(c.head('GET', `/${'a'.repeat(9000)}`));
  const r = await c.response();
  assert.equal(r.status, 414, r.raw);
  assert.ok(await c.closesWithin(5000), 'closed');
  c.close();
  assert.equal(bk.requests.length, mark);
  await assertHealthy('414');
});

// ---- keep-alive, pipelining, Expect, chunked ----

test('pipelining: requests written at once on one TLS connection are answered in order', async () => {
  const c = await client.raw(HOST);
  const mark = bk.requests.length;
  // The first is slow: a server that answered out of order would send the second first.
  c.write(c.head('GET', '/_t/sleep?ms=400&n=1') + c.head('GET', '/p2') +
    c.head('POST', '/p3', [['Content-Length', '5'], ['Content-Type', 'text/plain']]) + 'hello' +
    c.head('HEAD', '/p4') + c.head('GET', '/p5'));
  const r1 = await c.response();
  const r2 = await c.response();
  const r3 = await c.response();
  const r4 = await c.response({ head: true });
  const r5 = await c.response();
  assert.deepEqual([r1, r2, r3, r4, r5].map((r) => r.status), [200, 200, 200, 200, 200]);
  assert.equal(JSON.parse(r1.body).url, '/_t/sleep?ms=400&n=1');
  assert.equal(JSON.parse(r2.body).url, '/p2');
  const e3 = JSON.parse(r3.body);
  assert.equal(e3.url, '/p3');
  assert.equal(e3.body.sha256, sha('hello'));
  assert.equal(r4.body.length, 0, 'HEAD: no body');
  assert.ok(Number(r4.header('content-length')) > 0, `HEAD keeps the backend's Content-Length: ${r4.raw}`);
  assert.equal(JSON.parse(r5.body).url, '/p5');
  const ids = [r1, r2, r3, r4, r5].map((r) => r.header('x-request-id'));
  assert.equal(new Set(ids).size, 5, `one id each: ${ids}`);
  assert.deepEqual(bk.requests.slice(mark).map((g) => g.url), ['/_t/sleep?ms=400&n=1', '/p2', '/p3', '/p4', '/p5']);
  assert.equal(c.isClosed, false, 'the connection stays open');
  c.close();
});

test('keep-alive: one connection serves several exchanges; responses are re-framed (Content-Length or chunked)', async () => {
  const c = await client.raw(HOST);
  const ids = [];
  for (let i = 0; i < 4; i++) {
    c.write(c.head('GET', `/ka/${i}`));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.notEqual((r.header('connection') || '').toLowerCase(), 'close');
    assert.equal(JSON.parse(r.body).url, `/ka/${i}`);
    assert.ok(r.header('content-length'), 'a backend answer with Content-Length keeps it');
    ids.push(r.header('x-request-id'));
  }
  c.write(c.head('GET', '/_t/slow?n=3&ms=20&size=100'));
  const s = await c.response();
  assert.equal(s.status, 200);
  assert.equal(s.chunked, true, 'a body of unknown length is chunked toward the client');
  assert.equal(s.body.length, 300);
  ids.push(s.header('x-request-id'));
  c.write(c.head('GET', '/ka/last'));
  assert.equal((await c.response()).status, 200);
  c.close();
  // The access log shows one connection for all of them.
  const lines = await Promise.all(ids.map((id) => edge.proc.waitLog((l) => l.event === 'http_request_done' && l.req === id, 5000, `access ${id}`)));
  assert.equal(new Set(lines.map((l) => l.conn)).size, 1, `one conn: ${lines.map((l) => l.conn)}`);
});

test('after 1.5 s idle the edge released the connection\'s and the tunnels\' TLS buffers (status counts the bytes), and full records still flow both ways', async () => {
  const released = async () => {
    const st = await edge.cliJson(['status']);
    assert.equal(typeof st.idle_released_bytes_total, 'number', JSON.stringify(st));
    return st.idle_released_bytes_total;
  };
  const c = await client.raw(HOST);
  const body = Buffer.alloc(200000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
  for (let round = 0; round < 2; round++) {
    c.write(c.head('PUT', `/idle/${round}`, [['Content-Length', String(body.length)], ['Content-Type', 'application/octet-stream']]));
    c.write(body);
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).body.sha256, sha(body), `round ${round}: the upload arrived whole`);
    c.write(c.head('GET', '/_t/slow?n=10&ms=1&size=20000'));
    const d = await c.response();
    assert.equal(d.status, 200);
    assert.equal(d.body.length, 200000, `round ${round}: the download arrived whole`);
    if (round === 0) {
      const before = await released();
      await sleep(1500);
      // This connection and the connector's two tunnels, at least two 4 KiB pages each.
      const gained = (await released()) - before;
      assert.ok(gained >= 3 * 2 * 4096, `released ${gained} bytes while idle`);
    }
  }
  c.close();
});

test('Expect: 100-continue: the edge answers 100 before the body is sent, then the upload completes', async () => {
  const c = await client.raw(HOST);
  const body = Buffer.alloc(200000, 0x5a);
  c.write(c.head('PUT', '/expect', [['Content-Length', String(body.length)], ['Expect', '100-continue'], ['Content-Type', 'application/octet-stream']]));
  const interim = await c.response({ timeoutMs: 5000 });
  assert.equal(interim.status, 100, `100 Continue before any body byte: ${interim.raw}`);
  c.write(body);
  const r = await c.response();
  assert.equal(r.status, 200);
  const e = JSON.parse(r.body);
  assert.equal(e.method, 'PUT');
  assert.equal(e.body.length, body.length);
  assert.equal(e.body.sha256, sha(body));
  c.close();
});

test('a chunked request body reaches the backend whole', async () => {
  const c = await client.raw(HOST);
  const parts = [Buffer.from('first,'), Buffer.alloc(70000, 0x62), Buffer.from('x'), Buffer.alloc(3, 0x63), Buffer.alloc(16385, 0x64)];
  c.write(c.head('POST', '/chunked', [['Transfer-Encoding', 'chunked'], ['Content-Type', 'application/octet-stream']]));
  for (const p of parts) {
    c.write(`${p.length.toString(16)}\r\n`);
    c.write(p);
    c.write('\r\n');
    await sleep(20);
  }
  c.write('0\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 200);
  const all = Buffer.concat(parts);
  const e = JSON.parse(r.body);
  assert.equal(e.body.length, all.length);
  assert.equal(e.body.sha256, sha(all));
  // And the connection goes on.
  c.write(c.head('GET', '/after-chunked'));
  assert.equal(JSON.parse((await c.response()).body).url, '/after-chunked');
  c.close();
});

// ---- WebSocket ----

test('WebSocket through the tunnel: 101 with the right accept value, messages echo both ways, the client\'s close propagates', async () => {
  const mark = bk.requests.length;
  const ws = await wsConnect(client, HOST, '/ws/chat?room=1');
  const r = ws.response;
  assert.equal(r.status, 101, r.raw);
  assert.equal((r.header('upgrade') || '').toLowerCase(), 'websocket');
  assert.match(r.header('connection') || '', /upgrade/i);
  assert.equal(r.header('sec-websocket-accept'), ws.expectedAccept);
  const seen = bk.requests.slice(mark);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, '/ws/chat?room=1');
  assert.equal(seen[0].headers.host, `localhost:${bk.port}`);
  assert.equal((seen[0].headers.upgrade || '').toLowerCase(), 'websocket');
  assert.match(seen[0].headers['x-request-id'] || '', REQUEST_ID_RE);

  ws.text('hello');
  let f = await ws.next();
  assert.equal(f.op, OP.TEXT);
  assert.equal(f.payload.toString(), 'hello');
  const mid = 'm'.repeat(300);
  ws.text(mid);
  assert.equal((await ws.next()).payload.toString(), mid, '16-bit length');
  const big = Buffer.alloc(100000);
  for (let i = 0; i < big.length; i++) big[i] = i * 7;
  ws.send(OP.BINARY, big);
  f = await ws.next();
  assert.equal(f.op, OP.BINARY);
  assert.ok(f.payload.equals(big), '64-bit length, binary, intact');
  for (let i = 0; i < 20; i++) ws.text(`burst ${i}`);
  for (let i = 0; i < 20; i++) assert.equal((await ws.next()).payload.toString(), `burst ${i}`, 'in order');
  // The server speaks on its own too.
  ws.text('push:3');
  for (let i = 0; i < 3; i++) assert.equal((await ws.next()).payload.toString(), `push ${i}`);

  const closedBefore = bk.wsClosed;
  ws.close(1000, 'done');
  f = await ws.next();
  assert.equal(f.op, OP.CLOSE, 'the backend\'s close frame comes back');
  assert.equal(f.payload.readUInt16BE(0), 1000);
  assert.ok(await ws.conn.closesWithin(5000), 'then the edge closes the connection');
  await bk.until(() => bk.wsClosed > closedBefore, 5000, 'the backend\'s socket closed');
  await assertHealthy('after a WebSocket');
});

test('WebSocket: the backend closing ends the client\'s connection', async () => {
  const ws = await wsConnect(client, HOST, '/ws');
  assert.equal(ws.response.status, 101);
  ws.text('before');
  assert.equal((await ws.next()).payload.toString(), 'before');
  ws.text('close-me');
  const f = await ws.next();
  assert.equal(f.op, OP.CLOSE);
  assert.equal(f.payload.readUInt16BE(0), 1000);
  assert.equal(f.payload.subarray(2).toString(), 'bye');
  assert.ok(await ws.conn.closesWithin(5000), 'the edge closes the client connection');
});

test('WebSocket: the client dropping its connection closes the backend\'s', async () => {
  const ws = await wsConnect(client, HOST, '/ws');
  assert.equal(ws.response.status, 101);
  ws.text('x');
  await ws.next();
  const before = bk.wsClosed;
  ws.conn.close();
  await bk.until(() => bk.wsClosed > before, 5000, 'the backend\'s WebSocket closed after the client vanished');
  await assertHealthy('after a dropped WebSocket');
});

test('an Upgrade the backend refuses is an ordinary response', async () => {
  const c = await client.raw(HOST);
  c.write(c.head('GET', '/_t/status?code=426', [['Upgrade', 'websocket'], ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Version', '13']]));
  // The backend answers 400 (no key): the exchange stays HTTP.
  const r = await c.response();
  assert.ok(r.status === 400 || r.status === 426, `${r.raw}`);
  c.close();
  await assertHealthy('after a refused upgrade');
});

// ---- what the edge refuses itself ----

test('targets and methods the edge refuses itself: CONNECT 405, asterisk and absolute forms 400, bad escapes 400, an unknown Expect 417', async () => {
  const mark = bk.requests.length;
  const cases = [
    ['CONNECT', `${HOST}:443`, [], 405],
    ['OPTIONS', '*', [], 400],
    ['GET', `https://${HOST}/x`, [], 400],
    ['GET', '/%zz', [], 400],
    ['GET', '/a%00b', [], 400],
    ['POST', '/x', [['Content-Length', '3'], ['Expect', 'something-else']], 417],
  ];
  for (const [method, target, hdrs, want] of cases) {
    const c = await client.raw(HOST);
    c.write(c.head(method, target, [...hdrs, ['Connection', 'close']]));
    const r = await c.response();
    c.close();
    assert.equal(r.status, want, `${method} ${target}: ${r.raw}`);
  }
  assert.equal(bk.requests.length, mark, 'none of them reached the backend');
  await assertHealthy('after refused targets');
});

test('a response that completes while the request body is still arriving: the rest is not read, the connection closes', async () => {
  const c = await client.raw(HOST);
  c.write(c.head('POST', '/_t/early', [['Content-Length', String(10 * 1024 * 1024)]]));
  c.write(Buffer.alloc(4096, 0x41));
  const r = await c.response();
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).early, true);
  assert.ok(await c.closesWithin(5000), 'the edge closes the connection instead of reading 10 MiB it will not use');
  c.close();
  await assertHealthy('after an early response');
});

// ---- the access log ----

/** The edge's http_request_done line for request id `id`. */
const accessLine = (id) => edge.proc.waitLog((l) => l.event === 'http_request_done' && l.req === id, 5000, `http_request_done req=${id}`);

test('the access log has one line per request however it ends: answered (ok), left by the client mid-body or before the answer (aborted)', async () => {
  const r = await client.request(HOST, '/logged', { headers: { 'x-request-id': 'answered-whole' } });
  assert.equal(r.status, 200);
  const ok = await accessLine('answered-whole');
  assert.equal(ok.status, 200, ok._raw);
  assert.equal(ok.result, 'ok', ok._raw);
  assert.equal(ok.app, 'web', ok._raw);

  // The client leaves in the middle of a (slow, chunked) body.
  const c = await client.raw(HOST);
  c.write(c.head('GET', '/_t/slow?n=200&ms=20&size=1000', [['X-Request-Id', 'leaves-mid-body']]));
  const deadlineAt = Date.now() + 5000;
  while (c.buf.indexOf('\r\n\r\n') < 0 || c.buf.length < c.buf.indexOf('\r\n\r\n') + 2000) await c.more(deadlineAt, 'the head and some body');
  c.close();
  const mid = await accessLine('leaves-mid-body');
  assert.equal(mid.status, 200, mid._raw);
  assert.equal(mid.result, 'aborted', mid._raw);
  assert.ok(mid.bytes_out > 2000, `bytes_out counts what was sent: ${mid._raw}`);
  assert.equal(mid.connector, a.id, mid._raw);

  // The client leaves before the backend answers: no status was sent.
  const d = await client.raw(HOST);
  d.write(d.head('GET', '/_t/sleep?ms=4000', [['X-Request-Id', 'leaves-early']]));
  await bk.until(() => bk.byRequestId('leaves-early').length === 1, 5000, 'the request at the backend');
  d.close();
  const early = await accessLine('leaves-early');
  assert.equal(early.status, 0, early._raw);
  assert.equal(early.result, 'aborted', early._raw);
  // The connector stops the backend request instead of waiting for its answer.
  const cl = await a.proc.waitLog((l) => l.event === 'backend_request_done' && l.req === 'leaves-early', 3000, 'the connector\'s line');
  assert.notEqual(cl.result, 'ok', cl._raw);
  assert.equal(edge.proc.lines.filter((l) => l.event === 'http_request_done' && ['answered-whole', 'leaves-mid-body', 'leaves-early'].includes(l.req)).length, 3, 'one line each');
});

// ---- edge options ----

test('edge options: the plain-HTTP listener redirects to https (301) and closes; Server-Timing; a slow head gets 408; an idle keep-alive connection is closed', async () => {
  const httpPort = await freePort();
  const site = await startSite({
    connectors: [{ name: 'o' }],
    limits: { http_head_timeout: '1s', http_idle_timeout: '2s' },
    extra: { http_listen: [`127.0.0.1:${httpPort}`], server_timing: true },
  });
  const { edge: e2, client: c2 } = site;
  await addApp(e2, 'opt', { internal: `http://localhost:${bk.port}/`, set: { hsts: true } });
  const host = appHost('opt');

  // Plain HTTP: a redirect to the same host and target on the TLS port, nothing else.
  const p = await RawConn.openPlain(httpPort, host);
  p.write(`GET /some/path?q=1 HTTP/1.1\r\nHost: ${host}:${httpPort}\r\n\r\n`);
  const red = await p.response();
  assert.equal(red.status, 301, red.raw);
  assert.equal(red.header('location'), `https://${host}:${c2.port}/some/path?q=1`);
  assert.equal(red.header('strict-transport-security'), undefined, 'no HSTS over plain HTTP');
  assert.ok(await p.closesWithin(5000), 'the plain-HTTP connection closes');
  p.close();
  const nohost = await RawConn.openPlain(httpPort, host);
  nohost.write('GET / HTTP/1.1\r\n\r\n');
  assert.equal((await nohost.response()).status, 400, 'no Host: 400');
  nohost.close();

  // Server-Timing on app answers.
  const r = await c2.request(host, '/timed');
  assert.equal(r.status, 200);
  assert.match(r.headers['server-timing'] || '', /^edge;dur=\d+(\.\d+)?, backend;dur=\d+(\.\d+)?$/, `Server-Timing: ${r.headers['server-timing']}`);

  // A head that does not complete within http_head_timeout (1 s): 408, closed.
  const slow = await c2.raw(host);
  const t0 = Date.now();
  slow.write('GET /never-finished HTTP/1.1\r\nHost: x\r\n');
  const to = await slow.response({ timeoutMs: 6000 });
  assert.equal(to.status, 408, to.raw);
  assert.ok(await slow.closesWithin(3000), 'closed after the 408');
  assert.ok(Date.now() - t0 >= 900, `not before the timeout: ${Date.now() - t0} ms`);
  slow.close();

  // An idle keep-alive connection is closed after http_idle_timeout (2 s).
  const idle = await c2.raw(host);
  idle.write(idle.head('GET', '/once'));
  assert.equal((await idle.response()).status, 200);
  const i0 = Date.now();
  assert.ok(await idle.closesWithin(6000), 'the idle connection is closed');
  const idleMs = Date.now() - i0;
  assert.ok(idleMs >= 1500, `after about 2 s: ${idleMs} ms`);
  idle.close();
});
