// SPDX-License-Identifier: MIT
// A small HTTP CONNECT proxy (RFC 9110 §9.3.6) for the integration tests, with optional Basic
// proxy authentication (RFC 9110 §11.7). It only opens tunnels to loopback addresses, records
// every CONNECT it saw (target, whether the credentials were right) and closes everything on
// close().
import net from 'node:net';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

export class ConnectProxy {
  /**
   * Starts listening on 127.0.0.1 (a free port). `auth` is {user, pass} or null for an
   * open proxy.
   */
  static async start({ auth = null } = {}) {
    const p = new ConnectProxy(auth);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    return p;
  }

  constructor(auth) {
    this.auth = auth;
    this.requests = []; // {method, target, authorized, status, proxyAuthorization: bool}
    this.sockets = new Set();
    this.server = net.createServer((c) => this.onClient(c));
  }

  url({ user, pass } = {}) {
    const cred = user !== undefined ? `${encodeURIComponent(user)}:${encodeURIComponent(pass)}@` : '';
    return `http://${cred}127.0.0.1:${this.port}`;
  }

  track(s) {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  onClient(c) {
    this.track(c);
    let head = Buffer.alloc(0);
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) c.destroy();
        return;
      }
      c.removeListener('data', onData);
      c.pause();
      this.onHead(c, head.subarray(0, end).toString('latin1'), head.subarray(end + 4));
    };
    c.on('data', onData);
  }

  answer(c, rec, status, reason, extra = '') {
    rec.status = status;
    c.end(`HTTP/1.1 ${status} ${reason}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  }

  onHead(c, head, rest) {
    const lines = head.split('\r\n');
    const [method, target] = lines[0].split(' ');
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const rec = { method, target, proxyAuthorization: 'proxy-authorization' in headers, authorized: null, status: 0 };
    this.requests.push(rec);
    if (method !== 'CONNECT') return this.answer(c, rec, 405, 'Method Not Allowed', 'Allow: CONNECT\r\n');
    if (this.auth) {
      const want = `Basic ${Buffer.from(`${this.auth.user}:${this.auth.pass}`).toString('base64')}`;
      rec.authorized = headers['proxy-authorization'] === want;
      if (!rec.authorized) {
        return this.answer(c, rec, 407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="itest"\r\n');
      }
    }
    const m = /^(.*):(\d+)$/.exec(target || '');
    if (!m || !LOOPBACK.test(m[1])) return this.answer(c, rec, 403, 'Forbidden');
    const host = m[1] === 'localhost' ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
    const up = net.connect({ host, port: Number(m[2]) });
    this.track(up);
    up.once('error', () => {
      if (!rec.status) this.answer(c, rec, 502, 'Bad Gateway');
      else c.destroy();
    });
    up.once('connect', () => {
      rec.status = 200;
      c.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (rest.length) up.write(rest);
      c.pipe(up);
      up.pipe(c);
      c.resume();
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
  }

  /** Established tunnels to target ("host:port"). */
  tunnelsTo(target) {
    return this.requests.filter((r) => r.target === target && r.status === 200);
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(() => r()));
  }
}
