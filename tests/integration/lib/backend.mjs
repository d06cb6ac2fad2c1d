// SPDX-License-Identifier: MIT
// The test backend of the publishing tests: a private web app on loopback (Node's http or
// https server, nothing else) that shows what reached it and produces the responses the
// edge's app settings act on. Every request is recorded (method, target, headers, the client
// port it came from) in `requests`. Any path is an echo unless it contains `/_t/NAME`, which
// selects one of the routes below (query parameters in brackets):
//
//   echo (default)   JSON {method, url, path, query, headers, raw, body: {length, sha256}}
//   big [mib, cl]    a generated body of mib MiB (genBlock), streamed with back-pressure;
//                    Content-Length unless cl=0
//   upload           reads a generated body (BodyChecker) and answers {length, ok, bad_at}
//   slow [n, ms, size, hold, cl]  `size` bytes every `ms` ms, n times (or, with hold=1, until
//                    releaseSlow()), chunked unless cl=1
//   hold             answers the echo only once release() was called
//   sleep [ms]       answers the echo after ms
//   status [code]    an empty answer with that status (also /_t/status/NNN/)
//   redirect [p, kind]  302 with Location, Content-Location, Refresh and three Set-Cookie that
//                    name the backend's own origin and the internal prefix p
//   hop              an answer with hop-by-hop fields (Connection: X-Resp-Hop, Keep-Alive) and
//                    an X-Request-Id of its own
//   early            answers at once, before the request body has arrived
//   text [kind, p, chunk, rep, cl]  an HTML, CSS or JS body (textTemplate) naming internal
//                    URLs, written `chunk` bytes at a time with pauses (kind=bin: the same
//                    HTML as application/octet-stream)
//
// WebSocket upgrades (any path) are echoed; the text "close-me" makes the backend close, and
// "push:N" makes it send N messages of its own. stop() closes the listener and every
// connection: afterwards the port refuses.
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OP, FrameParser, acceptFor, encodeFrame, closeFrame } from './websocket.mjs';

export const MiB = 1 << 20;

// ---- generated bodies ----

/** Generated bodies are blocks of BLOCK bytes: a fixed pseudo-random block whose first 8
 * bytes are replaced by the block's index, so that a lost, repeated or reordered piece shows. */
export const BLOCK = 65536;
const TEMPLATE = (() => {
  const parts = [];
  for (let i = 0; parts.length * 32 < BLOCK; i++) parts.push(createHash('sha256').update(`portico-${i}`).digest());
  return Buffer.concat(parts).subarray(0, BLOCK);
})();

/** Block i of a generated body (a fresh Buffer of BLOCK bytes). */
export function genBlock(i) {
  const b = Buffer.from(TEMPLATE);
  b.writeBigUInt64BE(BigInt(i), 0);
  return b;
}

/** Checks a generated body piece by piece: feed() every received chunk, then look at ok. */
export class BodyChecker {
  constructor() {
    this.length = 0;
    this.ok = true;
    this.badAt = -1;
    this.blockIdx = -1;
    this.block = null;
  }

  feed(chunk) {
    let off = 0;
    while (off < chunk.length && this.ok) {
      const idx = Math.floor(this.length / BLOCK);
      const inBlock = this.length % BLOCK;
      if (idx !== this.blockIdx) {
        this.block = genBlock(idx);
        this.blockIdx = idx;
      }
      const n = Math.min(BLOCK - inBlock, chunk.length - off);
      if (!chunk.subarray(off, off + n).equals(this.block.subarray(inBlock, inBlock + n))) {
        this.ok = false;
        this.badAt = this.length;
      }
      off += n;
      this.length += n;
    }
    if (!this.ok) this.length += chunk.length - off;
  }
}

// ---- text bodies with internal URLs (translate_body) ----

const TEXT = {
  html: `<!doctype html>
<html><head><title>internal links</title>
<link rel="stylesheet" href="{ABS}/style.css">
<script src="{SREL}/app.js"></script></head>
<body>
<a href="{ABS}/page?x=1#f">page</a> <a href='{ABS}'>root</a> <a href={ABS}/bare>bare</a>
<a href="{KEEP}/other/x">outside</a> <a href="{KEEP}{P}le/x">not under the prefix</a>
<img src="{SREL}/img.png" alt="{ABS}/alt">
<p>Visit {ABS}/text for more.</p>
<script>var api = "{JABS}\\/api"; var ws = new WebSocket("{WS}/ws"); var u = '{ABS}/js';</script>
</body></html>
`,
  css: `body { background: url({ABS}/bg.png); }
@import "{SREL}/more.css";
.x { background-image: url('{ABS}/x.png'); }
.y { background: url({KEEP}/other/y.png); }
`,
  js: `const base = "{ABS}/api/";
const cdn = '{SREL}/static/';
const esc = "{JABS}\\/v1";
const sock = new WebSocket("{WS}/live");
const other = "{KEEP}/other/";
fetch("{ABS}/tpl");
`,
};
const TEXT_TYPES = { html: 'text/html; charset=utf-8', css: 'text/css', js: 'application/javascript', bin: 'application/octet-stream' };

/**
 * The text body of `kind` (html, css, js; bin is the html) repeated `rep` times, with the
 * URL forms filled in from v: ABS (absolute, "http://host:port/prefix"), SREL
 * ("//host:port/prefix"), JABS (ABS with every '/' written '\/'), WS ("ws://host:port/prefix"),
 * KEEP (the origin alone) and P (the prefix). The backend fills in its internal values; a
 * test fills in the external ones for ABS/SREL/JABS/WS to get what the edge must deliver.
 */
export function textTemplate(kind, v, rep = 1) {
  const t = TEXT[kind === 'bin' ? 'html' : kind];
  if (!t) throw new Error(`no text kind ${kind}`);
  const one = t.replace(/\{(ABS|SREL|JABS|WS|KEEP|P)\}/g, (_, k) => v[k]);
  return one.repeat(rep);
}

/** The URL forms of an origin and prefix for textTemplate ("https", "h.example:8443", "/pub"). */
export function urlForms(scheme, authority, prefix) {
  const abs = `${scheme}://${authority}${prefix}`;
  return {
    ABS: abs,
    SREL: `//${authority}${prefix}`,
    JABS: abs.replace(/\//g, '\\/'),
    WS: `${scheme === 'https' ? 'wss' : 'ws'}://${authority}${prefix}`,
  };
}

// ---- the server ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class TestBackend {
  /**
   * Starts a backend on 127.0.0.1 (free port). `name` is the host name it calls itself in
   * the URLs it writes (it should resolve to 127.0.0.1). With tls {cert, key} (PEM paths) it
   * is an https server (cert or crt: the certificate chain's file).
   */
  static async start({ name = '127.0.0.1', tls = null, port = 0 } = {}) {
    const b = new TestBackend(name, tls);
    await new Promise((resolve, reject) => {
      b.server.once('error', reject);
      b.server.listen(port, '127.0.0.1', resolve);
    });
    b.port = b.server.address().port;
    return b;
  }

  constructor(name, tlsOpts) {
    this.name = name;
    this.scheme = tlsOpts ? 'https' : 'http';
    this.requests = [];
    this.sockets = new Set();
    /** TCP connections accepted so far. */
    this.connectionsTotal = 0;
    this.holds = [];
    this.released = false;
    this.slowReleased = false;
    this.slowActive = 0;
    this.slowStarted = 0;
    this.wsSockets = new Set();
    this.wsClosed = 0;
    this.waiters = [];
    this.onRequest = null; // optional hook (record) at arrival
    const handler = (req, res) => this.handle(req, res);
    this.server = tlsOpts
      ? https.createServer({ cert: readFileSync(tlsOpts.cert || tlsOpts.crt), key: readFileSync(tlsOpts.key) }, handler)
      : http.createServer(handler);
    // Large uploads and long downloads: no server-side timeouts.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60000;
    this.server.keepAliveTimeout = 60000;
    this.server.on('connection', (s) => {
      this.connectionsTotal++;
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    if (tlsOpts) this.server.on('tlsClientError', () => {});
  }

  /** "scheme://name:port" as the backend writes its own URLs. */
  get origin() {
    return `${this.scheme}://${this.name}:${this.port}`;
  }

  /** Re-evaluates the waiters (until()). */
  notify() {
    this.waiters = this.waiters.filter((w) => !(w.pred() && (w.resolve(), true)));
  }

  /** Resolves when pred() holds (checked on every request event); rejects after timeoutMs. */
  until(pred, timeoutMs = 10000, what = 'condition') {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { pred };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`backend: ${what} not met within ${timeoutMs} ms (requests: ${this.requests.length}, slow active: ${this.slowActive}, holds: ${this.holds.length})`));
      }, timeoutMs);
      w.resolve = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(w);
    });
  }

  /** Records under which request ids requests arrived (x-request-id). */
  byRequestId(id) {
    return this.requests.filter((r) => r.headers['x-request-id'] === id);
  }

  record(req) {
    const raw = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    const rec = {
      method: req.method, url: req.url, headers: req.headers, raw, at: Date.now(),
      remotePort: req.socket.remotePort, httpVersion: req.httpVersion,
    };
    this.requests.push(rec);
    if (this.onRequest) this.onRequest(rec, req);
    this.notify();
    return rec;
  }

  handle(req, res) {
    const rec = this.record(req);
    const u = new URL(req.url, 'http://x');
    const m = /\/_t\/([a-z]+)/.exec(u.pathname);
    const route = m ? m[1] : 'echo';
    const q = (k, d) => (u.searchParams.has(k) ? u.searchParams.get(k) : d);
    res.on('error', () => {});
    req.on('error', () => {});
    switch (route) {
      case 'big':
        return this.big(req, res, Number(q('mib', '1')), q('cl', '1') !== '0');
      case 'upload':
        return this.upload(req, res);
      case 'slow':
        return this.slow(req, res, { n: Number(q('n', '5')), ms: Number(q('ms', '100')), size: Number(q('size', '512')), hold: q('hold', '0') === '1', cl: q('cl', '0') === '1' });
      case 'hold':
        return this.readBody(req, (body) => {
          const answer = () => this.sendEcho(req, res, rec, body);
          if (this.released) answer();
          else {
            this.holds.push({ rec, answer });
            this.notify();
          }
        });
      case 'sleep':
        return this.readBody(req, (body) => {
          const t = setTimeout(() => this.sendEcho(req, res, rec, body), Number(q('ms', '1000')));
          res.on('close', () => clearTimeout(t));
        });
      case 'status':
        return this.readBody(req, () => {
          const inPath = /\/_t\/status\/(\d{3})/.exec(u.pathname);
          res.writeHead(Number(q('code', inPath ? inPath[1] : '200')));
          res.end();
        });
      case 'redirect':
        return this.readBody(req, () => this.redirect(res, q('p', ''), q('kind', 'abs')));
      case 'hop':
        return this.readBody(req, () => {
          const body = 'hop\n';
          res.writeHead(200, [
            ['Content-Type', 'text/plain'], ['Connection', 'X-Resp-Hop'], ['X-Resp-Hop', 'secret'],
            ['Keep-Alive', 'timeout=9'], ['X-End', 'kept'], ['X-Request-Id', 'from-backend'],
            ['Content-Length', String(body.length)],
          ].flat());
          res.end(body);
        });
      case 'early': {
        // Answers at once, without reading the request body.
        const doc = JSON.stringify({ early: true, url: req.url });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(doc) });
        res.end(doc);
        req.resume();
        return undefined;
      }
      case 'text':
        return this.readBody(req, () => this.text(res, q('kind', 'html'), q('p', ''), Number(q('chunk', '5')), Number(q('rep', '1')), q('cl', '0') === '1'));
      default:
        return this.readBody(req, (body) => this.sendEcho(req, res, rec, body));
    }
  }

  /** Reads the whole body, hashing it as it streams; calls cb({length, sha256}). */
  readBody(req, cb) {
    const h = createHash('sha256');
    let length = 0;
    req.on('data', (d) => {
      h.update(d);
      length += d.length;
    });
    req.on('end', () => cb({ length, sha256: h.digest('hex') }));
  }

  sendEcho(req, res, rec, body) {
    if (res.destroyed || res.writableEnded) return;
    const u = new URL(req.url, 'http://x');
    const doc = JSON.stringify({
      method: req.method, url: req.url, path: u.pathname, query: u.search, httpVersion: req.httpVersion,
      headers: req.headers, raw: rec.raw, body, remotePort: req.socket.remotePort,
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(doc) });
    res.end(doc);
  }

  /** Answers every held request, and those that arrive later at once. */
  release() {
    this.released = true;
    const h = this.holds;
    this.holds = [];
    for (const x of h) x.answer();
  }

  /** Lets every slow response with hold=1 finish (they end at their next tick). */
  releaseSlow() {
    this.slowReleased = true;
  }

  async big(req, res, mib, cl) {
    req.resume();
    const total = Math.round(mib * MiB);
    const hdrs = { 'Content-Type': 'application/octet-stream' };
    if (cl) hdrs['Content-Length'] = String(total);
    res.writeHead(200, hdrs);
    let sent = 0;
    let aborted = false;
    res.on('close', () => {
      aborted = !res.writableFinished;
    });
    for (let i = 0; sent < total && !aborted; i++) {
      const b = genBlock(i);
      const n = Math.min(BLOCK, total - sent);
      sent += n;
      if (!res.write(n === BLOCK ? b : b.subarray(0, n))) {
        await new Promise((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    if (!aborted) res.end();
  }

  upload(req, res) {
    const c = new BodyChecker();
    req.on('data', (d) => c.feed(d));
    req.on('end', () => {
      const doc = JSON.stringify({ length: c.length, ok: c.ok, bad_at: c.badAt });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(doc) });
      res.end(doc);
    });
  }

  async slow(req, res, { n, ms, size, hold, cl }) {
    req.resume();
    const hdrs = { 'Content-Type': 'application/octet-stream' };
    if (cl && !hold) hdrs['Content-Length'] = String(n * size);
    res.writeHead(200, hdrs);
    res.flushHeaders();
    this.slowActive++;
    this.slowStarted++;
    this.notify();
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    const piece = Buffer.alloc(size, 0x61);
    try {
      for (let i = 0; !closed; i++) {
        if (hold ? this.slowReleased : i >= n) break;
        res.write(piece);
        await sleep(ms);
      }
      if (!closed) res.end();
    } finally {
      this.slowActive--;
      this.notify();
    }
  }

  redirect(res, p, kind) {
    const o = this.origin;
    const loc = { abs: `${o}${p}/next?x=1`, path: `${p}/next`, outside: `${o}/other/x`, foreign: `http://example.invalid${p}/x` }[kind];
    res.setHeader('Location', loc);
    res.setHeader('Content-Location', `${o}${p}/content`);
    res.setHeader('Refresh', `3; url=${o}${p}/refreshed`);
    res.setHeader('Set-Cookie', [
      `sid=abc; Domain=${this.name}; Path=${p}/; HttpOnly`,
      'pref=1; Path=/; Secure',
      'plain=2',
    ]);
    res.setHeader('X-Link', `${o}${p}/untouched`);
    res.setHeader('Content-Length', '0');
    res.writeHead(302);
    res.end();
  }

  async text(res, kind, p, chunk, rep, cl) {
    const v = { ...urlForms(this.scheme, `${this.name}:${this.port}`, p), KEEP: this.origin, P: p };
    const body = Buffer.from(textTemplate(kind, v, rep));
    const hdrs = { 'Content-Type': TEXT_TYPES[kind] };
    if (cl) hdrs['Content-Length'] = String(body.length);
    res.writeHead(200, hdrs);
    res.flushHeaders();
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    for (let off = 0; off < body.length && !closed; off += chunk) {
      res.write(body.subarray(off, off + chunk));
      // A pause between pieces, so that they travel as separate segments and DATA frames.
      await sleep(1);
    }
    if (!closed) res.end();
  }

  upgrade(req, socket, head) {
    this.record(req);
    const key = req.headers['sec-websocket-key'];
    if (!key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.setNoDelay(true);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`);
    this.wsSockets.add(socket);
    const parser = new FrameParser();
    let closing = false;
    const onData = (d) => {
      for (const f of parser.push(d)) {
        if (!f.masked) {
          // RFC 6455 §5.1: a server must close on an unmasked client frame.
          socket.end(closeFrame(1002, 'unmasked', false));
          return;
        }
        if (f.op === OP.CLOSE) {
          if (!closing) socket.write(encodeFrame(OP.CLOSE, f.payload.subarray(0, 2), false));
          closing = true;
          socket.end();
          return;
        }
        if (f.op === OP.PING) {
          socket.write(encodeFrame(OP.PONG, f.payload, false));
        } else if (f.op === OP.TEXT && f.payload.toString() === 'close-me') {
          closing = true;
          socket.write(closeFrame(1000, 'bye', false));
          socket.end();
          return;
        } else if (f.op === OP.TEXT && f.payload.toString().startsWith('push:')) {
          const n = Number(f.payload.toString().slice(5));
          for (let i = 0; i < n; i++) socket.write(encodeFrame(OP.TEXT, `push ${i}`, false));
        } else if (f.op === OP.TEXT || f.op === OP.BINARY) {
          socket.write(encodeFrame(f.op, f.payload, false));
        }
      }
    };
    socket.on('data', onData);
    socket.on('error', () => {});
    // The peer ended its side (the tunnel's END_STREAM): end ours too (http.Server sockets
    // allow half-open connections).
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      this.wsSockets.delete(socket);
      this.wsClosed++;
      this.notify();
    });
    if (head && head.length) onData(head);
  }

  /** Closes the listener and every connection; resolves once the listener is closed. */
  stop() {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
      for (const s of this.wsSockets) s.destroy();
      for (const h of this.holds) h.answer = () => {};
    });
  }
}
