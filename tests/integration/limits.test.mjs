// SPDX-License-Identifier: MIT
// The edge's accept limits for connections still in their handshake: per peer address
// (max_unauthenticated_per_address) and in all (max_unauthenticated). Raw TCP connections
// that never send a ClientHello stay in the handshake; a refused one is closed at once and
// logged as connection_refused with the limit's name; a connection past its handshake no
// longer counts; a closed one frees its place. Loopback addresses 127.0.0.2 and 127.0.0.3
// act as other peers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { Edge, FAST_LIMITS, cleanup, eventually } from './lib/harness.mjs';

let edge;

before(async () => {
  edge = await Edge.create({
    limits: { ...FAST_LIMITS, handshake_timeout: '30s', max_unauthenticated_per_address: 3, max_unauthenticated: 5 },
  });
  await edge.start();
});

after(cleanup);

const open = [];

/** A TCP connection from `from` that says nothing; resolves once connected. */
function raw(from = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: edge.port, host: '127.0.0.1', localAddress: from });
    s.gone = new Promise((r) => s.once('close', r));
    s.on('error', () => {});
    s.once('connect', () => {
      open.push(s);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function connections() {
  const st = await edge.cliJson(['status']);
  return st.connections;
}

/** Waits until the edge holds `n` public connections. */
const holds = (n) => eventually(async () => (await connections()) === n, 5000, 50, `the edge holds ${n} connections`);

/** The next connection from `from` is closed by the edge, which logs `reason`. */
async function refused(from, reason) {
  const mark = edge.proc.mark();
  const s = await raw(from);
  let timer;
  const late = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`a connection from ${from} was not closed`)), 5000);
  });
  await Promise.race([s.gone, late]).finally(() => clearTimeout(timer));
  const line = await edge.proc.waitLog((l) => l.event === 'connection_refused', 5000, 'connection_refused', mark);
  assert.equal(line.reason, reason);
}

function closeAll() {
  for (const s of open.splice(0)) s.destroy();
}

test('per address: the fourth connection in a handshake from one address is refused, others are not; closing one frees its place', async () => {
  const a = [await raw(), await raw(), await raw()];
  await holds(3);
  await refused('127.0.0.1', 'max_unauthenticated_per_address');
  // Another address has its own count.
  await raw('127.0.0.2');
  await holds(4);
  a[0].destroy();
  await holds(3);
  await raw();
  await holds(4);
  await refused('127.0.0.1', 'max_unauthenticated_per_address');
  closeAll();
  await holds(0);
});

test('in all: five connections in a handshake from three addresses fill max_unauthenticated; the sixth is refused', async () => {
  await raw(); await raw(); await raw();
  await raw('127.0.0.2'); await raw('127.0.0.2');
  await holds(5);
  await refused('127.0.0.3', 'max_unauthenticated');
  closeAll();
  await holds(0);
  // And the places are free again, for every address.
  await raw('127.0.0.3');
  await raw();
  await holds(2);
  closeAll();
  await holds(0);
});

test('a connection past its TLS handshake does not count toward its address', async () => {
  const t = tls.connect({ port: edge.port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  await new Promise((resolve, reject) => { t.once('secureConnect', resolve); t.once('error', reject); });
  t.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await new Promise((resolve) => t.once('data', resolve));
  await raw(); await raw(); await raw();
  await holds(4);
  await refused('127.0.0.1', 'max_unauthenticated_per_address');
  t.destroy();
  closeAll();
  await holds(0);
});
