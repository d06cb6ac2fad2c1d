// SPDX-License-Identifier: MIT
// Publishing apps under load (issue "Publishing apps", "Must show"): a 1 GiB download and a
// 1 GiB upload through the tunnel with flat memory (the RSS of edge and connector sampled
// from /proc every 50 ms stays under 64 MiB; the peak is reported as a TAP diagnostic);
// 1,000 concurrent slow downloads on one tunnel while a fast request still answers (its
// latency is reported); two connectors in a group, one killed with kill -9 under load:
// requests it had not answered are retried on the other for idempotent methods, none hangs,
// and the failures are only requests that were in flight on the killed connector.
// Each test starts its own edge and connectors (lib/publish.mjs startSite).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { cleanup, within, sleep } from './lib/harness.mjs';
import { TestBackend, BodyChecker, genBlock, BLOCK, MiB } from './lib/backend.mjs';
import { startSite, addApp, appHost, RssSampler, mib, isSanitized, socketOwner } from './lib/publish.mjs';

const backends = [];
afterEach(async () => {
  try {
    await cleanup();
  } finally {
    while (backends.length) await backends.pop().stop();
  }
});

const SANITIZED = isSanitized();
const GiB_MIB = 1024;
const RSS_LIMIT_KIB = 64 * 1024;

async function siteWithApp(name, connectors = [{ name: 'a' }]) {
  const site = await startSite({ connectors });
  const bk = await TestBackend.start();
  backends.push(bk);
  await addApp(site.edge, name, { internal: `http://127.0.0.1:${bk.port}/` });
  return { ...site, bk, host: appHost(name) };
}

/** GET path and check the generated body as it streams; resolves {status, length, ok}. */
function download(client, host, path, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = https.request(client.options(host, path), (res) => {
      const c = new BodyChecker();
      res.on('data', (d) => c.feed(d));
      res.on('aborted', () => reject(new Error(`download aborted at ${c.length} bytes`)));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, length: c.length, ok: c.ok, badAt: c.badAt }));
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`download: stalled for ${timeoutMs} ms`)));
    req.end();
  });
}

/** PUT a generated body of `total` bytes with back-pressure; resolves {status, json}. */
function upload(client, host, path, total, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = https.request(client.options(host, path, {
      method: 'PUT', headers: { 'content-length': String(total), 'content-type': 'application/octet-stream' },
    }), (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, json: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode, text });
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`upload: stalled for ${timeoutMs} ms`)));
    (async () => {
      let sent = 0;
      for (let i = 0; sent < total; i++) {
        const n = Math.min(BLOCK, total - sent);
        const blk = genBlock(i);
        sent += n;
        if (!req.write(n === BLOCK ? blk : blk.subarray(0, n))) {
          await new Promise((r) => req.once('drain', r));
        }
      }
      req.end();
    })().catch(reject);
  });
}

function reportAndCheckRss(t, what, peak, seconds, bytes) {
  const rate = (bytes / MiB / seconds).toFixed(0);
  t.diagnostic(`peak RSS edge=${mib(peak.edge)} connector=${mib(peak.connector)} (${what}: ${bytes / MiB} MiB in ${seconds.toFixed(1)} s, ${rate} MiB/s)`);
  if (SANITIZED) {
    t.diagnostic('RSS limit not checked: sanitizer builds keep freed memory in quarantine and map shadow memory');
    return;
  }
  assert.ok(peak.edge > 0 && peak.connector > 0, 'RSS was sampled');
  assert.ok(peak.edge < RSS_LIMIT_KIB, `edge RSS peak ${mib(peak.edge)} < 64 MiB`);
  assert.ok(peak.connector < RSS_LIMIT_KIB, `connector RSS peak ${mib(peak.connector)} < 64 MiB`);
}

test('a 1 GiB download through the tunnel: intact, with flat memory (edge and connector RSS under 64 MiB; not checked in sanitizer builds)', async (t) => {
  const { edge, client, conns: { a }, host } = await siteWithApp('dl');
  const sampler = new RssSampler({ edge: edge.proc.pid, connector: a.proc.pid });
  const t0 = Date.now();
  const r = await download(client, host, `/_t/big?mib=${GiB_MIB}`, 30000);
  const dt = (Date.now() - t0) / 1000;
  const peak = sampler.stop();
  assert.equal(r.status, 200);
  assert.equal(r.ok, true, `the body is the generated one (first difference at byte ${r.badAt})`);
  assert.equal(r.length, GiB_MIB * MiB);
  reportAndCheckRss(t, 'download', peak, dt, r.length);
});

test('a 1 GiB upload through the tunnel: intact, with flat memory (edge and connector RSS under 64 MiB; not checked in sanitizer builds)', async (t) => {
  const { edge, client, conns: { a }, host } = await siteWithApp('ul');
  const sampler = new RssSampler({ edge: edge.proc.pid, connector: a.proc.pid });
  const t0 = Date.now();
  const total = GiB_MIB * MiB;
  const r = await upload(client, host, '/_t/upload', total, 30000);
  const dt = (Date.now() - t0) / 1000;
  const peak = sampler.stop();
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(r.json.length, total, 'the backend received every byte');
  assert.equal(r.json.ok, true, `the backend received the generated body (first difference at byte ${r.json.bad_at})`);
  reportAndCheckRss(t, 'upload', peak, dt, total);
});

test('rounds of 300 concurrent requests reuse the connector\'s 300 backend connections', async (t) => {
  const { client, bk, host } = await siteWithApp('pool');
  const N = 300;
  const ROUNDS = 3;
  const BATCH = 50; // below the edge's limit of unauthenticated connections per address (100)
  for (let r = 0; r < ROUNDS; r++) {
    // The backend holds every request until all N arrived, so a round needs N at once.
    bk.released = false;
    const base = bk.holds.length;
    const answers = [];
    for (let i = 0; i < N; i += BATCH) {
      for (let j = i; j < i + BATCH; j++) {
        answers.push(client.request(host, `/_t/hold?r=${r}&i=${j}`, { timeoutMs: 30000 }));
      }
      await bk.until(() => bk.holds.length >= base + i + BATCH, 20000, `round ${r}: ${i + BATCH} requests held`);
    }
    bk.release();
    const got = await Promise.all(answers);
    assert.ok(got.every((a) => a.status === 200), `round ${r}: all answered`);
  }
  t.diagnostic(`${ROUNDS} rounds of ${N} requests: ${bk.connectionsTotal} backend connections`);
  // A pool that keeps fewer idle connections than the rounds use closes the rest after each
  // round and opens them again: (ROUNDS - 1) * (N - kept) more.
  assert.ok(bk.connectionsTotal <= N + 8, `the pool kept its connections: ${bk.connectionsTotal} opened for ${ROUNDS * N} requests`);
});

test('1,000 concurrent slow downloads on one tunnel; a fast request still answers', async (t) => {
  const { edge, client, conns: { a }, bk, host } = await siteWithApp('many', [{ name: 'a', tunnels: 1 }]);
  const N = 1000;
  const BATCH = 50; // below the edge's limit of unauthenticated connections per address (100)
  const sampler = new RssSampler({ edge: edge.proc.pid, connector: a.proc.pid }, 200);
  const slow = [];
  const t0 = Date.now();
  for (let i = 0; i < N; i += BATCH) {
    for (let j = i; j < Math.min(N, i + BATCH); j++) {
      slow.push(new Promise((resolve) => {
        const rec = { status: null, bytes: 0, error: null };
        const req = https.request(client.options(host, `/_t/slow?hold=1&ms=250&size=256&i=${j}`, { headers: { 'x-request-id': `slow-${j}` } }), (res) => {
          rec.status = res.statusCode;
          res.on('data', (d) => (rec.bytes += d.length));
          res.on('aborted', () => (rec.error = 'aborted'));
          res.on('error', (e) => (rec.error = e.message));
          res.on('close', () => resolve(rec));
        });
        req.on('error', (e) => {
          rec.error = e.message;
          resolve(rec);
        });
        req.setTimeout(60000, () => req.destroy(new Error('stalled 60 s')));
        req.end();
      }));
    }
    await bk.until(() => bk.slowStarted >= Math.min(N, i + BATCH), 30000, `${Math.min(N, i + BATCH)} slow downloads running`);
  }
  const rampMs = Date.now() - t0;
  assert.equal(bk.slowActive, N, 'all of them are running at once');
  const info = await edge.cliJson(['connector', 'show', a.id]);
  assert.equal(info.tunnels.length, 1, `one tunnel: ${JSON.stringify(info.tunnels)}`);
  assert.ok(info.tunnels[0].streams >= N, `it carries every stream: ${JSON.stringify(info.tunnels)}`);

  const f0 = Date.now();
  const fast = await client.request(host, '/fast', { timeoutMs: 5000 });
  const latency = Date.now() - f0;
  assert.equal(fast.status, 200);
  assert.equal(fast.json.url, '/fast');
  t.diagnostic(`fast request latency ${latency} ms (new TLS connection included) with ${bk.slowActive} slow downloads in flight; ramp-up ${rampMs} ms`);

  bk.releaseSlow();
  const results = await within(Promise.all(slow), 60000, 'the slow downloads did not all finish');
  const peak = sampler.stop();
  t.diagnostic(`peak RSS with ${N} streams: edge=${mib(peak.edge)} connector=${mib(peak.connector)}`);
  const bad = results.filter((r) => r.status !== 200 || r.error || r.bytes === 0 || r.bytes % 256 !== 0);
  assert.equal(bad.length, 0, `every slow download completed: ${JSON.stringify(bad.slice(0, 5))}`);
  const fastLine = await edge.proc.waitLog((l) => l.event === 'http_request_done' && l.req === fast.headers['x-request-id'], 5000, 'the fast request\'s access line');
  const slowLines = await edge.proc.waitCount((l) => l.event === 'http_request_done' && /^slow-/.test(l.req || ''), N, 10000, 'access lines of the slow downloads');
  assert.equal(slowLines.length, N, 'one access line each');
  assert.ok(slowLines.every((l) => l.status === 200 && l.result === 'ok'), `all answered whole: ${JSON.stringify(slowLines.find((l) => l.result !== 'ok'))}`);
  const slowTunnels = new Set(edge.proc.lines.filter((l) => l.event === 'http_request_done' && /^slow-/.test(l.req || '')).map((l) => l.tunnel));
  assert.deepEqual([...slowTunnels], [fastLine.tunnel], 'the fast request shared the tunnel of the slow ones');
});

test('two connectors in a group, one killed with kill -9 under load: idempotent requests it had not answered are retried on the other, none hangs, only its requests in flight fail', async (t) => {
  const { client, edge, conns: { a, b }, bk, host } = await siteWithApp('fo', [{ name: 'a' }, { name: 'b' }]);
  const pids = { a: a.proc.pid, b: b.proc.pid };
  // Which connector carried each arrival at the backend (the owner of the connection).
  const carriers = new Map();
  bk.onRequest = (rec) => {
    const id = rec.headers['x-request-id'];
    if (!id) return;
    const list = carriers.get(id) || [];
    list.push(socketOwner(rec.remotePort, bk.port, pids));
    carriers.set(id, list);
  };
  const BOUND_MS = 15000;
  const all = [];
  const one = async (method, path, id) => {
    const rec = { id, method, start: Date.now(), end: 0, status: 0, error: null };
    all.push(rec);
    try {
      const r = await client.request(host, path, { method, headers: { 'x-request-id': id }, body: method === 'POST' ? 'payload' : null, timeoutMs: BOUND_MS });
      rec.status = r.status;
      rec.bytes = r.body.length;
    } catch (e) {
      rec.error = e.message;
    }
    rec.end = Date.now();
    return rec;
  };
  const ok = (r) => r.status === 200 && !r.error;

  // A loop of requests (12 at a time), each a 160 ms streamed answer.
  let stop = false;
  const workers = Array.from({ length: 12 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const r = await one('GET', '/_t/slow?n=4&ms=40&size=256', `loop-${w}-${i}`);
      if (ok(r)) assert.equal(r.bytes, 1024, `loop-${w}-${i}: the whole body`);
    }
  });
  await sleep(500);

  // Requests the backend holds: at least 3 GET and 3 POST carried by a.
  const holds = [];
  const onA = (m) => holds.filter((h) => h.method === m && (carriers.get(h.id) || [])[0] === 'a').length;
  for (let i = 0; i < 60 && (onA('GET') < 3 || onA('POST') < 3); i++) {
    const method = onA('GET') < 3 && (onA('POST') >= 3 || i % 2 === 0) ? 'GET' : 'POST';
    const id = `hold-${method}-${i}`;
    holds.push({ id, method, p: one(method, '/_t/hold', id) });
    await bk.until(() => carriers.has(id), 5000, `held request ${id} at the backend`);
  }
  assert.ok(onA('GET') >= 3 && onA('POST') >= 3, `held requests on a: ${onA('GET')} GET, ${onA('POST')} POST`);

  const killAt = Date.now();
  a.proc.kill('SIGKILL');
  const inFlightAtKill = all.filter((r) => r.start < killAt && !r.end);
  await sleep(1000);
  bk.release();
  await sleep(1000);
  stop = true;
  await within(Promise.all([...workers, ...holds.map((h) => h.p)]), BOUND_MS + 5000, 'requests still unanswered');

  const first = (id) => (carriers.get(id) || [])[0];
  const hung = all.filter((r) => r.error && /no answer within/.test(r.error));
  assert.equal(hung.length, 0, `no request hangs: ${JSON.stringify(hung)}`);

  // Held requests: on a, GETs are retried on b and succeed, POSTs fail without a retry.
  for (const h of holds) {
    const r = all.find((x) => x.id === h.id);
    const seen = carriers.get(h.id);
    if (seen[0] === 'a' && h.method === 'GET') {
      assert.ok(ok(r), `${h.id} (GET on a, unanswered) succeeded on retry: ${JSON.stringify(r)}`);
      assert.deepEqual(seen, ['a', 'b'], `${h.id}: sent again, through b`);
      await edge.proc.waitLog((x) => x.event === 'http_request_retried' && x.req === h.id, 5000, `http_request_retried for ${h.id}`);
    } else if (seen[0] === 'a') {
      assert.equal(r.status, 502, `${h.id} (POST on a) fails with a 502 page: ${JSON.stringify(r)}`);
      assert.deepEqual(seen, ['a'], `${h.id}: a POST is not sent again`);
      const l = await edge.proc.waitLog((x) => x.event === 'http_request_done' && x.req === h.id, 5000, `access ${h.id}`);
      assert.equal(l.status, 502);
    } else {
      assert.ok(ok(r), `${h.id} on b: ${JSON.stringify(r)}`);
      assert.deepEqual(seen, ['b']);
    }
  }

  // The loop: every failure was in flight on a when it died.
  const loop = all.filter((r) => r.id.startsWith('loop-'));
  const failed = loop.filter((r) => !ok(r));
  for (const r of failed) {
    assert.ok(r.start < killAt && r.end >= killAt, `${r.id} failed but was not in flight at the kill: ${JSON.stringify(r)}`);
    assert.equal(first(r.id), 'a', `${r.id} failed but was carried by ${first(r.id)}: ${JSON.stringify(r)}`);
  }
  // The edge's view of the failures: lines that name the killed connector.
  for (const r of failed) {
    const l = await edge.proc.waitLog((x) => x.event === 'http_request_done' && x.req === r.id, 5000, `access line of ${r.id}`);
    assert.equal(l.connector, a.id, `${r.id}: ${l._raw}`);
    assert.ok(l.result === 'error' || l.status === 502, `${r.id} cut or answered 502: ${l._raw}`);
  }
  const after = loop.filter((r) => r.start >= killAt);
  assert.ok(after.length > 0, 'requests were made after the kill');
  assert.ok(after.every(ok), `every request after the kill succeeded: ${JSON.stringify(after.filter((r) => !ok(r)).slice(0, 5))}`);
  const onAAtKill = inFlightAtKill.filter((r) => first(r.id) === 'a');
  const retried = loop.filter((r) => ok(r) && (carriers.get(r.id) || []).join() === 'a,b');
  t.diagnostic(`requests ${all.length} (loop ${loop.length}, held ${holds.length}); in flight at the kill ${inFlightAtKill.length}, of them on a ${onAAtKill.length}; failed ${failed.length} loop + ${holds.filter((h) => !ok(all.find((x) => x.id === h.id))).length} held POST; retried on b and answered ${retried.length} loop + ${holds.filter((h) => h.method === 'GET' && (carriers.get(h.id) || []).join() === 'a,b').length} held GET`);
  assert.ok(failed.length <= onAAtKill.length, `failures (${failed.length}) <= requests in flight on a (${onAAtKill.length})`);
});
