// SPDX-License-Identifier: MIT
// connector.json's backend_ca_file (docs/connector.md, "run" and the key table): https
// backends whose certificates come from a private CA. One edge; connector "pca" (group
// "Private CA") trusts the private CA through backend_ca_file, connector "plain" (Default)
// has no such key and trusts the system CAs only. Test backends on loopback present a
// certificate from the private CA for localhost, or one for another name. Requests through
// the edge and `portico app test` probes must agree: both use the connector's one backend
// TLS configuration. A backend_ca_file that cannot be used stops `run` with a message that
// names the key and the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Connector, cleanup, sanitizerReports, makeCerts, tempDir, run, bin, cleanEnv, show,
} from './lib/harness.mjs';
import { TestBackend } from './lib/backend.mjs';
import { startSite, addApp, addGroup, appHost, REQUEST_ID_RE } from './lib/publish.mjs';

const backends = [];

after(async () => {
  try {
    await cleanup();
  } finally {
    for (const x of backends) await x.stop().catch(() => {});
  }
});

/** `portico --json app test NAME`: the report (exit status in .code). */
async function appTest(edge, name) {
  const r = await edge.cli(['--json', 'app', 'test', name], { timeoutMs: 20000 });
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch (e) {
    throw new Error(`app test --json printed no JSON (${e.message}):\n${show(r)}`);
  }
  return { code: r.code, report };
}

const probesOf = (rep) => rep.checks.filter((c) => c.check === 'probe');

/** A 502 backend_tls page (JSON form); returns its request id. */
function checkBackendTls(r, what) {
  const ctx = `${what}: ${r.status} ${r.text.slice(0, 400)}`;
  assert.equal(r.status, 502, ctx);
  assert.equal(r.json && r.json.error, 'backend_tls', ctx);
  const id = r.headers['x-request-id'];
  assert.match(id || '', REQUEST_ID_RE, ctx);
  return id;
}

test('backend_ca_file: a backend certificate from the configured private CA is accepted (200, app test passes); another name or a connector without the key gives 502 backend_tls; an unusable file stops run', async () => {
  const site = await startSite({ connectors: [{ name: 'plain' }] });
  const { edge, client } = site;
  const plain = site.conns.plain;

  // The private CA and two backend certificates it signed: one for the name the apps use,
  // one for another name.
  const dir = tempDir('bca');
  const priv = makeCerts(join(dir, 'private'), {
    backend: ['DNS:localhost', 'IP:127.0.0.1'],
    other: ['DNS:other.example.test'],
  }, { caName: 'private-ca' });
  const good = await TestBackend.start({ name: 'localhost', tls: priv.backend });
  backends.push(good);
  const misnamed = await TestBackend.start({ name: 'localhost', tls: priv.other });
  backends.push(misnamed);

  await addGroup(edge, 'Private CA');
  const pca = new Connector(edge, 'pca', { extra: { backend_ca_file: priv.ca } });
  await pca.registerOk({ token: { group: 'Private CA' } });
  await pca.startActive(15000);

  // Trusted through backend_ca_file: the request goes through (validate_backend_tls is on by
  // default), and the connector's line says so.
  const ok = await addApp(edge, 'pca-ok', { internal: `https://localhost:${good.port}/`, group: 'Private CA' });
  assert.equal(ok.validate_backend_tls, true, JSON.stringify(ok));
  const r = await client.request(appHost('pca-ok'), '/hello?x=1');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.url, '/hello?x=1');
  assert.equal(r.json.headers.host, `localhost:${good.port}`);
  const okLine = await pca.proc.waitLog((l) => l.event === 'backend_request_done' && l.req === r.headers['x-request-id'], 5000, 'pca: backend_request_done');
  assert.equal(okLine.result, 'ok', okLine._raw);
  assert.equal(okLine.status, 200, okLine._raw);

  // Same CA, certificate for another name: refused before any request is sent.
  await addApp(edge, 'pca-name', { internal: `https://localhost:${misnamed.port}/`, group: 'Private CA' });
  const nameId = checkBackendTls(await client.requestJson(appHost('pca-name'), '/secret'), 'certificate for another name');
  assert.equal(misnamed.requests.length, 0, 'no HTTP request over a certificate for another name');
  const nameLine = await pca.proc.waitLog((l) => l.event === 'backend_request_done' && l.req === nameId, 5000, 'pca: BACKEND_TLS line');
  assert.equal(nameLine.result, 'BACKEND_TLS', nameLine._raw);

  // A connector without backend_ca_file does not trust the private CA.
  const good0 = good.requests.length;
  await addApp(edge, 'plain-ca', { internal: `https://localhost:${good.port}/` });
  const plainId = checkBackendTls(await client.requestJson(appHost('plain-ca'), '/secret'), 'connector without backend_ca_file');
  assert.equal(good.requests.length, good0, 'no HTTP request over an untrusted certificate');
  const plainLine = await plain.proc.waitLog((l) => l.event === 'backend_request_done' && l.req === plainId, 5000, 'plain: BACKEND_TLS line');
  assert.equal(plainLine.result, 'BACKEND_TLS', plainLine._raw);

  // The app test probes with the same trust as the requests.
  const t1 = await appTest(edge, 'pca-ok');
  assert.equal(t1.code, 0, JSON.stringify(t1.report));
  const [p1] = probesOf(t1.report);
  assert.deepEqual(p1.steps.map((s) => [s.step, s.ok]), [['dns', true], ['tcp', true], ['tls', true], ['http', true]], JSON.stringify(p1));
  assert.match(p1.steps[2].detail, /certificate valid/, JSON.stringify(p1));
  assert.equal(p1.steps[3].status, 200, JSON.stringify(p1));

  const t2 = await appTest(edge, 'pca-name');
  assert.equal(t2.code, 1, JSON.stringify(t2.report));
  const [p2] = probesOf(t2.report);
  assert.equal(p2.steps.at(-1).step, 'tls', JSON.stringify(p2));
  assert.equal(p2.steps.at(-1).error, 'name_mismatch', JSON.stringify(p2));

  const t3 = await appTest(edge, 'plain-ca');
  assert.equal(t3.code, 1, JSON.stringify(t3.report));
  const [p3] = probesOf(t3.report);
  assert.equal(p3.steps.at(-1).step, 'tls', JSON.stringify(p3));
  assert.equal(p3.steps.at(-1).error, 'untrusted', JSON.stringify(p3));
  assert.match(p3.hint, /backend_ca_file/, `the hint names the setting: ${p3.hint}`);

  // A backend_ca_file that cannot be used: `run` exits 1 at once, naming the key and the file.
  const missing = join(dir, 'absent.pem');
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  for (const [file, reason] of [[missing, /cannot open .*: No such file or directory/], [garbage, /cannot use .*: cannot parse the trusted CAs/]]) {
    const cfgPath = join(dir, `connector-${file === missing ? 'missing' : 'garbage'}.json`);
    writeFileSync(cfgPath, JSON.stringify({ ...pca.config(), backend_ca_file: file }));
    const res = await run(bin.connector, ['run', '--config', cfgPath], { cwd: dir, env: cleanEnv(), timeoutMs: 10000 });
    assert.equal(res.code, 1, show(res));
    const msg = res.stderr.trim().split('\n').at(-1);
    assert.ok(msg.startsWith(`portico-connector: backend_ca_file: `), show(res));
    assert.ok(msg.includes(file), `the message names the file: ${msg}`);
    assert.match(msg, reason, msg);
  }

  // The running connectors were not disturbed.
  for (const p of [edge.proc, plain.proc, pca.proc]) {
    assert.ok(p.running(), `${p.name} exited: ${JSON.stringify(p.exitInfo)}\n${p.tail()}`);
  }
  const rep = sanitizerReports();
  assert.equal(rep, '', rep);
});
