// SPDX-License-Identifier: MIT
// tests/bench/idle_tls.mjs: the server's memory per idle TLS keep-alive client connection.
// Opens N TLS connections to host:port (at most C handshakes in flight), sends one
// keep-alive GET on each and reads its whole response, then leaves them all idle. It samples
// VmRSS and RssAnon of the server process (/proc/PID/status) before the first connection,
// after SETTLE seconds of idleness, and prints one line of key=value figures:
//   open=N rss_before_kib=.. rss_after_kib=.. anon_before_kib=.. anon_after_kib=..
//   per_conn_kib=.. (VmRSS growth / N)
// Exits 1 when a connection or a response fails. Used by tests/bench/compare.sh.
//
// node idle_tls.mjs --port P --pid PID [--host 127.0.0.1] [--servername NAME]
//   [--host-header H] [--path /hello] [--ca FILE] [-n 1000] [-c 50] [--settle 2]
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    pid: { type: 'string' },
    servername: { type: 'string', default: 'localhost' },
    'host-header': { type: 'string' },
    path: { type: 'string', default: '/hello' },
    ca: { type: 'string' },
    n: { type: 'string', short: 'n', default: '1000' },
    c: { type: 'string', short: 'c', default: '50' },
    settle: { type: 'string', default: '2' },
  },
});
if (!opt.port || !opt.pid) {
  console.error('usage: node idle_tls.mjs --port P --pid PID [options]');
  process.exit(2);
}
const N = Number(opt.n);
const C = Number(opt.c);
const hostHeader = opt['host-header'] || `${opt.host}:${opt.port}`;
const ca = opt.ca ? readFileSync(opt.ca) : undefined;
const request = `GET ${opt.path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: portico-idle-bench\r\n\r\n`;

/** VmRSS and RssAnon of pid in KiB. */
function sample(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1] || NaN);
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Opens one connection, completes one keep-alive exchange, resolves the socket. */
function openOne() {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: opt.host, port: Number(opt.port), servername: opt.servername, ca,
      rejectUnauthorized: Boolean(ca),
    });
    let buf = Buffer.alloc(0);
    const fail = (e) => {
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('no response within 30 s')), 30000);
    sock.once('error', fail);
    sock.once('secureConnect', () => sock.write(request));
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(head.split(' ')[1]);
      const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
      if (!m) return fail(new Error(`response without Content-Length: ${head.split('\r\n')[0]}`));
      if (buf.length < end + 4 + Number(m[1])) return;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', fail);
      if (status !== 200) return fail(new Error(`status ${status}`));
      if (/\r\nconnection:\s*close/i.test(head)) return fail(new Error('the server closes the connection'));
      // From here on an error only counts against the connections still open at the end.
      sock.on('error', () => {});
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

const before = sample(opt.pid);
const socks = [];
let next = 0;
let failure = null;
async function worker() {
  while (next < N && !failure) {
    next++;
    try {
      socks.push(await openOne());
    } catch (e) {
      failure = failure || e;
    }
  }
}
await Promise.all(Array.from({ length: Math.min(C, N) }, worker));
if (failure) {
  console.error(`idle_tls: ${socks.length} of ${N} connections opened; first failure: ${failure.message}`);
  for (const s of socks) s.destroy();
  process.exit(1);
}
await sleep(Number(opt.settle) * 1000);
const open = socks.filter((s) => !s.destroyed).length;
const after = sample(opt.pid);
console.log([
  `open=${open}`,
  `rss_before_kib=${before.rss}`, `rss_after_kib=${after.rss}`,
  `anon_before_kib=${before.anon}`, `anon_after_kib=${after.anon}`,
  `per_conn_kib=${((after.rss - before.rss) / N).toFixed(1)}`,
].join(' '));
for (const s of socks) s.destroy();
process.exit(open === N ? 0 : 1);
