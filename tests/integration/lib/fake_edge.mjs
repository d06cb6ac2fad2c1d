// SPDX-License-Identifier: MIT
// A hand-written tunnel server for the integration tests, independent of Portico's C code: it
// accepts TLS with ALPN portico/1, sends the challenge (docs/protocol.md §11.3), checks the
// connector's auth and its Ed25519 signature (§11.6) against the connector's public key,
// answers welcome (§11.5) and then records every frame each tunnel receives, so that a test
// can look at what a real connector puts on the wire.
import tls from 'node:tls';
import { X509Certificate, createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { T, E, frame, controlFrame, parseGoaway, pingFrame } from './fake_connector.mjs';

export class FakeEdge {
  /**
   * Listens on 127.0.0.1 (free port) with cert/key (PEM files). `publicKey` is the base64url
   * Ed25519 key of the one connector it accepts; `welcome` and `challenge` members override
   * the documents' defaults (to send malformed ones).
   */
  static async start({ cert, key, connectorId, publicKey, welcome = {}, challenge = {} }) {
    const fe = new FakeEdge(cert, key, connectorId, publicKey, welcome);
    fe.challengeExtra = challenge;
    await new Promise((resolve, reject) => {
      fe.server.once('error', reject);
      fe.server.listen(0, '127.0.0.1', resolve);
    });
    fe.port = fe.server.address().port;
    return fe;
  }

  constructor(cert, key, connectorId, publicKey, welcome) {
    const certPem = readFileSync(cert);
    // The DER of the leaf: the first certificate of the PEM file.
    this.certDer = new X509Certificate(certPem).raw;
    this.connectorId = connectorId;
    this.publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
    this.welcomeExtra = welcome;
    this.challengeExtra = {};
    this.tunnels = []; // {sock, frames, auth, authOk, error, closed, welcomed}
    this.waiters = [];
    this.server = tls.createServer({ cert: certPem, key: readFileSync(key), ALPNProtocols: ['portico/1'] },
      (s) => this.onTunnel(s));
    this.server.on('tlsClientError', () => {});
  }

  notify() {
    this.waiters = this.waiters.filter((w) => !(w.pred() && (w.resolve(), true)));
  }

  /** Resolves when pred() (re-evaluated on every event) is true; rejects on timeout. */
  until(pred, timeoutMs = 5000, what = 'condition') {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { pred };
      this.waiters.push(w);
      const t = setTimeout(() => {
        if (this.waiters.includes(w)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error(`fake edge: ${what} not met within ${timeoutMs} ms; tunnels: ${JSON.stringify(this.summary())}`));
        }
      }, timeoutMs);
      w.resolve = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  summary() {
    return this.tunnels.map((t) => ({
      alpn: t.alpn, auth: t.auth && t.auth.connector_id, authOk: t.authOk, error: t.error, closed: t.isClosed,
      frames: t.frames.map((f) => (f.goaway ? `GOAWAY ${JSON.stringify(f.goaway)}` : `type ${f.type} stream ${f.stream}`)),
    }));
  }

  onTunnel(sock) {
    const t = { sock, alpn: sock.alpnProtocol, frames: [], auth: null, authOk: null, error: null, isClosed: false, welcomed: false, buf: Buffer.alloc(0) };
    this.tunnels.push(t);
    sock.on('error', () => {});
    sock.on('close', () => {
      t.isClosed = true;
      this.notify();
    });
    const nonce = randomBytes(32);
    t.nonce = nonce;
    sock.write(controlFrame({ type: 'challenge', versions: [1], nonce: nonce.toString('base64url'), ...this.challengeExtra }));
    sock.on('data', (d) => {
      t.buf = Buffer.concat([t.buf, d]);
      while (t.buf.length >= 9) {
        const len = t.buf.readUIntBE(0, 3);
        if (t.buf.length < 9 + len) break;
        const f = { type: t.buf[3], flags: t.buf[4], stream: t.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(t.buf.subarray(9, 9 + len)), at: Date.now() };
        t.buf = t.buf.subarray(9 + len);
        if (f.type === T.GOAWAY) f.goaway = parseGoaway(f.payload);
        t.frames.push(f);
        this.onFrame(t, f);
      }
      this.notify();
    });
    this.notify();
  }

  onFrame(t, f) {
    if (f.type === T.PING && !(f.flags & 2)) {
      t.sock.write(pingFrame(f.payload, true));
      return;
    }
    if (f.type !== T.CONTROL || t.auth) return;
    let doc;
    try {
      doc = JSON.parse(f.payload.toString('utf8'));
    } catch (e) {
      t.error = `auth is not JSON: ${e.message}`;
      return;
    }
    t.auth = doc;
    const id = Buffer.from(String(doc.connector_id), 'ascii');
    const idLen = Buffer.alloc(2);
    idLen.writeUInt16BE(id.length);
    const msg = Buffer.concat([Buffer.from('portico tunnel auth v1\0', 'ascii'), t.nonce,
      createHash('sha256').update(this.certDer).digest(), idLen, id]);
    const sig = Buffer.from(String(doc.signature), 'base64url');
    t.authOk = doc.type === 'auth' && doc.version === 1 && doc.connector_id === this.connectorId &&
      sig.length === 64 && verify(null, msg, this.publicKey, sig);
    if (!t.authOk) {
      t.error = `auth refused: ${JSON.stringify({ ...doc, signature: '...' })}`;
      const p = Buffer.alloc(8);
      p.writeUInt32BE(E.AUTH_FAILED, 4);
      t.sock.end(frame(T.GOAWAY, 0, 0, Buffer.concat([p, Buffer.from('bad signature')])));
      return;
    }
    t.sock.write(controlFrame({
      type: 'welcome', tunnel_id: `tn_${randomBytes(8).toString('hex')}`, group: 'Default',
      ping_interval_ms: 1000, idle_timeout_ms: 3000, edges: [`localhost:${this.port}`], ...this.welcomeExtra,
    }));
    t.welcomed = true;
  }

  /** Sends frame bytes on tunnel t. */
  send(t, bytes) {
    t.sock.write(bytes);
  }

  /** Frames received on tunnel t for stream id. */
  streamFrames(t, id) {
    return t.frames.filter((f) => f.stream === id);
  }

  /** Tunnels that completed the handshake and are still open. */
  live() {
    return this.tunnels.filter((t) => t.welcomed && !t.isClosed);
  }

  async close() {
    for (const t of this.tunnels) t.sock.destroy();
    await new Promise((r) => this.server.close(() => r()));
  }
}
