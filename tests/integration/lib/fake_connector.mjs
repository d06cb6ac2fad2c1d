// SPDX-License-Identifier: MIT
// A hand-written tunnel client for the integration tests, independent of Portico's C code:
// frames are built and parsed here from docs/protocol.md §3 and §4, the handshake follows §11
// (Ed25519 from node:crypto), registration §12 uses node:https. It lets a test send frames
// that a real connector never would and read back what the edge answers.
import tls from 'node:tls';
import https from 'node:https';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EDGE_HOST } from './harness.mjs';

export const T = { DATA: 0, REQUEST: 1, RESPONSE: 2, RESET: 3, WINDOW: 4, PING: 5, GOAWAY: 6, CONTROL: 7 };
export const E = {
  NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 4,
  FRAME_SIZE_ERROR: 5, REFUSED_STREAM: 6, CANCEL: 7, HEADER_ERROR: 8, AUTH_FAILED: 9, TIMEOUT: 10,
};
export const errName = (c) => Object.keys(E).find((k) => E[k] === c) || `0x${c.toString(16)}`;

/** One frame: 9-byte header (§3.1) and payload. `rbit` sets the reserved bit. */
export function frame(type, flags, streamId, payload = Buffer.alloc(0), { rbit = false } = {}) {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(((rbit ? 0x80000000 : 0) | (streamId & 0x7fffffff)) >>> 0, 5);
  return Buffer.concat([h, p]);
}

export const controlFrame = (doc) => frame(T.CONTROL, 0, 0, Buffer.from(JSON.stringify(doc)));
export const pingFrame = (data = Buffer.alloc(8), ack = false) => frame(T.PING, ack ? 2 : 0, 0, data);
export function goawayFrame(last, code, text = '') {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(last & 0x7fffffff, 0);
  p.writeUInt32BE(code, 4);
  return frame(T.GOAWAY, 0, 0, Buffer.concat([p, Buffer.from(text)]));
}

const str16 = (v) => {
  const b = Buffer.from(v, 'latin1');
  const l = Buffer.alloc(2);
  l.writeUInt16BE(b.length);
  return Buffer.concat([l, b]);
};

/**
 * A request header block (§5.2): the backend target, then the request head. `headers` is a
 * list of [name, value] pairs.
 */
export function requestBlock({ scheme = 0, flags = 0, port, timeoutMs = 0, host, sni = '', method = 'GET', target = '/', headers = [] }) {
  const fixed = Buffer.alloc(8);
  fixed[0] = scheme;
  fixed[1] = flags;
  fixed.writeUInt16BE(port, 2);
  fixed.writeUInt32BE(timeoutMs, 4);
  const count = Buffer.alloc(2);
  count.writeUInt16BE(headers.length);
  return Buffer.concat([fixed, str16(host), str16(sni), str16(method), str16(target), count,
    ...headers.flatMap(([n, v]) => [str16(n), str16(v)])]);
}

/** Parses a response header block (§5.3): {status, headers: [[name, value], ...]}. */
export function parseResponseBlock(p) {
  const status = p.readUInt16BE(0);
  const n = p.readUInt16BE(2);
  const headers = [];
  let o = 4;
  const str = () => {
    const l = p.readUInt16BE(o);
    const v = p.subarray(o + 2, o + 2 + l).toString('latin1');
    o += 2 + l;
    return v;
  };
  for (let i = 0; i < n; i++) headers.push([str(), str()]);
  if (o !== p.length) throw new Error(`response block: ${p.length - o} bytes after the last field`);
  return { status, headers };
}

/** Parses a GOAWAY payload (§4.7). */
export function parseGoaway(payload) {
  return {
    last: payload.readUInt32BE(0) & 0x7fffffff,
    code: payload.readUInt32BE(4),
    text: payload.subarray(8).toString('utf8'),
  };
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

/** A fresh Ed25519 key pair: {publicKey (KeyObject), privateKey, publicB64 (32 bytes, base64url)}. */
export function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicB64 = publicKey.export({ format: 'jwk' }).x;
  return { publicKey, privateKey, publicB64 };
}

/** POST (or `method`) /.portico/v1/register (§12.2); resolves {status, headers, body (parsed or text)}. */
export function registerRaw(port, ca, doc, { contentType = 'application/json', method = 'POST' } = {}) {
  const body = Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, servername: EDGE_HOST, ca: readFileSync(ca), method,
      path: '/.portico/v1/register',
      headers: { Host: `${EDGE_HOST}:${port}`, 'Content-Type': contentType, 'Content-Length': body.length },
      agent: false,
    }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => {
        let parsed = data;
        try {
          parsed = JSON.parse(data);
        } catch { /* keep the text */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('register: timeout')));
    req.end(body);
  });
}

/** Registers a new key pair with token; resolves {connectorId, keys, answer}. */
export async function registerFake(port, ca, token, hostname = 'fake.test') {
  const keys = keyPair();
  const r = await registerRaw(port, ca, { token, public_key: keys.publicB64, hostname, agent: 'itest-fake/1' });
  if (r.status !== 201) throw new Error(`fake registration: ${r.status} ${JSON.stringify(r.body)}`);
  return { connectorId: r.body.connector_id, keys, answer: r.body };
}

/**
 * A TLS connection with ALPN portico/1 to the edge that decodes the frames it receives
 * (§3.1). Frames are kept in `frames`; `closed` resolves when the connection ends.
 */
export class FakeTunnel {
  static connect(port, ca, { alpn = ['portico/1'], servername = EDGE_HOST } = {}) {
    return new Promise((resolve, reject) => {
      const t = new FakeTunnel();
      const sock = tls.connect({ host: '127.0.0.1', port, servername, ca: readFileSync(ca), ALPNProtocols: alpn });
      t.sock = sock;
      sock.once('secureConnect', () => {
        t.localPort = sock.localPort;
        t.alpn = sock.alpnProtocol;
        t.certDer = sock.getPeerCertificate().raw;
        resolve(t);
      });
      sock.on('error', (e) => {
        t.error = e;
        reject(e); // no effect once connected
      });
      sock.on('data', (d) => t.onData(d));
      t.closed = new Promise((r) => sock.once('close', () => r()));
    });
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.error = null;
    this.autoPong = true;
  }

  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f = {
        type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(9, 9 + len)),
      };
      this.buf = this.buf.subarray(9 + len);
      if (f.type === T.GOAWAY) f.goaway = parseGoaway(f.payload);
      if (f.type === T.CONTROL) {
        try {
          f.doc = JSON.parse(f.payload.toString('utf8'));
        } catch { /* left undefined */ }
      }
      this.frames.push(f);
      // §4.6: a PING without ACK is answered, so that the tunnel stays alive while it is idle.
      if (f.type === T.PING && !(f.flags & 2) && this.autoPong && !this.sock.destroyed) {
        this.sock.write(pingFrame(f.payload, true));
      }
      this.waiters = this.waiters.filter((w) => !(w.pred(f) && (w.resolve(f), true)));
    }
  }

  write(bytes) {
    this.sock.write(bytes);
  }

  /** Resolves with the first received frame matching pred; rejects on timeout or close. */
  waitFrame(pred, timeoutMs = 5000, what = 'frame') {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      const fail = (why) => {
        this.waiters = this.waiters.filter((x) => x !== w);
        const got = this.frames.map((f) => `type ${f.type} stream ${f.stream}${f.goaway ? ` goaway ${JSON.stringify(f.goaway)}` : ''}`);
        reject(new Error(`fake tunnel: no ${what} ${why}; received: [${got.join('; ')}]`));
      };
      const t = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      this.closed.then(() => setTimeout(() => {
        if (this.waiters.includes(w)) {
          clearTimeout(t);
          fail('before the connection closed');
        }
      }, 50));
      w.resolve = (f) => {
        clearTimeout(t);
        resolve(f);
      };
    });
  }

  waitGoaway(timeoutMs = 5000) {
    return this.waitFrame((f) => f.type === T.GOAWAY, timeoutMs, 'GOAWAY');
  }

  waitControl(type, timeoutMs = 5000) {
    return this.waitFrame((f) => f.type === T.CONTROL && f.doc && f.doc.type === type, timeoutMs, `CONTROL ${type}`);
  }

  /** The handshake of §11 as connector `connectorId` with `keys`; resolves the welcome. */
  async handshake(connectorId, keys, { hostname = 'fake.test' } = {}) {
    const ch = await this.waitControl('challenge');
    const nonce = Buffer.from(ch.doc.nonce, 'base64url');
    const idBytes = Buffer.from(connectorId, 'ascii');
    const idLen = Buffer.alloc(2);
    idLen.writeUInt16BE(idBytes.length);
    const msg = Buffer.concat([
      Buffer.from('portico tunnel auth v1\0', 'ascii'),
      nonce,
      createHash('sha256').update(this.certDer).digest(),
      idLen,
      idBytes,
    ]);
    const signature = b64u(sign(null, msg, keys.privateKey));
    this.write(controlFrame({ type: 'auth', version: 1, connector_id: connectorId, agent: 'itest-fake/1', hostname, signature }));
    const w = await this.waitFrame((f) => (f.type === T.CONTROL && f.doc && f.doc.type === 'welcome') || f.type === T.GOAWAY,
      5000, 'welcome or GOAWAY');
    if (w.type === T.GOAWAY) throw new Error(`handshake refused: ${errName(w.goaway.code)} "${w.goaway.text}"`);
    this.welcome = w.doc;
    return w.doc;
  }

  close() {
    this.sock.destroy();
  }
}
