// SPDX-License-Identifier: MIT
// Registration and the first tunnels (docs/protocol.md §11, §12): a token minted with the CLI
// registers a connector, which then keeps its tunnels up and shows as active; refused tokens
// (wrong, expired, revoked, used up) and an edge whose certificate does not validate make
// `portico-connector register` fail with a clear message and exit 1.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  Edge, Connector, edgeCerts, makeCerts, cleanup, show, run, bin, eventually, tempDir,
  treeText, EDGE_HOST, sleep, cleanEnv, within,
} from './lib/harness.mjs';
import { registerRaw, keyPair } from './lib/fake_connector.mjs';

afterEach(cleanup);

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

test('token -> register -> run: the connector is active with its 2 default tunnels', async () => {
  const edge = await Edge.create();
  await edge.start();
  const conn = new Connector(edge, 'c1'); // tunnels_per_edge left out: the default is 2
  const tok = await edge.mintToken();
  assert.match(tok.token, /^ptk_[A-Za-z0-9_-]{43}$/, 'token text per protocol.md §12.1');
  assert.match(tok.id, /^tok_[0-9a-f]{8}$/);

  const reg = await conn.register(tok.token);
  assert.equal(reg.code, 0, show(reg));
  assert.ok(existsSync(conn.credPath), 'credentials file written');
  assert.equal(statSync(conn.credPath).mode & 0o777, 0o600, 'credentials file mode 0600');
  const cred = conn.credentials;
  assert.equal(cred.version, 1);
  assert.match(cred.connector_id, /^cn_[0-9a-f]{16}$/);
  assert.equal(cred.group, 'Default');
  assert.match(cred.public_key, /^[A-Za-z0-9_-]{43}$/);
  assert.match(cred.secret_key, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(Array.isArray(cred.edges) && cred.edges.includes(`${EDGE_HOST}:${edge.port}`),
    `credentials edges ${JSON.stringify(cred.edges)} include the advertised ${EDGE_HOST}:${edge.port}`);
  const id = cred.connector_id;
  const regLine = await edge.proc.waitLog((l) => l.event === 'connector_registered' && l.connector === id, 3000,
    'connector_registered naming the connector');
  assert.equal(regLine.group, 'Default');

  const p = conn.start();
  const info = await edge.waitActive(id, 2, 10000);
  assert.equal(info.group, 'Default');
  assert.equal(info.hostname, hostname());
  assert.match(info.agent, /^portico-connector\//);
  assert.match(info.first_seen, RFC3339);
  assert.match(info.last_seen, RFC3339);
  assert.ok(Array.isArray(info.remote_addrs) && info.remote_addrs.length >= 1 &&
    info.remote_addrs.every((a) => a.startsWith('127.0.0.1:')), `remote_addrs ${JSON.stringify(info.remote_addrs)}`);

  // Both sides logged both tunnels.
  const ups = await edge.proc.waitCount((l) => l.event === 'tunnel_up' && l.connector === id, 2, 3000, 'edge tunnel_up');
  assert.ok(ups.every((l) => l.group === 'Default'), 'edge tunnel_up carries the group');
  await p.waitCount((l) => l.event === 'tunnel_up', 2, 3000, 'connector tunnel_up');
  assert.equal(p.events('tunnel_up').length, 2, 'exactly 2 tunnels by default');

  // The human table names the connector and its state.
  const human = await edge.cli(['connector', 'list']);
  assert.equal(human.code, 0, show(human));
  assert.match(human.stdout, new RegExp(id));
  assert.match(human.stdout, /active/);

  // `connector show` lists the live tunnels.
  const one = await edge.cliJson(['connector', 'show', id]);
  assert.equal(one.id, id);
  assert.ok(Array.isArray(one.tunnels) && one.tunnels.length === 2, `show: ${JSON.stringify(one)}`);
  for (const t of one.tunnels) {
    assert.match(t.id, /^[A-Za-z0-9_.-]{1,64}$/);
    assert.ok(t.remote_addr.startsWith('127.0.0.1:'));
    assert.match(t.since, RFC3339);
    assert.equal(t.streams, 0);
  }

  // The token was used up by the registration.
  const toks = await edge.cliJson(['token', 'list']);
  const t = toks.tokens.find((x) => x.id === tok.id);
  assert.equal(t.state, 'used', JSON.stringify(t));
  assert.equal(t.uses_left, 0);

  // The token text is in no log and no state file; the secret key is in no log.
  for (const pr of [edge.proc, p]) {
    const text = pr.lines.map((l) => l._raw).join('\n') + pr.stderr;
    assert.ok(!text.includes(tok.token), `${pr.name} logged the token`);
    assert.ok(!text.includes(cred.secret_key), `${pr.name} logged the secret key`);
  }
  assert.ok(!reg.stdout.includes(tok.token) && !reg.stderr.includes(tok.token), 'register printed the token');
  assert.ok(!treeText(edge.stateDir).includes(tok.token), 'the token text is stored in the state dir');

  // `portico-connector status` reads the status file the running connector keeps.
  const tunnelIds = one.tunnels.map((x) => x.id);
  const st = await eventually(async () => {
    const r = await run(bin.connector, ['status', '--config', conn.configPath]);
    if (r.code === 0 && tunnelIds.every((x) => r.stdout.includes(x))) return r;
    throw new Error(show(r));
  }, 5000, 200, 'connector status shows both tunnel ids');
  assert.match(st.stdout, new RegExp(`${EDGE_HOST}:${edge.port}|127\\.0\\.0\\.1:${edge.port}`));
});

test('register --ca-file is remembered: run trusts the edge with no ca_file in connector.json', async () => {
  const edge = await Edge.create();
  await edge.start();
  const conn = new Connector(edge, 'c-ca', { caInConfig: false });
  const id = await conn.registerOk();
  assert.equal(conn.credentials.ca_file, edge.certs.ca, 'credentials.ca_file is the --ca-file given (§12.5)');
  conn.start();
  await edge.waitActive(id, 2);
});

test('register --token-file; status --json and when stopped; run refuses a credential file others can read', async () => {
  const edge = await Edge.create();
  await edge.start();
  const conn = new Connector(edge, 'c-tf');
  const tok = await edge.mintToken();
  const tokenFile = join(conn.dir, 'token.txt');
  writeFileSync(tokenFile, `${tok.token}\n`, { mode: 0o600 });
  const reg = await run(bin.connector, ['register', '--edge', edge.url, '--token-file', tokenFile, '--config', conn.configPath,
    '--credentials', conn.credPath, '--ca-file', edge.certs.ca], { cwd: conn.dir, env: cleanEnv() });
  assert.equal(reg.code, 0, show(reg));
  const id = conn.id;
  const p = conn.start();
  await edge.waitActive(id, 2);
  const st = await eventually(async () => {
    const r = await run(bin.connector, ['status', '--config', conn.configPath, '--json']);
    const j = r.code === 0 ? JSON.parse(r.stdout) : null;
    if (j && JSON.stringify(j).split('"up"').length - 1 >= 2) return j;
    throw new Error(show(r));
  }, 5000, 200, 'status --json with 2 tunnels up');
  assert.ok(JSON.stringify(st).includes(id), `status --json names the connector: ${JSON.stringify(st)}`);
  assert.ok(JSON.stringify(st).includes(String(p.pid)), 'and its pid');
  const ex = await p.stop();
  assert.equal(ex.code, 0);
  const gone = await run(bin.connector, ['status', '--config', conn.configPath]);
  assert.equal(gone.code, 1, `status with no connector running: ${show(gone)}`);

  // A credential file readable by others is refused (protocol.md §12.5, docs/connector.md).
  chmodSync(conn.credPath, 0o644);
  const p2 = conn.start();
  const ex2 = await within(p2.exited, 5000, 'run kept going with a 0644 credential file');
  assert.equal(ex2.code, 1, p2.tail());
  assert.match(p2.stderr + p2.lines.map((l) => l._raw).join('\n'), /credentials\.json/, 'the message names the file');
  assert.equal(edge.connectorEvents('tunnel_up', id).length, 2, 'no new tunnel');
});

test('refused tokens: wrong, expired, revoked and used up; each exits 1 with a clear message', async () => {
  const edge = await Edge.create();
  await edge.start();

  const expired = await edge.mintToken({ expires: '1s' });
  const revoked = await edge.mintToken();
  const once = await edge.mintToken({ uses: 1 });
  const wrong = `ptk_${randomBytes(32).toString('base64url')}`;

  const del = await edge.cli(['token', 'delete', revoked.id]);
  assert.equal(del.code, 0, show(del));
  const first = new Connector(edge, 'c-once');
  const ok = await first.register(once.token);
  assert.equal(ok.code, 0, `first use of a one-use token: ${show(ok)}`);

  // Wait until the 1 s token has certainly expired (the edge's clock is this machine's).
  const exp = Date.parse(expired.expires_at);
  assert.ok(Number.isFinite(exp), `expires_at ${expired.expires_at}`);
  assert.ok(exp - Date.now() <= 1500, `--expires 1s gave expires_at ${expired.expires_at}`);
  await sleep(Math.max(0, exp - Date.now()) + 200);

  const cases = [
    { what: 'wrong', token: wrong, re: /unknown|invalid|not valid|wrong|not recogni[sz]ed/i },
    { what: 'expired', token: expired.token, re: /expired/i },
    { what: 'revoked', token: revoked.token, re: /revoked|unknown|invalid|not valid/i },
    { what: 'used up', token: once.token, re: /used|no uses left/i },
  ];
  const mark = edge.proc.mark();
  for (const c of cases) {
    const conn = new Connector(edge, `c-${c.what.replace(' ', '')}`);
    const r = await conn.register(c.token);
    assert.equal(r.code, 1, `${c.what} token: ${show(r)}`);
    const msg = r.stderr + r.stdout;
    assert.match(msg, c.re, `${c.what} token: message should say why: ${show(r)}`);
    assert.ok(!msg.includes(c.token), `${c.what} token: the message repeats the token`);
    assert.ok(!existsSync(conn.credPath), `${c.what} token: no credentials file may be written`);
  }
  const refused = await edge.proc.waitCount((l) => l.event === 'registration_refused', 4, 3000,
    'registration_refused', mark);
  for (const l of refused) {
    assert.ok(l.reason, `registration_refused has a reason: ${l._raw}`);
    for (const c of cases) assert.ok(!l._raw.includes(c.token), 'the edge logged a token');
  }
  // Nothing was registered by the refused attempts: only the one good registration.
  const list = await edge.cliJson(['connector', 'list']);
  assert.equal(list.connectors.length, 1, JSON.stringify(list));
  assert.equal(list.connectors[0].id, first.id);
});

test('POST /.portico/v1/register answers bad requests per protocol.md §12.3 and keeps the token', async () => {
  const edge = await Edge.create();
  await edge.start();
  const tok = await edge.mintToken();
  const pk = keyPair().publicB64;
  const good = { token: tok.token, public_key: pk, hostname: 'h', agent: 'itest/1' };
  const cases = [
    ['not JSON', 'this is not json', 400, 'malformed'],
    ['a missing member', { token: tok.token, hostname: 'h', agent: 'itest/1' }, 400, 'malformed'],
    ['a member of the wrong type', { ...good, hostname: 42 }, 400, 'malformed'],
    ['a padded public key', { ...good, public_key: `${pk}=` }, 400, 'malformed'],
    ['a short public key', { ...good, public_key: pk.slice(0, 40) }, 400, 'malformed'],
    ['a duplicate member', `{"token":"${tok.token}","token":"${tok.token}","public_key":"${pk}","hostname":"h","agent":"a"}`, 400, 'malformed'],
    ['a body over 8192 bytes', { ...good, hostname: 'x'.repeat(9000) }, 413, 'too_large'],
  ];
  for (const [what, body, status, code] of cases) {
    const r = await registerRaw(edge.port, edge.certs.ca, body);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, code, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body.message, 'string');
    assert.ok(!JSON.stringify(r.body).includes(tok.token), `${what}: the answer repeats the token`);
    assert.match(r.headers['cache-control'] || '', /no-store/, `${what}: Cache-Control: no-store`);
  }
  const ct = await registerRaw(edge.port, edge.certs.ca, good, { contentType: 'text/plain' });
  assert.equal(ct.status, 415, JSON.stringify(ct.body));
  assert.equal(ct.body.error, 'unsupported_media_type');
  const get = await registerRaw(edge.port, edge.certs.ca, '', { method: 'GET' });
  assert.equal(get.status, 405, JSON.stringify(get.body));
  assert.equal(get.headers.allow, 'POST');
  // None of these spent the token; a good request still works, once.
  assert.equal((await edge.cliJson(['token', 'list'])).tokens.find((t) => t.id === tok.id).state, 'active');
  const ok = await registerRaw(edge.port, edge.certs.ca, good);
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.match(ok.body.connector_id, /^cn_[0-9a-f]{16}$/);
  assert.equal(ok.body.group, 'Default');
  assert.deepEqual(ok.body.edges, [`${EDGE_HOST}:${edge.port}`]);
  assert.match(ok.headers['cache-control'] || '', /no-store/);
  const again = await registerRaw(edge.port, edge.certs.ca, good);
  assert.equal(again.status, 410);
  assert.equal(again.body.error, 'token_used');
});

test('register refuses an edge whose certificate does not validate (other CA; wrong name)', async () => {
  const dir = tempDir('badcert');
  const good = edgeCerts(join(dir, 'good'), 'ca');
  const other = edgeCerts(join(dir, 'other'), 'otherca');
  const wrongName = makeCerts(join(dir, 'wrongname'), { edge: ['DNS:not-the-edge.test'] }, { caName: 'ca2' });

  for (const [what, certs] of [['another CA', other], ['a name that is not the edge', wrongName]]) {
    const edge = await Edge.create({ certs });
    await edge.start();
    const tok = await edge.mintToken();
    // The connector trusts the CA `good` (for the wrong name: the CA that signed the cert).
    const ca = certs === wrongName ? wrongName.ca : good.ca;
    const conn = new Connector(edge, 'c-bad', { caFile: ca });
    const r = await conn.register(tok.token);
    assert.equal(r.code, 1, `${what}: ${show(r)}`);
    assert.match(r.stderr + r.stdout, /certificate|verif|trust|TLS/i, `${what}: a clear TLS message: ${show(r)}`);
    assert.ok(!existsSync(conn.credPath), `${what}: no credentials file`);
    // The token was not consumed.
    const toks = await edge.cliJson(['token', 'list']);
    assert.equal(toks.tokens.find((x) => x.id === tok.id).state, 'active', `${what}: token still active`);
    await edge.stop();
  }
});

test('run against an edge with an untrusted certificate: TLS failure logged, no handshake ever', async () => {
  const dir = tempDir('badrun');
  const good = edgeCerts(join(dir, 'good'), 'ca');
  const other = edgeCerts(join(dir, 'other'), 'otherca');
  const edge = await Edge.create({ certs: good });
  await edge.start();
  const conn = new Connector(edge, 'c-run');
  const id = await conn.registerOk();
  await edge.stop();

  // Same edge (port, state), now with a certificate from a CA the connector does not trust.
  edge.certs = other;
  edge.writeConfig();
  await edge.start();
  const p = conn.start();
  // At least two attempts (the first and a retry) fail in TLS.
  const tlsFail = (l) => (l.event === 'tunnel_down' || l.level === 'warn' || l.level === 'error') &&
    /tls|certif|verif/i.test(l._raw);
  await p.waitCount(tlsFail, 4, 8000, 'connector lines naming the TLS failure (both tunnels, first attempt and a retry)');
  await edge.proc.waitLog('tls_handshake_failed', 3000);
  assert.equal(p.events('tunnel_up').length, 0, 'connector: no tunnel_up');
  assert.equal(edge.proc.events('tunnel_up').length, 0, 'edge: no tunnel_up');
  assert.equal(edge.proc.events('tunnel_handshake_failed').length, 0, 'no protocol handshake was even attempted');
  const info = await edge.connectorInfo(id);
  assert.equal(info.status, 'inactive');
});
