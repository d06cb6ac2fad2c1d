// SPDX-License-Identifier: MIT
// A fake connector (lib/fake_connector.mjs: Node's tls with ALPN portico/1 and hand-made
// frames) breaks docs/protocol.md on purpose, during and after the handshake. The edge must
// answer each time with GOAWAY carrying the error code that §3.5, §6.4 and §11.8 prescribe,
// close that tunnel and log it, while a real connector's tunnels on the same edge carry on.
// The same fake also checks the positive side: a well-formed handshake gets a welcome, an
// unknown frame type is ignored, a PING is answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Edge, Connector, cleanup, within, EDGE_HOST, FAST_LIMITS } from './lib/harness.mjs';
import {
  FakeTunnel, T, E, errName, frame, controlFrame, pingFrame, goawayFrame, registerFake, keyPair,
} from './lib/fake_connector.mjs';

const HANDSHAKE_MS = 2000;
let edge;
let real;
let fake; // {connectorId, keys}

before(async () => {
  edge = await Edge.create({ limits: { ...FAST_LIMITS, handshake_timeout: `${HANDSHAKE_MS / 1000}s` } });
  await edge.start();
  real = new Connector(edge, 'real');
  await real.registerOk();
  real.start();
  await edge.waitActive(real.id, 2);
  const tok = await edge.mintToken({ uses: 5 });
  fake = await registerFake(edge.port, edge.certs.ca, tok.token);
});

after(cleanup);

const connect = () => FakeTunnel.connect(edge.port, edge.certs.ca);

/** Waits for the edge's log line about the tunnel from local port `port`. */
function edgeLine(port, events, timeoutMs = 3000) {
  const peer = `127.0.0.1:${port}`;
  return edge.proc.waitLog((l) => events.includes(l.event) && (l.peer === peer || l._raw.includes(`"${peer}"`)),
    timeoutMs, `${events.join('/')} for peer ${peer}`);
}

/**
 * Sends bytes on a tunnel and expects GOAWAY(code[, text]) with Last Stream Id 0, then the
 * edge closing the connection, and a log line about that peer.
 */
async function expectGoaway(t, bytes, code, { text = null, events = ['tunnel_handshake_failed', 'tunnel_down'] } = {}) {
  if (bytes) t.write(bytes);
  const g = await t.waitGoaway(3000);
  assert.equal(errName(g.goaway.code), errName(code), `GOAWAY code (debug text "${g.goaway.text}")`);
  assert.equal(g.goaway.last, 0, 'the edge always sends Last Stream Id 0 (§9 rule 2)');
  if (text !== null) assert.equal(g.goaway.text, text, 'the debug text of §11.8');
  await within(t.closed, 2000, 'the edge did not close the connection');
  const l = await edgeLine(t.localPort, events);
  return { goaway: g.goaway, log: l };
}

/** A new tunnel that has received its challenge (the edge is in the handshake phase). */
async function inHandshake() {
  const t = await connect();
  assert.equal(t.alpn, 'portico/1');
  const ch = await t.waitControl('challenge');
  assert.ok(Array.isArray(ch.doc.versions) && ch.doc.versions.includes(1), `challenge versions: ${JSON.stringify(ch.doc)}`);
  assert.equal(Buffer.from(ch.doc.nonce, 'base64url').length, 32, 'challenge nonce is 32 bytes');
  assert.match(ch.doc.nonce, /^[A-Za-z0-9_-]{43}$/, 'nonce is unpadded base64url');
  return t;
}

/** A new tunnel authenticated as the fake connector. */
async function running() {
  const t = await connect();
  await t.handshake(fake.connectorId, fake.keys);
  return t;
}

// ---- during the handshake ----

test('handshake: a frame with the reserved bit set -> GOAWAY(PROTOCOL_ERROR)', async () => {
  const t = await inHandshake();
  await expectGoaway(t, frame(T.PING, 0, 0, Buffer.alloc(8), { rbit: true }), E.PROTOCOL_ERROR);
});

test('handshake: DATA on stream 0 -> GOAWAY(PROTOCOL_ERROR)', async () => {
  const t = await inHandshake();
  await expectGoaway(t, frame(T.DATA, 0, 0, Buffer.from('hello')), E.PROTOCOL_ERROR);
});

test('handshake: 0xff garbage (reserved bit set) -> GOAWAY(PROTOCOL_ERROR)', async () => {
  const t = await inHandshake();
  await expectGoaway(t, Buffer.alloc(64, 0xff), E.PROTOCOL_ERROR);
});

test('handshake: an HTTP request sent as frames (length over the limit) -> GOAWAY(FRAME_SIZE_ERROR)', async () => {
  // "GET / HTTP/1.1..." reads as length 0x474554, type 0x20 (unknown), R = 0: §3.5 step 2.
  const t = await inHandshake();
  await expectGoaway(t, Buffer.from(`GET / HTTP/1.1\r\nHost: ${EDGE_HOST}\r\n\r\n`), E.FRAME_SIZE_ERROR);
});

test('handshake: an auth CONTROL that is not JSON -> GOAWAY(PROTOCOL_ERROR, "malformed auth")', async () => {
  const t = await inHandshake();
  await expectGoaway(t, frame(T.CONTROL, 0, 0, Buffer.from('{"type":"auth",')), E.PROTOCOL_ERROR, { text: 'malformed auth' });
});

test('handshake: a REQUEST from the connector -> GOAWAY(PROTOCOL_ERROR)', async () => {
  const t = await inHandshake();
  await expectGoaway(t, frame(T.REQUEST, 1, 1, Buffer.alloc(16)), E.PROTOCOL_ERROR);
});

test('handshake: auth with version 2 -> GOAWAY(PROTOCOL_ERROR, "unsupported version")', async () => {
  const t = await inHandshake();
  const doc = { type: 'auth', version: 2, connector_id: fake.connectorId, agent: 'itest-fake/1', hostname: 'fake.test', signature: randomBytes(64).toString('base64url') };
  await expectGoaway(t, controlFrame(doc), E.PROTOCOL_ERROR, { text: 'unsupported version' });
});

test('handshake: an unknown connector id -> GOAWAY(AUTH_FAILED, "unknown connector")', async () => {
  const t = await connect();
  await assert.rejects(t.handshake(`cn_${randomBytes(8).toString('hex')}`, keyPair()), /AUTH_FAILED "unknown connector"/);
  await expectGoaway(t, null, E.AUTH_FAILED, { text: 'unknown connector' });
});

test('handshake: a signature by another key -> GOAWAY(AUTH_FAILED, "bad signature")', async () => {
  const t = await connect();
  await assert.rejects(t.handshake(fake.connectorId, keyPair()), /AUTH_FAILED "bad signature"/);
  const { log } = await expectGoaway(t, null, E.AUTH_FAILED, { text: 'bad signature' });
  assert.ok(!log._raw.includes(fake.keys.publicB64), 'the edge logs no key');
});

test('handshake: silence -> GOAWAY(TIMEOUT, "handshake timeout") after the configured deadline', async () => {
  const t0 = Date.now();
  const t = await inHandshake();
  const { goaway } = await expectGoaway(t, null, E.TIMEOUT, { text: 'handshake timeout' });
  const dt = Date.now() - t0;
  assert.ok(goaway && dt >= HANDSHAKE_MS - 300 && dt <= HANDSHAKE_MS + 1500, `closed after ${dt} ms (deadline ${HANDSHAKE_MS} ms)`);
});

// ---- after the handshake ----

test('a well-formed handshake by the Node client gets a welcome; unknown frames are ignored, PING answered', async () => {
  const t = await connect();
  const w = await t.handshake(fake.connectorId, fake.keys);
  assert.match(w.tunnel_id, /^[A-Za-z0-9_.-]{1,64}$/);
  assert.equal(w.group, 'Default');
  assert.equal(w.ping_interval_ms, 1000, 'welcome carries the configured ping interval');
  assert.equal(w.idle_timeout_ms, 3000, 'welcome carries the configured idle timeout');
  assert.ok(Array.isArray(w.edges) && w.edges.includes(`${EDGE_HOST}:${edge.port}`), `welcome edges ${JSON.stringify(w.edges)}`);
  // An unknown frame type on any stream is skipped (§3.4); the tunnel goes on.
  t.write(frame(0x20, 0xff, 7, Buffer.from('an extension the edge does not know')));
  const probe = Buffer.from('itest-42');
  t.write(pingFrame(probe));
  const ack = await t.waitFrame((f) => f.type === T.PING && (f.flags & 2) && f.payload.equals(probe), 3000, 'PING ACK');
  assert.equal(ack.stream, 0);
  assert.equal(t.frames.filter((f) => f.type === T.GOAWAY).length, 0, 'no GOAWAY');
  const info = await edge.connectorInfo(fake.connectorId);
  assert.equal(info.status, 'active');
  assert.equal(info.tunnels, 1);
  // A graceful goodbye from the connector: the edge closes and logs the tunnel down.
  t.write(goawayFrame(0, E.NO_ERROR, 'bye'));
  await within(t.closed, 3000, 'the edge did not close the tunnel after GOAWAY(NO_ERROR)');
  await edge.proc.waitLog((l) => l.event === 'tunnel_down' && l.connector === fake.connectorId, 2000, 'tunnel_down of the fake');
});

for (const [what, bytes] of [
  ['a frame with the reserved bit set', () => frame(T.PING, 0, 0, Buffer.alloc(8), { rbit: true })],
  ['DATA on stream 0', () => frame(T.DATA, 0, 0, Buffer.from('x'))],
  ['a REQUEST (only the edge sends them)', () => frame(T.REQUEST, 1, 1, Buffer.alloc(16))],
  ['a second auth', () => controlFrame({ type: 'auth', version: 1, connector_id: fake.connectorId, agent: 'x', hostname: '', signature: randomBytes(64).toString('base64url') })],
  ['a WINDOW of 0 on stream 0', () => frame(T.WINDOW, 0, 0, Buffer.alloc(4))],
]) {
  test(`running tunnel: ${what} -> GOAWAY(PROTOCOL_ERROR), tunnel closed and logged`, async () => {
    const t = await running();
    const mark = edge.proc.mark();
    await expectGoaway(t, bytes(), E.PROTOCOL_ERROR, { events: ['tunnel_down'] });
    const l = await edge.proc.waitLog((x) => x.event === 'tunnel_down' && x.connector === fake.connectorId, 2000, 'tunnel_down naming the fake', mark);
    assert.match(l._raw, /PROTOCOL_ERROR|protocol/i, `tunnel_down says why: ${l._raw}`);
  });
}

test('the real connector was unaffected by all of the above', async () => {
  const info = await edge.connectorInfo(real.id);
  assert.equal(info.status, 'active');
  assert.equal(info.tunnels, 2);
  assert.equal(edge.connectorEvents('tunnel_down', real.id).length, 0, 'the edge closed none of its tunnels');
  assert.equal(real.proc.events('tunnel_down').length, 0, 'the connector lost no tunnel');
  assert.equal(real.proc.events('tunnel_up').length, 2, 'and dialled no new one');
  assert.ok(edge.proc.running(), 'the edge is still running');
});
