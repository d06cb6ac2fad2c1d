// SPDX-License-Identifier: MIT
// Live tunnels (docs/protocol.md §9, §10, §11.8, §12.4): revoking a connector closes its
// tunnels at once and it cannot come back; moving it keeps its tunnels; a connector that
// dies or freezes turns inactive within the idle timeout while another one stays up; SIGTERM
// drains a connector with GOAWAY(NO_ERROR), lets a stream in flight finish and exits 0. A
// fake edge (lib/fake_edge.mjs) shows what the connector puts on the wire, sends it REQUEST
// frames for a Node backend, and malformed handshake documents. The edges here ping every
// 1 s and give up after 3 s of silence (FAST_LIMITS; the defaults are 15 s and 45 s).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Edge, Connector, cleanup, show, sleep, eventually, within, FAST_LIMITS } from './lib/harness.mjs';
import { FakeEdge } from './lib/fake_edge.mjs';
import { T, E, errName, frame, requestBlock, parseResponseBlock } from './lib/fake_connector.mjs';

const fakeEdges = [];
const backends = [];
afterEach(async () => {
  try {
    await cleanup();
  } finally {
    while (fakeEdges.length) await fakeEdges.pop().close();
    while (backends.length) backends.pop().close();
  }
});

const IDLE_MS = 3000;
const PING_MS = 1000;
assert.equal(FAST_LIMITS.idle_timeout, `${IDLE_MS / 1000}s`);

/** An edge with two active connectors a and b (2 tunnels each). */
async function twoConnectors() {
  const edge = await Edge.create();
  await edge.start();
  const a = new Connector(edge, 'a');
  const b = new Connector(edge, 'b');
  await Promise.all([a.registerOk(), b.registerOk()]);
  a.start();
  b.start();
  await Promise.all([edge.waitActive(a.id, 2), edge.waitActive(b.id, 2)]);
  return { edge, a, b };
}

test('connector delete closes its tunnels at once; it cannot connect again', async () => {
  const { edge, a, b } = await twoConnectors();
  const id = a.id;
  const mark = edge.proc.mark();
  const cmark = a.proc.mark();
  const t0 = Date.now();
  const r = await edge.cli(['connector', 'delete', id]);
  assert.equal(r.code, 0, show(r));

  // The edge closes both tunnels with a reason, right away.
  const downs = await edge.proc.waitCount((l) => l.event === 'tunnel_down' && l.connector === id, 2, 2000,
    'edge tunnel_down for the deleted connector', mark);
  assert.ok(Date.now() - t0 < 2000, 'tunnels closed within 2 s of the delete');
  for (const l of downs) assert.match(l._raw, /revoked/i, `edge tunnel_down names the revocation: ${l._raw}`);
  await edge.proc.waitLog((l) => l.event === 'connector_revoked' && l.connector === id, 2000, 'connector_revoked', mark);

  // The connector was told: GOAWAY(AUTH_FAILED, "revoked"), and backs off at least 60 s (§11.8).
  const cdowns = await a.proc.waitCount((l) => l.event === 'tunnel_down', 2, 3000, 'connector tunnel_down', cmark);
  for (const l of cdowns) {
    assert.match(l._raw, /auth_failed/i, `connector tunnel_down names AUTH_FAILED: ${l._raw}`);
    assert.match(l._raw, /revoked/, `connector tunnel_down carries the edge's text "revoked": ${l._raw}`);
    assert.ok(Number.isInteger(l.retry_in_ms) && l.retry_in_ms >= 60000,
      `after AUTH_FAILED the retry is >= 60 s, got retry_in_ms=${l.retry_in_ms}`);
  }
  const need = await a.proc.waitLog('registration_needed', 1000, 'registration_needed (docs/connector.md)', cmark);
  assert.match(need._raw, /revoked/);

  // It is gone from the list; b is untouched.
  const list = await edge.cliJson(['connector', 'list']);
  assert.equal(list.connectors.find((c) => c.id === id), undefined, 'the deleted connector is not listed');
  const bi = list.connectors.find((c) => c.id === b.id);
  assert.equal(bi.status, 'active');
  assert.equal(bi.tunnels, 2);
  assert.equal(edge.connectorEvents('tunnel_down', b.id).length, 0, 'b lost no tunnel');

  // A fresh start with the same credentials: every handshake is refused.
  const stop = await a.proc.stop('SIGTERM', 5000);
  assert.equal(stop.code, 0, `connector exit after SIGTERM: ${JSON.stringify(stop)}\n${a.proc.tail()}`);
  const m2 = edge.proc.mark();
  const p2 = a.start();
  const hf = await edge.proc.waitLog('tunnel_handshake_failed', 5000, 'tunnel_handshake_failed', m2);
  assert.match(hf._raw, /unknown[ _]connector|revoked/, `edge refusal reason: ${hf._raw}`);
  await p2.waitLog((l) => /auth_failed/i.test(l._raw) && /unknown[ _]connector|revoked/.test(l._raw), 3000,
    'the restarted connector logs AUTH_FAILED with the reason');
  await sleep(500);
  assert.equal(p2.events('tunnel_up').length, 0, 'the revoked connector never gets a tunnel up');
  assert.equal(edge.proc.lines.slice(m2).filter((l) => l.event === 'tunnel_up').length, 0, 'edge: no tunnel_up');
});

test('connector move: the live tunnels follow the new group without reconnecting', async () => {
  const { edge, a, b } = await twoConnectors();
  const r = await edge.cli(['group', 'add', 'Eng']);
  assert.equal(r.code, 0, show(r));
  const mark = edge.proc.mark();
  const cmark = a.proc.mark();
  const mv = await edge.cli(['connector', 'move', a.id, '--group', 'Eng']);
  assert.equal(mv.code, 0, show(mv));
  await edge.proc.waitLog((l) => l.event === 'connector_moved' && l.connector === a.id, 2000, 'connector_moved', mark);
  const info = await edge.connectorInfo(a.id);
  assert.equal(info.group, 'Eng');
  assert.equal(info.status, 'active');
  assert.equal(info.tunnels, 2, 'still 2 live tunnels');
  const bi = await edge.connectorInfo(b.id);
  assert.equal(bi.group, 'Default');
  await sleep(300);
  assert.equal(edge.connectorEvents('tunnel_down', a.id).length, 0, 'no tunnel was closed');
  assert.equal(a.proc.events('tunnel_down', cmark).length, 0, 'the connector saw no tunnel go down');
  assert.equal(a.proc.events('tunnel_up').length, 2, 'and dialled no new one');
  // The group is in use now.
  const del = await edge.cli(['group', 'delete', 'Eng']);
  assert.equal(del.code, 1, show(del));
  const bad = await edge.cli(['connector', 'move', a.id, '--group', 'NoSuchGroup']);
  assert.equal(bad.code, 1, show(bad));
  assert.equal((await edge.connectorInfo(a.id)).group, 'Eng');
});

test('kill -9 of one of two connectors: it turns inactive within the idle timeout, the other stays active', async () => {
  const { edge, a, b } = await twoConnectors();
  const mark = edge.proc.mark();
  const t0 = Date.now();
  a.proc.kill('SIGKILL');
  await edge.proc.waitCount((l) => l.event === 'tunnel_down' && l.connector === a.id, 2, IDLE_MS + 1500,
    'edge tunnel_down for the killed connector', mark);
  const info = await eventually(async () => {
    const c = await edge.connectorInfo(a.id);
    return c.status === 'inactive' ? c : null;
  }, IDLE_MS + 2000, 100, 'killed connector inactive');
  assert.ok(Date.now() - t0 <= IDLE_MS + 2000, `inactive after ${Date.now() - t0} ms`);
  assert.equal(info.tunnels, 0);
  // Wait one more idle period: b must stay active throughout.
  await sleep(IDLE_MS + 500);
  const bi = await edge.connectorInfo(b.id);
  assert.equal(bi.status, 'active');
  assert.equal(bi.tunnels, 2);
  assert.equal(edge.connectorEvents('tunnel_down', b.id).length, 0, 'b lost no tunnel');
});

test('a frozen connector (SIGSTOP) is declared dead after the idle timeout, and reconnects once resumed', async () => {
  const { edge, a, b } = await twoConnectors();
  const mark = edge.proc.mark();
  const t0 = Date.now();
  a.proc.stopped = true;
  a.proc.kill('SIGSTOP');
  // Its sockets stay open, so only the edge's liveness check can notice (§10).
  const downs = await edge.proc.waitCount((l) => l.event === 'tunnel_down' && l.connector === a.id, 2,
    IDLE_MS + PING_MS + 3000, 'edge tunnel_down (idle timeout) for the frozen connector', mark);
  const dt = Date.now() - t0;
  assert.ok(dt >= IDLE_MS - PING_MS - 500, `declared dead after ${dt} ms: too early for a ${IDLE_MS} ms idle timeout`);
  assert.ok(dt <= IDLE_MS + PING_MS + 1500, `declared dead after ${dt} ms: too late for a ${IDLE_MS} ms idle timeout`);
  for (const l of downs) assert.match(l._raw, /idle|timeout/i, `tunnel_down names the idle timeout: ${l._raw}`);
  assert.equal((await edge.connectorInfo(a.id)).status, 'inactive');
  const bi = await edge.connectorInfo(b.id);
  assert.equal(bi.status, 'active');
  assert.equal(bi.tunnels, 2);
  assert.equal(edge.connectorEvents('tunnel_down', b.id).length, 0, 'b lost no tunnel');

  // Resumed, it finds its tunnels gone and dials again.
  a.proc.kill('SIGCONT');
  a.proc.stopped = false;
  await edge.waitActive(a.id, 2, 8000);
});

test('a frozen edge (SIGSTOP): the connector declares its tunnels dead after the idle timeout', async () => {
  const edge = await Edge.create();
  await edge.start();
  const a = new Connector(edge, 'a');
  await a.registerOk();
  await a.startActive();
  const cmark = a.proc.mark();
  const t0 = Date.now();
  edge.proc.stopped = true;
  edge.proc.kill('SIGSTOP');
  try {
    await a.proc.waitCount((l) => l.event === 'tunnel_down', 2, IDLE_MS + PING_MS + 3000,
      'connector tunnel_down (idle timeout from welcome)', cmark);
    const dt = Date.now() - t0;
    assert.ok(dt >= IDLE_MS - PING_MS - 500 && dt <= IDLE_MS + PING_MS + 1500,
      `connector noticed after ${dt} ms; the welcome's idle_timeout_ms is ${IDLE_MS}`);
  } finally {
    edge.proc.kill('SIGCONT');
    edge.proc.stopped = false;
  }
  await edge.waitActive(a.id, 2, 10000);
});

test('SIGTERM on a connector: GOAWAY(NO_ERROR) on its tunnels, drain, exit 0; the other connector stays', async () => {
  const { edge, a, b } = await twoConnectors();
  const mark = edge.proc.mark();
  const cmark = a.proc.mark();
  const t0 = Date.now();
  const ex = await a.proc.stop('SIGTERM', 5000);
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${a.proc.tail()}`);
  assert.ok(Date.now() - t0 < 3000, `no stream in flight: the drain should be quick, took ${Date.now() - t0} ms`);
  await a.proc.waitLog('drain_started', 100, 'drain_started', cmark);
  await a.proc.waitLog('drain_done', 100, 'drain_done', cmark);

  const downs = await edge.proc.waitCount((l) => l.event === 'tunnel_down' && l.connector === a.id, 2, 2000,
    'edge tunnel_down for the drained connector', mark);
  // The edge received GOAWAY(NO_ERROR) on each of them (docs/logging.md tunnel_goaway_received).
  for (const l of downs) {
    const g = edge.proc.lines.slice(mark).find((x) => x.event === 'tunnel_goaway_received' && x.tunnel === l.tunnel);
    assert.ok(g, `tunnel_goaway_received for ${l.tunnel}`);
    assert.equal(g.code, 'NO_ERROR', g._raw);
  }
  for (const l of downs) {
    assert.match(l._raw, /NO_ERROR|drain|goaway|going away/i, `edge logs the tunnel going away gracefully: ${l._raw}`);
    assert.doesNotMatch(l._raw, /PROTOCOL_ERROR|ECONNRESET|idle/i, `not an error: ${l._raw}`);
  }
  assert.equal((await edge.connectorInfo(a.id)).status, 'inactive');
  const bi = await edge.connectorInfo(b.id);
  assert.equal(bi.status, 'active');
  assert.equal(bi.tunnels, 2);
});

/**
 * A connector registered by a real edge, then served by a fake edge (Node, same certificate)
 * that checks its signature (§11.6) and records what it sends. Resolves once its 2 tunnels
 * are up.
 */
async function fakeEdgeFor({ drain = '3s', welcome = {}, challenge = {} } = {}) {
  const edge = await Edge.create();
  await edge.start();
  const a = new Connector(edge, 'a', { drain });
  await a.registerOk();
  const cred = a.credentials;
  await edge.stop();
  const fe = await FakeEdge.start({ cert: edge.certs.edge.crt, key: edge.certs.edge.key, connectorId: cred.connector_id,
    publicKey: cred.public_key, welcome, challenge });
  fakeEdges.push(fe);
  a.extra = { edges: [`localhost:${fe.port}`] };
  a.writeConfig();
  return { a, fe };
}

async function onFakeEdge(drain) {
  const { a, fe } = await fakeEdgeFor({ drain });
  const p = a.start();
  await fe.until(() => fe.live().length === 2, 8000, 'two tunnels authenticated by the fake edge');
  for (const t of fe.tunnels) {
    assert.equal(t.alpn, 'portico/1');
    if (t.auth) {
      assert.equal(t.authOk, true, `auth verified: ${t.error}`);
      assert.match(t.auth.agent, /^portico-connector\//);
    }
  }
  await p.waitCount((l) => l.event === 'tunnel_up', 2, 3000, 'connector tunnel_up');
  return { a, p, fe };
}

/** A backend whose /slow answers "done" after delayMs; `arrived` resolves on the request. */
async function slowBackend(delayMs) {
  let arrived;
  const b = { arrived: new Promise((r) => (arrived = r)), timers: [] };
  b.server = http.createServer((req, res) => {
    arrived(req);
    b.timers.push(setTimeout(() => res.end('done'), delayMs));
  });
  await new Promise((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = b.server.address().port;
  b.close = () => {
    b.timers.forEach(clearTimeout);
    b.server.closeAllConnections();
    b.server.close();
  };
  backends.push(b);
  return b;
}

const slowRequest = (port) => frame(T.REQUEST, 1 /* END_STREAM */, 1, requestBlock({
  port, host: '127.0.0.1', method: 'GET', target: '/slow', headers: [['host', `127.0.0.1:${port}`], ['x-request-id', 'itest-1']],
}));

test('SIGTERM on a connector, seen on the wire: each tunnel gets GOAWAY(NO_ERROR, last stream 0) before it closes', async () => {
  const { p, fe } = await onFakeEdge('2s');
  const live = fe.live();
  const ex = await p.stop('SIGTERM', 5000);
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${p.tail()}`);
  await fe.until(() => live.every((t) => t.isClosed), 2000, 'tunnels closed');
  for (const t of live) {
    const g = t.frames.filter((f) => f.type === T.GOAWAY);
    assert.ok(g.length >= 1, `a GOAWAY on every tunnel: ${JSON.stringify(fe.summary())}`);
    assert.equal(errName(g[0].goaway.code), 'NO_ERROR', `first GOAWAY code: ${JSON.stringify(g[0].goaway)}`);
    assert.equal(g[0].goaway.last, 0, 'no REQUEST was received: Last Stream Id 0 (§9 rule 2)');
    assert.ok(g.every((x) => x.goaway.code === E.NO_ERROR), 'nothing but NO_ERROR');
  }
});

test('SIGTERM with a stream in flight: GOAWAY(NO_ERROR, last = its id), the response completes, later streams are refused, exit 0', async () => {
  const backend = await slowBackend(800);
  const { p, fe } = await onFakeEdge('5s');
  const [t, other] = fe.live();
  fe.send(t, slowRequest(backend.port));
  const req = await within(backend.arrived, 5000, 'the request did not reach the backend');
  assert.equal(req.url, '/slow');
  const t0 = Date.now();
  p.kill('SIGTERM');
  await fe.until(() => t.frames.some((f) => f.type === T.GOAWAY), 2000, 'GOAWAY on the busy tunnel');
  const g = t.frames.find((f) => f.type === T.GOAWAY).goaway;
  assert.equal(errName(g.code), 'NO_ERROR');
  assert.equal(g.last, 1, 'Last Stream Id = the stream in flight (§9 rule 2)');
  // A REQUEST crossing the GOAWAY (above its Last Stream Id) is refused, not processed.
  fe.send(t, frame(T.REQUEST, 1, 3, requestBlock({ port: backend.port, host: '127.0.0.1', target: '/slow', headers: [['host', 'x']] })));
  await fe.until(() => fe.streamFrames(t, 3).some((f) => f.type === T.RESET), 2000, 'RESET on stream 3');
  const rst = fe.streamFrames(t, 3).find((f) => f.type === T.RESET);
  assert.equal(errName(rst.payload.readUInt32BE(0)), 'REFUSED_STREAM');
  // The stream in flight finishes: RESPONSE 200, then "done", END_STREAM.
  await fe.until(() => fe.streamFrames(t, 1).some((f) => f.flags & 1), 5000, 'END_STREAM on stream 1');
  const s1 = fe.streamFrames(t, 1);
  assert.equal(s1[0].type, T.RESPONSE, `first frame of stream 1: ${JSON.stringify(s1.map((f) => f.type))}`);
  assert.equal(parseResponseBlock(s1[0].payload).status, 200);
  const body = Buffer.concat(s1.filter((f) => f.type === T.DATA).map((f) => f.payload)).toString();
  assert.equal(body, 'done');
  assert.ok(!s1.some((f) => f.type === T.RESET), 'stream 1 was not reset');
  const ex = await within(p.exited, 5000, 'the connector did not exit after its drain');
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${p.tail()}`);
  assert.ok(Date.now() - t0 >= 700, 'the connector waited for the stream in flight');
  await fe.until(() => t.isClosed && other.isClosed, 2000, 'both tunnels closed');
  const done = await p.waitLog('drain_done', 100);
  assert.notEqual(done.timed_out, true, `drain_done: ${done._raw}`);
});

test('SIGTERM with a stream outlasting drain_timeout: the stream is reset with CANCEL, exit 0 soon after the timeout', async () => {
  const backend = await slowBackend(10000);
  const { p, fe } = await onFakeEdge('1s');
  const [t] = fe.live();
  fe.send(t, slowRequest(backend.port));
  await within(backend.arrived, 5000, 'the request did not reach the backend');
  const t0 = Date.now();
  const ex = await p.stop('SIGTERM', 6000);
  const dt = Date.now() - t0;
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${p.tail()}`);
  assert.ok(dt >= 900 && dt <= 3500, `exited ${dt} ms after SIGTERM with drain_timeout 1 s`);
  const g = t.frames.find((f) => f.type === T.GOAWAY);
  assert.ok(g && g.goaway.code === E.NO_ERROR && g.goaway.last === 1, `GOAWAY(NO_ERROR, 1) first: ${JSON.stringify(fe.summary())}`);
  const rst = fe.streamFrames(t, 1).find((f) => f.type === T.RESET);
  assert.ok(rst, `stream 1 reset at the end of the drain (§9 rule 9): ${JSON.stringify(fe.summary())}`);
  assert.equal(errName(rst.payload.readUInt32BE(0)), 'CANCEL');
});

for (const [what, opts, text] of [
  ['a challenge offering only version 2', { challenge: { versions: [2] } }, 'unsupported version'],
  ['a challenge whose nonce is not 32 bytes', { challenge: { nonce: 'AAAA' } }, 'malformed challenge'],
  ['a welcome with ping_interval_ms out of range', { welcome: { ping_interval_ms: 10 } }, 'malformed welcome'],
  ['a welcome without tunnel_id', { welcome: { tunnel_id: undefined } }, 'malformed welcome'],
]) {
  test(`the connector refuses ${what}: GOAWAY(PROTOCOL_ERROR, "${text}"), no tunnel, retried later`, async () => {
    const { a, fe } = await fakeEdgeFor(opts);
    const p = a.start();
    await fe.until(() => fe.tunnels.some((t) => t.frames.some((f) => f.type === T.GOAWAY)), 5000, 'a GOAWAY from the connector');
    const t = fe.tunnels.find((x) => x.frames.some((f) => f.type === T.GOAWAY));
    const g = t.frames.find((f) => f.type === T.GOAWAY).goaway;
    assert.equal(errName(g.code), 'PROTOCOL_ERROR', JSON.stringify(g));
    assert.equal(g.last, 0);
    assert.equal(g.text, text, 'the debug text of protocol.md §11.8');
    await fe.until(() => t.isClosed, 2000, 'the connector closed the connection');
    await p.waitLog((l) => l.event === 'tunnel_down' && l._raw.includes(text.split(' ')[1]), 2000, 'connector tunnel_down naming the problem');
    // It dials again (the ordinary backoff), and never calls the tunnel up.
    await fe.until(() => fe.tunnels.length >= 3, 5000, 'a retry');
    assert.equal(p.events('tunnel_up').length, 0);
  });
}
