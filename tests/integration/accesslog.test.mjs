// SPDX-License-Identifier: MIT
// The edge's access log (docs/logging.md `http_request_done`, docs/apps.md "The access log"):
// every request the edge accepts logs exactly one line and counts once in requests_total,
// however its exchange ends: answered whole, given up by the client (before or during the
// response), or cut because the upstream failed. The line carries the status sent (0 when
// none), the bytes so far and `result`. A response whose Content-Length reached the client
// counts as answered even when the client closes before the stream's END_STREAM reached the
// edge. A real connector and backend stand for the common case; a fake connector
// (lib/fake_connector.mjs) holds END_STREAM back or resets at will, which makes each ending
// happen every time instead of now and then.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, sanitizerReports } from './lib/harness.mjs';
import { TestBackend } from './lib/backend.mjs';
import { startSite, addApp, addGroup, appHost } from './lib/publish.mjs';
import { FakeTunnel, registerFake, T, E, frame } from './lib/fake_connector.mjs';

let edge;
let client;
let conn; // the real connector
let bk;
let ft; // the fake connector's tunnel (group "Fake")
const REAL = appHost('logreal');
const FAKE = appHost('logfake');

before(async () => {
  const site = await startSite({ connectors: [{ name: 'a' }] });
  ({ edge, client } = site);
  conn = site.conns.a;
  bk = await TestBackend.start();
  await addApp(edge, 'logreal', { internal: `http://127.0.0.1:${bk.port}/` });
  await addGroup(edge, 'Fake');
  const tok = await edge.mintToken({ group: 'Fake' });
  const { connectorId, keys } = await registerFake(edge.port, edge.certs.ca, tok.token);
  ft = await FakeTunnel.connect(edge.port, edge.certs.ca);
  await ft.handshake(connectorId, keys);
  await addApp(edge, 'logfake', { internal: `http://127.0.0.1:${bk.port}/`, group: 'Fake' });
});

after(async () => {
  try {
    await cleanup();
  } finally {
    if (ft) ft.close();
    if (bk) await bk.stop().catch(() => {});
  }
});

let reported = '';
afterEach(() => {
  for (const p of [edge.proc, conn.proc]) {
    assert.ok(p.running(), `${p.name} exited during the test: ${JSON.stringify(p.exitInfo)}\n${p.tail()}`);
  }
  const rep = sanitizerReports();
  if (rep && rep !== reported) {
    reported = rep;
    throw new Error(`sanitizer report:\n${rep}`);
  }
});

// ---- helpers ----

const isDone = (id) => (l) => l.event === 'http_request_done' && l.req === id;

/** The first access line of request `id` (waits for it; accessLines() counts them). */
const accessLine = (id, timeoutMs = 5000) => edge.proc.waitLog(isDone(id), timeoutMs, `http_request_done for ${id}`);

/** Every access line of request `id` logged so far. */
const accessLines = (id) => edge.proc.lines.filter(isDone(id));

async function requestsTotal() {
  const st = await edge.cliJson(['status']);
  assert.equal(typeof st.requests_total, 'number', JSON.stringify(st));
  return st.requests_total;
}

/** A RESPONSE header block (docs/protocol.md §5.3). */
function responseBlock(status, headers) {
  const parts = [Buffer.from([status >> 8, status & 0xff, headers.length >> 8, headers.length & 0xff])];
  for (const [n, v] of headers) {
    for (const s of [n, v]) {
      const b = Buffer.from(s, 'latin1');
      const l = Buffer.alloc(2);
      l.writeUInt16BE(b.length);
      parts.push(l, b);
    }
  }
  return Buffer.concat(parts);
}

function resetPayload(code) {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return p;
}

/** The fake tunnel's next REQUEST frame received at or after index `from`. */
const nextRequest = (from) =>
  ft.waitFrame((f) => f.type === T.REQUEST && ft.frames.indexOf(f) >= from, 5000, 'REQUEST');

/** Waits until the raw connection holds a response head and at least `bodyBytes` after it. */
async function readHeadAnd(rc, bodyBytes, timeoutMs = 5000) {
  const deadlineAt = Date.now() + timeoutMs;
  for (;;) {
    const end = rc.buf.indexOf('\r\n\r\n');
    if (end >= 0 && rc.buf.length - (end + 4) >= bodyBytes) {
      return { head: rc.buf.subarray(0, end + 4).toString('latin1'), headLen: end + 4, body: rc.buf.length - (end + 4) };
    }
    await rc.more(deadlineAt, `response head and ${bodyBytes} body bytes`);
  }
}

function checkCut(l, { status, result }) {
  assert.equal(l.status, status, l._raw);
  assert.equal(l.result, result, l._raw);
  assert.equal(typeof l.err, 'string', `a cut exchange names its error: ${l._raw}`);
  assert.equal(typeof l.err_code, 'number', l._raw);
}

// ---- tests ----

test('a client that closes once it has the whole Content-Length body is logged ok, before the stream\'s END_STREAM', async () => {
  // The fake connector sends the whole body but holds END_STREAM back: the client (node's
  // https without an agent: Connection: close) has its response and closes first.
  const total0 = await requestsTotal();
  const N = 5;
  for (let i = 0; i < N; i++) {
    const id = `al-cl-${i}`;
    const from = ft.frames.length;
    const p = client.request(FAKE, `/cl${i}`, { headers: { 'x-request-id': id } });
    const f = await nextRequest(from);
    ft.write(frame(T.RESPONSE, 0, f.stream, responseBlock(200, [['content-type', 'text/plain'], ['content-length', '5']])));
    ft.write(frame(T.DATA, 0, f.stream, Buffer.from('hello')));
    const r = await p;
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello');
    assert.equal(r.headers['x-request-id'], id);
    const l = await accessLine(id);
    assert.equal(l.status, 200, l._raw);
    assert.equal(l.result, 'ok', `all of the announced length reached the client: ${l._raw}`);
    assert.equal(l.err, undefined, l._raw);
    assert.equal(l.method, 'GET');
    assert.equal(l.path, `/cl${i}`);
    assert.equal(l.app, 'logfake');
    assert.match(String(l.tunnel), /^tn_/, l._raw);
    assert.ok(l.bytes_out > 5, `head and body: ${l._raw}`);
    // The exchange ended with the client: the stream is dropped (CANCEL), END_STREAM or not.
    const rst = await ft.waitFrame((x) => x.type === T.RESET && x.stream === f.stream, 5000, `RESET of stream ${f.stream}`);
    assert.equal(rst.payload.readUInt32BE(0), E.CANCEL);
  }
  assert.equal((await requestsTotal()) - total0, N, 'each request counts once in requests_total');
  for (let i = 0; i < N; i++) assert.equal(accessLines(`al-cl-${i}`).length, 1, `one line for al-cl-${i}`);
});

test('sequential requests through a real connector, each on a new connection closed by the client: one line each', async () => {
  // The finding's loop: the client has the response when its last Content-Length byte
  // arrives and closes, which may be before the stream's END_STREAM reached the edge.
  const total0 = await requestsTotal();
  const N = 100;
  for (let i = 0; i < N; i++) {
    const id = `al-seq-${i}`;
    const r = await client.request(REAL, `/seq${i}`, { headers: { 'x-request-id': id } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-request-id'], id);
    assert.ok(r.headers['content-length'], 'the backend answers with Content-Length');
    const l = await accessLine(id, 3000);
    assert.equal(l.status, 200, l._raw);
    assert.equal(l.result, 'ok', l._raw);
    assert.equal(l.app, 'logreal', l._raw);
    assert.equal(typeof l.upstream_ms, 'number', l._raw);
  }
  assert.equal((await requestsTotal()) - total0, N, 'each request counts once in requests_total');
  for (let i = 0; i < N; i++) assert.equal(accessLines(`al-seq-${i}`).length, 1, `one line for al-seq-${i}`);
});

test('a client that goes away in the middle of a response is logged aborted, with the status sent and the bytes so far', async () => {
  const total0 = await requestsTotal();

  // Through the real connector: a Content-Length body of 40 KiB sent over 2 s.
  const id1 = 'al-abort-real';
  const rc1 = await client.raw(REAL);
  rc1.write(rc1.head('GET', '/_t/slow?n=40&ms=50&size=1024&cl=1', [['X-Request-Id', id1]]));
  const got1 = await readHeadAnd(rc1, 1);
  assert.match(got1.head, /^HTTP\/1\.1 200 /);
  assert.match(got1.head, /\r\ncontent-length: 40960\r\n/i);
  rc1.close();
  const l1 = await accessLine(id1);
  checkCut(l1, { status: 200, result: 'aborted' });
  assert.ok(l1.bytes_out >= got1.headLen + got1.body, `at least what the client read: ${l1._raw}`);
  assert.ok(l1.bytes_out < got1.headLen + 40960, `not the whole body: ${l1._raw}`);
  assert.equal(l1.app, 'logreal', l1._raw);
  assert.match(String(l1.tunnel), /^tn_/, l1._raw);

  // Through the fake connector, which sends 100 bytes of 1000 and then nothing.
  const id2 = 'al-abort-fake';
  const from = ft.frames.length;
  const rc2 = await client.raw(FAKE);
  rc2.write(rc2.head('GET', '/mid', [['X-Request-Id', id2]]));
  const f = await nextRequest(from);
  ft.write(frame(T.RESPONSE, 0, f.stream, responseBlock(200, [['content-length', '1000']])));
  ft.write(frame(T.DATA, 0, f.stream, Buffer.alloc(100, 0x61)));
  const got2 = await readHeadAnd(rc2, 100);
  rc2.close();
  const l2 = await accessLine(id2);
  checkCut(l2, { status: 200, result: 'aborted' });
  assert.equal(l2.bytes_out, got2.headLen + 100, `the head and the 100 bytes: ${l2._raw}`);
  const rst = await ft.waitFrame((x) => x.type === T.RESET && x.stream === f.stream, 5000, 'RESET of the stream');
  assert.equal(rst.payload.readUInt32BE(0), E.CANCEL);

  assert.equal((await requestsTotal()) - total0, 2);
  assert.equal(accessLines(id1).length, 1);
  assert.equal(accessLines(id2).length, 1);
});

test('a client that goes away before any response is logged aborted with status 0 and its tunnel', async () => {
  const total0 = await requestsTotal();
  const id = 'al-abort-early';
  const from = ft.frames.length;
  const rc = await client.raw(FAKE);
  rc.write(rc.head('GET', '/early', [['X-Request-Id', id]]));
  const f = await nextRequest(from);
  rc.close();
  const l = await accessLine(id);
  checkCut(l, { status: 0, result: 'aborted' });
  assert.equal(l.app, 'logfake', l._raw);
  assert.match(String(l.tunnel), /^tn_/, `the stream was open: ${l._raw}`);
  assert.equal(l.upstream_ms, null, l._raw);
  assert.equal(l.bytes_out, 0, l._raw);
  await ft.waitFrame((x) => x.type === T.RESET && x.stream === f.stream, 5000, 'RESET of the stream');
  assert.equal((await requestsTotal()) - total0, 1);
  assert.equal(accessLines(id).length, 1);
});

test('a response cut because the upstream reset after it began is logged error, once', async () => {
  const total0 = await requestsTotal();
  const id = 'al-upstream-reset';
  const from = ft.frames.length;
  const rc = await client.raw(FAKE);
  rc.write(rc.head('GET', '/cut', [['X-Request-Id', id]]));
  const f = await nextRequest(from);
  ft.write(frame(T.RESPONSE, 0, f.stream, responseBlock(200, [['content-length', '1000']])));
  ft.write(frame(T.DATA, 0, f.stream, Buffer.alloc(10, 0x62)));
  await readHeadAnd(rc, 10);
  ft.write(frame(T.RESET, 0, f.stream, resetPayload(E.INTERNAL_ERROR)));
  assert.ok(await rc.closesWithin(5000), 'the client connection is cut');
  const l = await accessLine(id);
  checkCut(l, { status: 200, result: 'error' });
  assert.equal((await requestsTotal()) - total0, 1);
  assert.equal(accessLines(id).length, 1);
});
