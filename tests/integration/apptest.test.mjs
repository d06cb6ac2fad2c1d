// SPDX-License-Identifier: MIT
// `portico app test` and POST /v1/apps/{name}/test (docs/admin-api.md, docs/protocol.md
// §4.8.1): the edge checks an app's configuration, certificate and connectors, and each live
// connector of the app's group probes the internal URL (DNS, TCP, TLS, HTTP) over a CONTROL
// document. One edge (whose certificate covers *.apps.localhost) and two connectors of the
// Default group serve every case: a healthy backend (a Node http server), a stopped backend
// (a closed port), an https backend whose certificate comes from a CA nobody trusts, an empty
// connector group, a group whose only connector is not running, and an external host no
// certificate covers. Each is reported with the right failing step and hint, in JSON and in
// the CLI's human form, with exit 0 only when every check passed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import https from 'node:https';
import {
  Edge, Connector, makeCerts, cleanup, show, tempDir, freePort, EDGE_HOST,
} from './lib/harness.mjs';

let edge;
let conns;
let backend; // {server, port, requests}
let tlsBackend; // {server, port}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function close(server) {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
}

before(async () => {
  const dir = tempDir('apptest');
  const certs = makeCerts(join(dir, 'edge-certs'), {
    edge: [`DNS:${EDGE_HOST}`, 'DNS:*.apps.localhost', 'IP:127.0.0.1'],
  });
  edge = await Edge.create({ certs });
  await edge.start();
  conns = [new Connector(edge, 'c1', { tunnels: 1 }), new Connector(edge, 'c2', { tunnels: 1 })];
  for (const c of conns) await c.registerOk();
  for (const c of conns) await c.startActive();

  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello from the backend\n');
  });
  backend = { server, port: await listen(server), requests };

  // A certificate for localhost from a CA that is in no trust store.
  const bad = makeCerts(join(dir, 'untrusted'), { backend: [`DNS:${EDGE_HOST}`, 'IP:127.0.0.1'] },
    { caName: 'untrusted-ca' });
  const tserver = https.createServer({
    key: readFileSync(bad.backend.key), cert: readFileSync(bad.backend.crt),
  }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('secure hello\n');
  });
  tlsBackend = { server: tserver, port: await listen(tserver) };
});

after(async () => {
  await close(backend && backend.server);
  await close(tlsBackend && tlsBackend.server);
  await cleanup();
});

async function addApp(name, internalUrl, extra = []) {
  const r = await edge.cli(['app', 'add', name, '--internal-url', internalUrl, '--pre-auth', 'passthrough', ...extra]);
  assert.equal(r.code, 0, show(r));
}

/** Runs `portico --json app test NAME`; returns {r, report}. */
async function testJson(name) {
  const r = await edge.cli(['--json', 'app', 'test', name]);
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch (e) {
    assert.fail(`app test --json did not print JSON (${e.message}):\n${show(r)}`);
  }
  return { r, report };
}

function check(report, name) {
  return report.checks.find((c) => c.check === name);
}

function probes(report) {
  return report.checks.filter((c) => c.check === 'probe');
}

test('healthy app: every check passes, each live connector probes the backend', async () => {
  await addApp('healthy', `http://127.0.0.1:${backend.port}/`);
  const before = backend.requests.length;
  const { r, report } = await testJson('healthy');
  assert.equal(r.code, 0, show(r));
  assert.equal(report.app, 'healthy');
  assert.equal(report.ok, true, JSON.stringify(report, null, 2));
  assert.equal(report.external_url, 'https://healthy.apps.localhost/');
  assert.equal(report.internal_url, `http://127.0.0.1:${backend.port}/`);
  assert.equal(report.connector_group, 'Default');
  assert.equal(check(report, 'configuration').ok, true);
  const cert = check(report, 'certificate');
  assert.equal(cert.ok, true);
  assert.match(cert.detail, /default certificate covers healthy\.apps\.localhost \(\*\.apps\.localhost\)/);
  const cn = check(report, 'connectors');
  assert.equal(cn.ok, true);
  assert.equal(cn.detail, '2 live connectors in group Default');

  // One probe per live connector, each dns -> tcp -> http 200.
  const ps = probes(report);
  assert.deepEqual(ps.map((p) => p.connector).sort(), conns.map((c) => c.id).sort());
  for (const p of ps) {
    assert.equal(p.ok, true, JSON.stringify(p));
    assert.equal(p.hint, undefined);
    assert.deepEqual(p.steps.map((s) => s.step), ['dns', 'tcp', 'http']);
    assert.ok(p.steps.every((s) => s.ok === true && typeof s.ms === 'number' && s.ms >= 0), JSON.stringify(p.steps));
    assert.equal(p.steps[0].detail, '127.0.0.1');
    assert.equal(p.steps[1].detail, `127.0.0.1:${backend.port}`);
    assert.equal(p.steps[2].status, 200);
    assert.match(p.detail, /answered 200 OK in [0-9.]+ ms/);
  }
  // The backend saw the probes: a GET of the internal path from the connectors.
  const got = backend.requests.slice(before);
  assert.equal(got.length, 2, JSON.stringify(got));
  for (const g of got) {
    assert.equal(g.method, 'GET');
    assert.equal(g.url, '/');
    assert.match(g.headers['user-agent'], /^portico-connector\/.* \(probe\)$/);
    assert.equal(g.headers.host, `127.0.0.1:${backend.port}`);
  }
  // Both connectors logged their probe; the edge logged the test.
  for (const c of conns) {
    const line = await c.proc.waitLog((l) => l.event === 'probe_done', 3000, 'probe_done');
    assert.equal(line.ok, true);
    assert.equal(line.port, backend.port);
  }
  const done = await edge.proc.waitLog((l) => l.event === 'app_test_done' && l.app === 'healthy', 3000, 'app_test_done');
  assert.equal(done.ok, true);
  assert.equal(done.answered, 2);

  // The human report: a check mark per check, the steps, a summary, exit 0.
  const h = await edge.cli(['app', 'test', 'healthy']);
  assert.equal(h.code, 0, show(h));
  assert.match(h.stdout, /^app healthy: https:\/\/healthy\.apps\.localhost\/ -> http:\/\/127\.0\.0\.1:\d+\/ \(group Default\)$/m);
  assert.match(h.stdout, /^✓ configuration/m);
  assert.match(h.stdout, /^✓ certificate/m);
  assert.match(h.stdout, /^✓ connectors +2 live connectors in group Default$/m);
  for (const c of conns) assert.match(h.stdout, new RegExp(`^✓ probe ${c.id} +GET `, 'm'));
  assert.match(h.stdout, /^ {4}http +✓ +[0-9.]+ ms {2}200 OK$/m);
  assert.match(h.stdout, /^all 5 checks passed$/m);
  assert.doesNotMatch(h.stdout, /✗|hint:/);
});

test('stopped backend: the probe fails at tcp with "refused" and the matching hint', async () => {
  const port = await freePort(); // nothing listens there
  await addApp('stopped', `http://127.0.0.1:${port}/`);
  const { r, report } = await testJson('stopped');
  assert.equal(r.code, 1, show(r));
  assert.equal(report.ok, false);
  assert.equal(check(report, 'configuration').ok, true);
  assert.equal(check(report, 'connectors').ok, true);
  const ps = probes(report);
  assert.equal(ps.length, 2);
  for (const p of ps) {
    assert.equal(p.ok, false);
    assert.deepEqual(p.steps.map((s) => [s.step, s.ok]), [['dns', true], ['tcp', false]]);
    assert.equal(p.steps[1].error, 'refused');
    assert.match(p.detail, new RegExp(`^tcp: 127\\.0\\.0\\.1:${port}: connection refused$`));
    assert.equal(p.hint, `the backend refused the connection: is the app running on 127.0.0.1:${port}, and does the connector's host reach it?`);
  }

  const h = await edge.cli(['app', 'test', 'stopped']);
  assert.equal(h.code, 1, show(h));
  assert.match(h.stdout, new RegExp(`^✗ probe ${conns[0].id} +tcp: `, 'm'));
  assert.match(h.stdout, /^ {4}tcp +✗ /m);
  assert.match(h.stdout, /^ {4}hint: the backend refused the connection: is the app running on /m);
  assert.match(h.stdout, /^2 of 5 checks failed$/m);
});

test('bad backend certificate: the probe fails at tls with "untrusted"; validate_backend_tls=false passes', async () => {
  await addApp('badtls', `https://${EDGE_HOST}:${tlsBackend.port}/`);
  const { r, report } = await testJson('badtls');
  assert.equal(r.code, 1, show(r));
  assert.equal(report.ok, false);
  for (const p of probes(report)) {
    assert.equal(p.ok, false);
    assert.deepEqual(p.steps.map((s) => [s.step, s.ok]), [['dns', true], ['tcp', true], ['tls', false]]);
    const tls = p.steps[2];
    assert.equal(tls.error, 'untrusted', JSON.stringify(tls));
    assert.match(tls.detail, /^certificate not trusted: /);
    assert.match(p.hint, /^the certificate of the backend is not trusted by the connector: install its CA in the trust store of the connector's host .*, or set validate_backend_tls to false$/);
  }
  const h = await edge.cli(['app', 'test', 'badtls']);
  assert.equal(h.code, 1, show(h));
  assert.match(h.stdout, /^ {4}tls +✗ .*certificate not trusted/m);
  assert.match(h.stdout, /^ {4}hint: the certificate of the backend is not trusted by the connector/m);

  // Without validation the same backend answers, and the configuration check says what it costs.
  const set = await edge.cli(['app', 'set', 'badtls', 'validate_backend_tls=false']);
  assert.equal(set.code, 0, show(set));
  const again = await testJson('badtls');
  assert.equal(again.r.code, 0, show(again.r));
  assert.equal(again.report.ok, true, JSON.stringify(again.report, null, 2));
  assert.match(check(again.report, 'configuration').note, /validate_backend_tls is false/);
  for (const p of probes(again.report)) {
    assert.deepEqual(p.steps.map((s) => s.step), ['dns', 'tcp', 'tls', 'http']);
    assert.match(p.steps[2].detail, /^TLSv1\.2, .*certificate not checked/);
    assert.equal(p.steps[3].status, 200);
  }
});

test('empty connector group, and a group whose only connector is not running', async () => {
  let r = await edge.cli(['group', 'add', 'Empty']);
  assert.equal(r.code, 0, show(r));
  await addApp('lonely', `http://127.0.0.1:${backend.port}/`, ['--group', 'Empty']);
  const { r: tr, report } = await testJson('lonely');
  assert.equal(tr.code, 1, show(tr));
  assert.equal(report.ok, false);
  assert.equal(check(report, 'configuration').ok, true);
  const cn = check(report, 'connectors');
  assert.equal(cn.ok, false);
  assert.equal(cn.detail, 'group Empty has no connector');
  assert.match(cn.hint, /^no connector of group Empty is connected: register one .*portico token create --group "Empty".*or move one into the group \(`portico connector move ID --group "Empty"`\)$/);
  assert.equal(probes(report).length, 0, 'nobody to probe');
  const h = await edge.cli(['app', 'test', 'lonely']);
  assert.equal(h.code, 1, show(h));
  assert.match(h.stdout, /^✗ connectors +group Empty has no connector$/m);
  assert.match(h.stdout, /^ {4}hint: no connector of group Empty is connected/m);
  assert.match(h.stdout, /^1 of 3 checks failed$/m);

  // A registered connector that does not run is named, with a hint to start it.
  r = await edge.cli(['group', 'add', 'Idle']);
  assert.equal(r.code, 0, show(r));
  const idle = new Connector(edge, 'idle', { tunnels: 1 });
  await idle.registerOk({ token: { group: 'Idle' } });
  await addApp('idleapp', `http://127.0.0.1:${backend.port}/`, ['--group', 'Idle']);
  const t2 = await testJson('idleapp');
  assert.equal(t2.r.code, 1, show(t2.r));
  const cn2 = check(t2.report, 'connectors');
  assert.equal(cn2.ok, false);
  assert.equal(cn2.detail, `no live connector in group Idle (1 registered, inactive: ${idle.id})`);
  assert.match(cn2.hint, new RegExp(`start portico-connector on the host of ${idle.id}`));
});

test('an external host no certificate covers fails the certificate check', async () => {
  await addApp('elsewhere', `http://127.0.0.1:${backend.port}/`, ['--external-url', 'https://portal.example.test/']);
  const { r, report } = await testJson('elsewhere');
  assert.equal(r.code, 1, show(r));
  const cert = check(report, 'certificate');
  assert.equal(cert.ok, false);
  assert.equal(cert.detail, 'no certificate of the edge covers portal.example.test');
  assert.match(cert.hint, /^add a certificate whose subjectAltName names portal\.example\.test \(`portico cert add --cert FILE --key FILE`\), or publish the app under the default domain \(https:\/\/elsewhere\.apps\.localhost\/\)$/);
  // The rest still ran: the backend is fine.
  assert.ok(probes(report).every((p) => p.ok), JSON.stringify(probes(report)));
});

/** One request to the admin API over its unix socket; resolves {status, headers, json}. */
function admin(method, path, { body, signal } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath: edge.socket, method, path, signal,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('admin API: 200 with the report, 404 unknown app or action, 405 other methods, 400 a body', async () => {
  const ok = await admin('POST', '/v1/apps/healthy/test');
  assert.equal(ok.status, 200);
  assert.equal(ok.json.ok, true);
  assert.equal(ok.json.app, 'healthy');
  const empty = await admin('POST', '/v1/apps/healthy/test', { body: '{}' });
  assert.equal(empty.status, 200);

  const missing = await admin('POST', '/v1/apps/nosuchapp/test');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { error: 'not_found', message: 'no app named "nosuchapp"' });
  const action = await admin('POST', '/v1/apps/healthy/frobnicate');
  assert.equal(action.status, 404);
  const get = await admin('GET', '/v1/apps/healthy/test');
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  const body = await admin('POST', '/v1/apps/healthy/test', { body: '{"deep":true}' });
  assert.equal(body.status, 400);
  assert.match(body.json.message, /^body: expected none/);

  // Pipelined on one connection: the request behind a test waits for the test's answer.
  const raw = await new Promise((resolve, reject) => {
    const sock = net.createConnection({ path: edge.socket });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (data += d));
    sock.on('end', () => resolve(data));
    sock.on('error', reject);
    sock.write('POST /v1/apps/healthy/test HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n' +
      'GET /v1/status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n');
  });
  const first = raw.indexOf('"app":"healthy"');
  const second = raw.indexOf('"uptime_s"');
  assert.ok(first > 0 && second > first, `answers in order:\n${raw}`);
  assert.equal(raw.match(/^HTTP\/1\.1 200 /gm).length, 2, raw);

  // The CLI: an unknown app is the API's message and exit 1; a missing NAME is a usage error.
  const r = await edge.cli(['app', 'test', 'nosuchapp']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /^portico: no app named "nosuchapp"$/m);
  const u = await edge.cli(['app', 'test']);
  assert.equal(u.code, 2, show(u));
  assert.match(u.stderr, /app test needs NAME/);
});

test('a client that leaves while the probes run: the test is dropped, the edge carries on', async () => {
  // A backend that accepts and never answers keeps the probes busy for their whole budget.
  const hang = http.createServer(() => {});
  const port = await listen(hang);
  try {
    await addApp('hanging', `http://127.0.0.1:${port}/`);
    const ac = new AbortController();
    const pending = admin('POST', '/v1/apps/hanging/test', { signal: ac.signal });
    await new Promise((res) => setTimeout(res, 300));
    ac.abort();
    await assert.rejects(pending);
    // The edge still answers on new connections, and nothing of the dropped test comes back.
    const ok = await admin('POST', '/v1/apps/healthy/test');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.ok, true);
    assert.equal(edge.proc.lines.filter((l) => l.event === 'app_test_done' && l.app === 'hanging').length, 0);
  } finally {
    hang.closeAllConnections();
    await close(hang);
  }
});
