// SPDX-License-Identifier: MIT
// A connector behind an HTTP CONNECT proxy (the proxy is lib/connect_proxy.mjs): registration
// and tunnels go through it, from connector.json's "proxy" or from HTTPS_PROXY; with Basic
// proxy authentication; and a wrong proxy password gives a clear error naming the proxy's
// answer, and never a tunnel.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Edge, Connector, cleanup, show, cleanEnv, sleep, EDGE_HOST } from './lib/harness.mjs';
import { ConnectProxy } from './lib/connect_proxy.mjs';

const proxies = [];
afterEach(async () => {
  try {
    await cleanup();
  } finally {
    while (proxies.length) await proxies.pop().close();
  }
});

async function proxy(opts) {
  const p = await ConnectProxy.start(opts);
  proxies.push(p);
  return p;
}

test('register and run through an open CONNECT proxy (connector.json "proxy")', async () => {
  const edge = await Edge.create();
  await edge.start();
  const px = await proxy();
  const target = `${EDGE_HOST}:${edge.port}`;
  const conn = new Connector(edge, 'c', { proxy: px.url() });
  const tok = await edge.mintToken();
  const r = await conn.register(tok.token);
  assert.equal(r.code, 0, show(r));
  assert.equal(px.tunnelsTo(target).length, 1, `registration went through the proxy: ${JSON.stringify(px.requests)}`);
  conn.start();
  await edge.waitActive(conn.id, 2);
  assert.equal(px.tunnelsTo(target).length, 3, `both tunnels went through the proxy: ${JSON.stringify(px.requests)}`);
  assert.ok(px.requests.every((q) => q.method === 'CONNECT' && !q.proxyAuthorization), JSON.stringify(px.requests));
});

test('register and run through a CONNECT proxy named by HTTPS_PROXY', async () => {
  const edge = await Edge.create();
  await edge.start();
  const px = await proxy();
  const target = `${EDGE_HOST}:${edge.port}`;
  const env = cleanEnv({ HTTPS_PROXY: px.url() });
  const conn = new Connector(edge, 'c');
  const tok = await edge.mintToken();
  const r = await conn.register(tok.token, { env });
  assert.equal(r.code, 0, show(r));
  assert.equal(px.tunnelsTo(target).length, 1, `registration went through the proxy: ${JSON.stringify(px.requests)}`);
  conn.start({ env });
  await edge.waitActive(conn.id, 2);
  assert.equal(px.tunnelsTo(target).length, 3, JSON.stringify(px.requests));
});

test('proxy Basic authentication: right credentials work, a wrong password is a clear error', async () => {
  const edge = await Edge.create();
  await edge.start();
  const pass = 'pr0xy-s3cret';
  const px = await proxy({ auth: { user: 'itest', pass } });
  const target = `${EDGE_HOST}:${edge.port}`;

  // Right password: registration and both tunnels, every CONNECT authorized.
  const conn = new Connector(edge, 'good', { proxy: px.url({ user: 'itest', pass }) });
  const tok = await edge.mintToken();
  const r = await conn.register(tok.token);
  assert.equal(r.code, 0, show(r));
  const p = conn.start();
  await edge.waitActive(conn.id, 2);
  assert.equal(px.tunnelsTo(target).length, 3, JSON.stringify(px.requests));
  assert.ok(px.requests.every((q) => q.authorized === true), `every CONNECT carried the credentials: ${JSON.stringify(px.requests)}`);
  const logs = p.lines.map((l) => l._raw).join('\n') + p.stderr + r.stdout + r.stderr;
  assert.ok(!logs.includes(pass), 'the proxy password appears in the connector output');

  // Wrong password: register fails with exit 1, naming the proxy's refusal.
  const bad = new Connector(edge, 'bad', { proxy: px.url({ user: 'itest', pass: 'Wr0ngPass-x9' }) });
  const tok2 = await edge.mintToken();
  const r2 = await bad.register(tok2.token);
  assert.equal(r2.code, 1, show(r2));
  assert.match(r2.stderr + r2.stdout, /407|proxy auth/i, `the message names the proxy's answer: ${show(r2)}`);
  assert.ok(!(r2.stderr + r2.stdout).includes('Wr0ngPass-x9'), 'the (wrong) proxy password is printed');
  assert.ok(!existsSync(bad.credPath));
  assert.equal((await edge.cliJson(['token', 'list'])).tokens.find((t) => t.id === tok2.id).state, 'active');

  // Wrong password at run time (registered directly): tunnels fail at the proxy, never up.
  const direct = new Connector(edge, 'direct');
  await direct.registerOk();
  direct.proxy = px.url({ user: 'itest', pass: 'Wr0ngPass-x9' });
  direct.writeConfig();
  const m = edge.proc.mark();
  const dp = direct.start();
  await dp.waitCount((l) => /407|proxy auth/i.test(l._raw), 2, 8000, 'connector lines naming the 407 (first attempt and a retry)');
  await sleep(300);
  assert.equal(dp.events('tunnel_up').length, 0, 'no tunnel through a proxy that refuses');
  assert.equal(edge.connectorEvents('tunnel_up', direct.id, m).length, 0);
  assert.equal((await edge.connectorInfo(direct.id)).status, 'inactive');
});
