// SPDX-License-Identifier: MIT
// The `portico` admin CLI against a real edge: groups, tokens and apps round trips, --json
// output, exit statuses (0 ok, 1 refused or unreachable, 2 usage), the admin socket and the
// bearer-token TCP listener, and the admin_change audit lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Edge, cleanup, show, run, bin, freePort, tempDir, cleanEnv } from './lib/harness.mjs';

let edge;
before(async () => {
  const dir = tempDir('cli');
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, 'itest-admin-token-0123456789abcdef\n', { mode: 0o600 });
  edge = await Edge.create({ dir, adminTcp: { port: await freePort(), tokenFile } });
  await edge.start();
});
after(cleanup);

async function ok(args) {
  const r = await edge.cli(args);
  assert.equal(r.code, 0, show(r));
  return r;
}
async function fails(args, re, code = 1) {
  const r = await edge.cli(args);
  assert.equal(r.code, code, show(r));
  if (re) assert.match(r.stderr, re, `stderr should explain: ${show(r)}`);
  return r;
}

test('group add/list/show/delete; Default cannot be deleted; a group in use cannot be deleted', async () => {
  const list0 = await edge.cliJson(['group', 'list']);
  assert.ok(list0.groups.some((g) => g.name === 'Default'), 'Default exists from the first start');

  const m = edge.proc.mark();
  await ok(['group', 'add', 'Eng Team-1.x']);
  const human = await ok(['group', 'list']);
  assert.match(human.stdout, /Default/);
  assert.match(human.stdout, /Eng Team-1\.x/);
  const g = await edge.cliJson(['group', 'show', 'Eng Team-1.x']);
  assert.equal(g.name, 'Eng Team-1.x');

  // The change is audited with the caller's uid (SO_PEERCRED).
  const audit = await edge.proc.waitLog((l) => l.event === 'admin_change' && l.method === 'POST', 2000, 'admin_change', m);
  assert.equal(audit.admin_uid, process.getuid());
  assert.match(audit.path, /^\/v1\/groups/);
  assert.equal(audit.status, 201);

  await fails(['group', 'add', 'Eng Team-1.x'], /exists|taken|already/i);
  await fails(['group', 'add', 'bad/name'], /name/i);
  await fails(['group', 'add', 'x'.repeat(65)], /name/i);
  await fails(['group', 'delete', 'Default'], /Default/);
  await fails(['group', 'show', 'Nope'], /not found|no such|unknown|Nope/i);

  await ok(['app', 'add', 'grp-app', '--internal-url', 'http://10.0.0.9/', '--group', 'Eng Team-1.x']);
  await fails(['group', 'delete', 'Eng Team-1.x'], /in use|used|app/i);
  await ok(['app', 'delete', 'grp-app']);
  await ok(['group', 'delete', 'Eng Team-1.x']);
  const list1 = await edge.cliJson(['group', 'list']);
  assert.ok(!list1.groups.some((g2) => g2.name === 'Eng Team-1.x'), 'deleted');
  await fails(['app', 'add', 'orphan', '--internal-url', 'http://10.0.0.9/', '--group', 'Eng Team-1.x'], /group/i);
});

test('token create shows the token once; token list never shows it; token delete revokes', async () => {
  const human = await ok(['token', 'create', '--group', 'Default', '--expires', '1h', '--uses', '3']);
  const m = /ptk_[A-Za-z0-9_-]{43}/.exec(human.stdout);
  assert.ok(m, `the human output shows the token: ${show(human)}`);
  const text = m[0];
  const viaJson = await edge.mintToken({ uses: 2 });

  const listH = await ok(['token', 'list']);
  const listJ = await ok(['--json', 'token', 'list']);
  for (const r of [listH, listJ]) {
    assert.ok(!r.stdout.includes(text) && !r.stdout.includes(viaJson.token), 'token list shows a token text');
    assert.ok(!/ptk_/.test(r.stdout), 'token list shows something that looks like a token');
  }
  const tokens = JSON.parse(listJ.stdout).tokens;
  const t = tokens.find((x) => x.id === viaJson.id);
  assert.equal(t.state, 'active');
  assert.equal(t.max_uses, 2);
  assert.equal(t.uses_left, 2);
  assert.equal(t.group, 'Default');
  for (const x of tokens) {
    assert.equal(x.hash, undefined, 'the API does not hand out token hashes');
    assert.equal(x.token, undefined);
  }
  const exp = Date.parse(tokens.find((x) => x.max_uses === 3).expires_at) - Date.now();
  assert.ok(exp > 3500e3 && exp <= 3600e3, `--expires 1h: expires in ${exp} ms`);

  await ok(['token', 'delete', viaJson.id]);
  const after2 = await edge.cliJson(['token', 'list']);
  assert.equal(after2.tokens.find((x) => x.id === viaJson.id).state, 'revoked');
  await fails(['token', 'delete', 'tok_00000000'], /not found|no such|unknown|tok_00000000/i);
  await fails(['token', 'create', '--group', 'NoSuchGroup'], /group/i);
  // The edge never logs a token text.
  const log = edge.proc.lines.map((l) => l._raw).join('\n');
  assert.ok(!log.includes(text) && !log.includes(viaJson.token), 'the edge logged a token');
});

test('app add/list/show/set/delete round trip with the documented defaults', async () => {
  await ok(['app', 'add', 'wiki', '--internal-url', 'http://10.1.2.3:8080/wiki/', '--pre-auth', 'passthrough']);
  const list = await edge.cliJson(['app', 'list']);
  assert.ok(Array.isArray(list.apps) && list.apps.some((a) => a.name === 'wiki'), JSON.stringify(list));
  const human = await ok(['app', 'list']);
  assert.match(human.stdout, /wiki/);

  const a = await edge.cliJson(['app', 'show', 'wiki']);
  const expect = {
    name: 'wiki', internal_url: 'http://10.1.2.3:8080/wiki/', external_url: 'https://wiki.apps.localhost/',
    connector_group: 'Default', pre_auth: 'passthrough', maintenance_mode: false, backend_timeout: 'default',
    http_only_cookie: true, secure_cookie: true, persistent_cookie: false, translate_headers: true,
    translate_body: false, validate_backend_tls: true,
  };
  for (const [k, v] of Object.entries(expect)) assert.deepEqual(a[k], v, `app.${k}`);
  assert.deepEqual(a.assignment, { users: [], groups: [] }, 'assignment starts empty');

  await ok(['app', 'set', 'wiki', 'maintenance_mode=true', 'backend_timeout=long', 'translate_body=true']);
  const b = await edge.cliJson(['app', 'show', 'wiki']);
  assert.equal(b.maintenance_mode, true);
  assert.equal(b.backend_timeout, 'long');
  assert.equal(b.translate_body, true);
  assert.equal(b.internal_url, a.internal_url, 'other settings unchanged');

  await fails(['app', 'set', 'wiki', 'no_such_setting=1'], /no_such_setting/);
  await fails(['app', 'set', 'wiki', 'pre_auth=magic'], /pre_auth/);
  await fails(['app', 'set', 'wiki', 'backend_timeout=forever'], /backend_timeout/);
  await fails(['app', 'add', 'wiki', '--internal-url', 'http://10.1.2.3/'], /exists|taken|already/i);
  await fails(['app', 'add', 'wiki2', '--internal-url', 'http://10.1.2.3/', '--external-url', 'https://wiki.apps.localhost/'],
    /external|exists|taken|already/i);
  await fails(['app', 'add', 'ftp', '--internal-url', 'ftp://10.1.2.3/'], /internal_url|internal-url/i);
  await fails(['app', 'add', 'nohost', '--internal-url', 'http:///path'], /internal_url|internal-url/i);

  await ok(['app', 'add', 'docs', '--internal-url', 'https://10.1.2.4/', '--external-url', 'https://portal.example.org/docs/',
    '--set', 'validate_backend_tls=false']);
  const d = await edge.cliJson(['app', 'show', 'docs']);
  assert.equal(d.external_url, 'https://portal.example.org/docs/');
  assert.equal(d.validate_backend_tls, false);
  assert.equal(d.pre_auth, 'oidc', 'pre_auth defaults to oidc');

  await ok(['app', 'delete', 'wiki']);
  await ok(['app', 'delete', 'docs']);
  await fails(['app', 'show', 'wiki'], /not found|no such|unknown|wiki/i);
  const empty = await edge.cliJson(['app', 'list']);
  assert.equal(empty.apps.length, 0);
});

test('--json prints valid JSON for every listing; status answers', async () => {
  for (const args of [['group', 'list'], ['token', 'list'], ['connector', 'list'], ['app', 'list'], ['cert', 'list'], ['status'], ['group', 'show', 'Default']]) {
    const r = await ok(['--json', ...args]);
    assert.doesNotThrow(() => JSON.parse(r.stdout), `${args.join(' ')} --json: ${r.stdout}`);
  }
  const st = await edge.cliJson(['status']);
  assert.equal(typeof st.version, 'string');
  assert.equal(typeof st.uptime_s, 'number');
});

test('usage errors exit 2', async () => {
  for (const args of [[], ['frobnicate', 'list'], ['group'], ['group', 'frobnicate'], ['group', 'add'],
    ['app', 'add'], ['app', 'add', 'x'], ['token', 'delete'], ['--no-such-option', 'group', 'list'],
    ['connector', 'move', 'cn_0000000000000000']]) {
    const r = await edge.cli(args);
    assert.equal(r.code, 2, `portico ${args.join(' ')}: ${show(r)}`);
    assert.ok(r.stderr.length > 0, `portico ${args.join(' ')}: a usage text on stderr`);
  }
  const help = await run(bin.cli, ['--help']);
  assert.equal(help.code, 0, show(help));
  assert.match(help.stdout, /group/);
  const ghelp = await edge.cli(['group', '--help']);
  assert.equal(ghelp.code, 0, show(ghelp));
  assert.match(ghelp.stdout, /group add/);
  const ver = await run(bin.cli, ['--version']);
  assert.equal(ver.code, 0, show(ver));
  assert.match(ver.stdout, /^portico \d+\.\d+\.\d+/);
});

test('an unreachable admin socket gives a clear message and exit 1; PORTICO_ADMIN_SOCKET is honoured', async () => {
  const missing = join(edge.dir, 'no-such-dir', 'admin.sock');
  const r = await run(bin.cli, ['--socket', missing, 'group', 'list']);
  assert.equal(r.code, 1, show(r));
  assert.ok(r.stderr.includes(missing), `the message names the socket: ${show(r)}`);
  // A path that exists but where nobody listens.
  const stale = join(edge.dir, 'edge.json');
  const r2 = await run(bin.cli, ['--socket', stale, 'group', 'list']);
  assert.equal(r2.code, 1, show(r2));
  assert.ok(r2.stderr.includes(stale), show(r2));
  // The environment variable replaces the default path.
  const r3 = await run(bin.cli, ['group', 'list'], { env: cleanEnv({ PORTICO_ADMIN_SOCKET: edge.socket }) });
  assert.equal(r3.code, 0, show(r3));
  assert.match(r3.stdout, /Default/);
});

test('admin over loopback TCP needs the bearer token', async () => {
  const url = `http://127.0.0.1:${edge.adminTcp.port}`;
  const good = await run(bin.cli, ['--url', url, '--token-file', edge.adminTcp.tokenFile, '--json', 'group', 'list']);
  assert.equal(good.code, 0, show(good));
  assert.ok(JSON.parse(good.stdout).groups.some((g) => g.name === 'Default'));
  const wrongFile = join(edge.dir, 'wrong.token');
  writeFileSync(wrongFile, 'itest-admin-token-0123456789abcdeX\n', { mode: 0o600 });
  const bad = await run(bin.cli, ['--url', url, '--token-file', wrongFile, 'group', 'list']);
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stderr, /401|unauthori[sz]ed|token/i, show(bad));
  // Without a token file, --url is a usage error.
  const none = await run(bin.cli, ['--url', url, 'group', 'list']);
  assert.equal(none.code, 2, show(none));
});
