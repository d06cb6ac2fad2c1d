// SPDX-License-Identifier: MIT
// Helpers for the publishing tests (publish*.test.mjs): an edge with connectors in groups and
// certificates that cover the apps' host names, published apps through the admin CLI, an
// HTTPS client for the apps (node:https, and raw TLS connections for bytes that node:http
// would not send), a WebSocket client, a memory (RSS) sampler, the owner of a loopback
// connection (which connector process carried a backend request), and the decoder of the
// REQUEST header block for a fake connector. Built on lib/harness.mjs.
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { readFileSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Edge, Connector, EDGE_HOST, makeCerts, tempDir, within, sleep, BUILD,
} from './harness.mjs';
import { OP, FrameParser, acceptFor, newKey, encodeFrame, closeFrame } from './websocket.mjs';

/** Apps without an external_url live under this domain (the harness's default_domain). */
export const APPS_DOMAIN = 'apps.localhost';

/**
 * Liveness settings for these tests: tunnels are watched, but not so tightly that a busy
 * machine (1 GiB through TLS twice, or a sanitizer build) could lose one.
 */
export const PUBLISH_LIMITS = {
  handshake_timeout: '10s',
  ping_interval: '5s',
  idle_timeout: '30s',
  drain_timeout: '3s',
};

/**
 * Certificates: a test CA with the edge's leaf (localhost, *.apps.localhost, 127.0.0.1) and
 * a backend leaf (localhost, 127.0.0.1); and a second, untrusted CA ("rogue") with a backend
 * leaf for the same names.
 */
export function publishCerts(dir) {
  const c = makeCerts(join(dir, 'trusted'), {
    edge: [`DNS:${EDGE_HOST}`, `DNS:*.${APPS_DOMAIN}`, 'IP:127.0.0.1'],
    backend: ['DNS:localhost', 'IP:127.0.0.1'],
  });
  c.rogue = makeCerts(join(dir, 'rogue'), { backend: ['DNS:localhost', 'IP:127.0.0.1'] }, { caName: 'rogue' });
  return c;
}

/** True when the binaries were built with a sanitizer (meson's b_sanitize). */
export function isSanitized() {
  const f = join(BUILD, 'meson-info', 'intro-buildoptions.json');
  if (!existsSync(f)) return false;
  const opt = JSON.parse(readFileSync(f, 'utf8')).find((o) => o.name === 'b_sanitize');
  return Boolean(opt && opt.value && opt.value !== 'none');
}

/**
 * Starts an edge and connectors: `connectors` is a list of {name, group, tunnels}. Groups
 * other than Default are created first. Resolves {edge, certs, conns: {name: Connector}, client}
 * once every connector is active with all its tunnels.
 */
export async function startSite({ connectors = [{ name: 'a' }], limits = {}, logLevel = 'info', extra = {} } = {}) {
  const dir = tempDir('pub');
  const certs = publishCerts(join(dir, 'certs'));
  const edge = await Edge.create({ dir, certs, limits: { ...PUBLISH_LIMITS, ...limits }, logLevel, extra });
  await edge.start();
  const groups = [...new Set(connectors.map((c) => c.group || 'Default'))].filter((g) => g !== 'Default');
  for (const g of groups) await addGroup(edge, g);
  const conns = {};
  for (const c of connectors) {
    const k = new Connector(edge, c.name, { tunnels: c.tunnels ?? null, logLevel: c.logLevel || logLevel });
    await k.registerOk({ token: { group: c.group || 'Default' } });
    conns[c.name] = k;
  }
  for (const k of Object.values(conns)) k.start();
  for (const k of Object.values(conns)) await edge.waitActive(k.id, k.tunnelCount, 15000);
  return { edge, certs, conns, client: new AppClient(edge) };
}

/** `portico group add NAME`. */
export async function addGroup(edge, name) {
  const r = await edge.cli(['group', 'add', name]);
  if (r.code !== 0) throw new Error(`group add ${name}: exit ${r.code}: ${r.stderr}`);
}

const settingArg = ([k, v]) => ['--set', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`];

/**
 * `portico app add NAME --internal-url URL --pre-auth passthrough [--external-url]
 * [--group] [--set k=v]...` (preAuth null leaves pre_auth at its default, oidc); resolves
 * the app as the API answers it.
 */
export async function addApp(edge, name, { internal, external = null, group = null, set = {}, preAuth = 'passthrough' }) {
  const args = ['app', 'add', name, '--internal-url', internal];
  if (preAuth) args.push('--pre-auth', preAuth);
  if (external) args.push('--external-url', external);
  if (group) args.push('--group', group);
  args.push(...Object.entries(set).flatMap(settingArg));
  return edge.cliJson(args);
}

/** `portico app set NAME k=v...`. */
export async function setApp(edge, name, settings) {
  const kv = Object.entries(settings).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const r = await edge.cli(['app', 'set', name, ...kv]);
  if (r.code !== 0) throw new Error(`app set ${name} ${kv.join(' ')}: exit ${r.code}: ${r.stderr}`);
}

/** The host name of app `name` under the default domain. */
export const appHost = (name) => `${name}.${APPS_DOMAIN}`;

/** A request id that the edge keeps (1..128 of [A-Za-z0-9._-]). */
export const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * HTTPS requests to the edge's public port, for an app host: TLS with SNI = the host, the
 * edge's CA, and Host = host:port.
 */
export class AppClient {
  constructor(edge) {
    this.edge = edge;
    this.ca = readFileSync(edge.certs.ca);
  }

  get port() {
    return this.edge.port;
  }

  /** node:https request options for host and path (headers added to Host). */
  options(host, path, { method = 'GET', headers = {}, agent = false } = {}) {
    return {
      host: '127.0.0.1', port: this.port, servername: host, ca: this.ca, method, path, agent,
      headers: { host: `${host}:${this.port}`, ...headers },
    };
  }

  /**
   * One request; resolves {status, headers, raw ([name, value] pairs), body (Buffer), text,
   * json (parsed or undefined), ms}. body may be a Buffer or a string. Rejects on a
   * connection error or after timeoutMs.
   */
  request(host, path, { method = 'GET', headers = {}, body = null, timeoutMs = 20000, agent = false } = {}) {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      const req = https.request(this.options(host, path, { method, headers, agent }), (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`${method} ${path}: response aborted after ${chunks.length} chunks`)));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          const raw = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) raw.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
          let json;
          try {
            json = JSON.parse(b.toString('utf8'));
          } catch { /* not JSON */ }
          resolve({ status: res.statusCode, headers: res.headers, raw, body: b, text: b.toString('utf8'), json, ms: Date.now() - t0 });
        });
      });
      req.on('error', reject);
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} https://${host}${path}: no answer within ${timeoutMs} ms`)));
      if (body !== null) req.end(body);
      else req.end();
    });
  }

  /** GET that expects JSON error pages (Accept: application/json). */
  requestJson(host, path, opts = {}) {
    return this.request(host, path, { ...opts, headers: { accept: 'application/json', ...(opts.headers || {}) } });
  }

  /** The edge's own health check (Host = edge_host). */
  async healthy() {
    const r = await this.request(EDGE_HOST, '/healthz', { timeoutMs: 5000 });
    return r.status === 200 && r.text.trim() === 'ok';
  }

  /** A raw TLS connection to the edge for host (see RawConn). */
  raw(host) {
    return RawConn.open(this.port, host, this.ca);
  }
}

/**
 * A raw TLS (or plain TCP) connection to the edge: write bytes, read HTTP/1.1 responses one at a time
 * (status line, headers, body by Content-Length, chunked or until close), see when the edge
 * closes the connection.
 */
export class RawConn {
  static open(port, host, ca) {
    const s = tls.connect({ host: '127.0.0.1', port, servername: host, ca, ALPNProtocols: ['http/1.1'] });
    return RawConn.wrap(s, 'secureConnect', host, port);
  }

  /** A plain TCP connection (the edge's plain-HTTP listener). */
  static openPlain(port, host) {
    return RawConn.wrap(net.connect({ host: '127.0.0.1', port }), 'connect', host, port);
  }

  static wrap(s, readyEvent, host, port) {
    return new Promise((resolve, reject) => {
      const c = new RawConn();
      c.sock = s;
      c.host = host;
      c.hostHeader = `${host}:${port}`;
      s.setNoDelay(true);
      s.once(readyEvent, () => resolve(c));
      s.once('error', (e) => {
        c.error = e;
        reject(e);
        c.wake();
      });
      s.on('data', (d) => {
        c.buf = Buffer.concat([c.buf, d]);
        c.wake();
      });
      c.closed = new Promise((r) => s.once('close', () => {
        c.isClosed = true;
        c.wake();
        r();
      }));
      s.on('end', () => {
        c.ended = true;
        c.wake();
      });
    });
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.isClosed = false;
    this.ended = false;
    this.error = null;
    this.wakers = [];
  }

  wake() {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  /** Waits for more input (or the end); rejects at the deadline. */
  more(deadlineAt, what) {
    if (this.ended || this.isClosed) return Promise.reject(new Error(`${what}: the connection closed (${this.buf.length} bytes unread: ${JSON.stringify(this.buf.subarray(0, 200).toString('latin1'))})`));
    const left = deadlineAt - Date.now();
    if (left <= 0) return Promise.reject(new Error(`${what}: timed out (${this.buf.length} bytes unread: ${JSON.stringify(this.buf.subarray(0, 200).toString('latin1'))})`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.wakers = this.wakers.filter((x) => x !== f);
        reject(new Error(`${what}: timed out (${this.buf.length} bytes unread: ${JSON.stringify(this.buf.subarray(0, 200).toString('latin1'))})`));
      }, left);
      const f = () => {
        clearTimeout(t);
        resolve();
      };
      this.wakers.push(f);
    });
  }

  write(bytes) {
    this.sock.write(bytes);
  }

  /** A request head as text: method, target, headers ([name, value] pairs or object), Host first. */
  head(method, target, headers = [], { host = this.hostHeader } = {}) {
    const list = Array.isArray(headers) ? headers : Object.entries(headers);
    const lines = [`${method} ${target} HTTP/1.1`, ...(host !== null ? [`Host: ${host}`] : []), ...list.map(([k, v]) => `${k}: ${v}`)];
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  /**
   * Reads the next response: resolves {status, reason, headers ({name: [values]}, lower-case
   * names), header(name) (the values joined with ", "), body (Buffer), chunked}. `head`:
   * the request was HEAD (no body). An interim 1xx response is returned on its own.
   */
  async response({ timeoutMs = 10000, head = false } = {}) {
    const deadlineAt = Date.now() + timeoutMs;
    let end;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) await this.more(deadlineAt, 'response head');
    const text = this.buf.subarray(0, end).toString('latin1');
    this.buf = this.buf.subarray(end + 4);
    const [statusLine, ...lines] = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      (headers[k] = headers[k] || []).push(l.slice(i + 1).trim());
    }
    const status = Number(m[1]);
    const r = {
      status, reason: m[2], headers, raw: text, chunked: false,
      header: (k) => (headers[k.toLowerCase()] ? headers[k.toLowerCase()].join(', ') : undefined),
    };
    if (status < 200 || status === 204 || status === 304 || head) {
      r.body = Buffer.alloc(0);
      return r;
    }
    const te = r.header('transfer-encoding');
    const cl = r.header('content-length');
    if (te && /chunked/i.test(te)) {
      r.chunked = true;
      const parts = [];
      for (;;) {
        let e;
        while ((e = this.buf.indexOf('\r\n')) < 0) await this.more(deadlineAt, 'chunk size');
        const size = parseInt(this.buf.subarray(0, e).toString('latin1'), 16);
        this.buf = this.buf.subarray(e + 2);
        if (size === 0) {
          // Trailer section: up to an empty line.
          while ((e = this.buf.indexOf('\r\n')) !== 0) {
            if (e < 0) await this.more(deadlineAt, 'trailers');
            else this.buf = this.buf.subarray(e + 2);
          }
          this.buf = this.buf.subarray(2);
          break;
        }
        while (this.buf.length < size + 2) await this.more(deadlineAt, 'chunk data');
        parts.push(Buffer.from(this.buf.subarray(0, size)));
        this.buf = this.buf.subarray(size + 2);
      }
      r.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      const n = Number(cl);
      while (this.buf.length < n) await this.more(deadlineAt, `body of ${n} bytes`);
      r.body = Buffer.from(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
    } else {
      // Delimited by the end of the connection.
      while (!this.ended && !this.isClosed) {
        try {
          await this.more(deadlineAt, 'close-delimited body');
        } catch (e) {
          if (!this.ended && !this.isClosed) throw e;
        }
      }
      r.body = this.buf;
      this.buf = Buffer.alloc(0);
    }
    return r;
  }

  /** Resolves true if the edge closes the connection within ms (reading and dropping input). */
  async closesWithin(ms) {
    const t = await Promise.race([this.closed.then(() => true), sleep(ms).then(() => false)]);
    return t || this.ended;
  }

  close() {
    this.sock.destroy();
  }
}

/**
 * A WebSocket client through the edge: opens a raw TLS connection, sends the upgrade and
 * checks the 101 (status, Upgrade, Connection, Sec-WebSocket-Accept). Resolves
 * {conn, response, send(op, payload), text(s), next(timeoutMs), close(code), messages}.
 */
export async function wsConnect(client, host, path, { headers = [], timeoutMs = 10000 } = {}) {
  const conn = await client.raw(host);
  const key = newKey();
  conn.write(conn.head('GET', path, [['Upgrade', 'websocket'], ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', key], ['Sec-WebSocket-Version', '13'], ...headers]));
  const response = await conn.response({ timeoutMs });
  const ws = new WsClient(conn, response, key);
  return ws;
}

export class WsClient {
  constructor(conn, response, key) {
    this.conn = conn;
    this.response = response;
    this.expectedAccept = acceptFor(key);
    this.parser = new FrameParser();
    this.frames = [];
    this.waiters = [];
    const feed = (d) => {
      for (const f of this.parser.push(d)) this.frames.push(f);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    };
    // Bytes after the 101 already read by the response parser, then the socket's.
    if (conn.buf.length) feed(conn.buf);
    conn.buf = Buffer.alloc(0);
    conn.sock.removeAllListeners('data');
    conn.sock.on('data', feed);
    conn.closed.then(() => feed(Buffer.alloc(0)));
  }

  send(op, payload) {
    this.conn.write(encodeFrame(op, payload, true));
  }

  text(s) {
    this.send(OP.TEXT, s);
  }

  close(code = 1000, reason = '') {
    this.conn.write(closeFrame(code, reason, true));
  }

  /** The next frame from the server; rejects after timeoutMs or when the connection ends first. */
  async next(timeoutMs = 5000) {
    const end = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.conn.isClosed) throw new Error('websocket: the connection closed before the next frame');
      const left = end - Date.now();
      if (left <= 0) throw new Error(`websocket: no frame within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.shift();
  }
}

// ---- memory ----

/** VmRSS of a process in KiB (from /proc/PID/status), or null when it is gone. */
export function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Samples the RSS of named processes every `everyMs` until stop(); keeps the peak of each. */
export class RssSampler {
  constructor(pids, everyMs = 50) {
    this.pids = pids; // {name: pid}
    this.peak = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
    this.first = {};
    this.samples = 0;
    this.timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  sample() {
    this.samples++;
    for (const [k, pid] of Object.entries(this.pids)) {
      const v = rssKiB(pid);
      if (v === null) continue;
      if (!(k in this.first)) this.first[k] = v;
      if (v > this.peak[k]) this.peak[k] = v;
    }
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/** "12.3 MiB" for a KiB count. */
export const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;

// ---- which process owns a loopback connection ----

function socketInodes(pid) {
  const out = new Set();
  let fds;
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/**
 * The name (a key of `pids`) of the process that holds the local end 127.0.0.1:localPort of a
 * TCP connection to 127.0.0.1:remotePort (from /proc/net/tcp and /proc/PID/fd), or null.
 * A backend calls it with its client's port to learn which connector carried a request.
 */
export function socketOwner(localPort, remotePort, pids) {
  const hex = (p) => p.toString(16).toUpperCase().padStart(4, '0');
  const want = `0100007F:${hex(localPort)}`;
  const peer = `0100007F:${hex(remotePort)}`;
  let inode = null;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === want && f[2] === peer) {
      inode = f[9];
      break;
    }
  }
  if (!inode) return null;
  for (const [name, pid] of Object.entries(pids)) {
    if (socketInodes(pid).has(inode)) return name;
  }
  return null;
}

// ---- a fake connector's view of REQUEST ----

/** Decodes a request header block (docs/protocol.md §5.2). */
export function parseRequestBlock(p) {
  let o = 8;
  const str = () => {
    const l = p.readUInt16BE(o);
    const v = p.subarray(o + 2, o + 2 + l).toString('latin1');
    o += 2 + l;
    return v;
  };
  const r = { scheme: p[0], flags: p[1], port: p.readUInt16BE(2), timeoutMs: p.readUInt32BE(4) };
  r.host = str();
  r.sni = str();
  r.method = str();
  r.target = str();
  const n = p.readUInt16BE(o);
  o += 2;
  r.headers = [];
  for (let i = 0; i < n; i++) r.headers.push([str(), str()]);
  if (o !== p.length) throw new Error(`request block: ${p.length - o} bytes after the last field`);
  r.get = (name) => r.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
  return r;
}

export { within, sleep };
