// SPDX-License-Identifier: MIT
// Edge restarts: connectors come back within 2 s of the edge accepting again; the state
// directory (groups, tokens, connectors, apps) survives a restart; a corrupt state file makes
// the edge refuse to start with a message naming the file, and the file is left untouched;
// `portico-edge --check` validates a configuration.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  Edge, Connector, Proc, cleanup, cleanEnv, eventually, show, run, bin, treeHashes, treeModes, treeText,
  deadline, sleep,
} from './lib/harness.mjs';

afterEach(cleanup);

const DOWNTIME_MS = 3000;

const tsOf = (l) => {
  const t = Date.parse(l.ts);
  return Number.isFinite(t) ? t : l._at;
};

test('edge restarted (SIGTERM, down 3 s, same state dir): connectors are back within 2 s of it accepting', async () => {
  const edge = await Edge.create();
  await edge.start();
  const a = new Connector(edge, 'a');
  const b = new Connector(edge, 'b');
  await Promise.all([a.registerOk(), b.registerOk()]);
  a.start();
  b.start();
  await Promise.all([edge.waitActive(a.id, 2), edge.waitActive(b.id, 2)]);

  const am = a.proc.mark();
  const old = edge.proc;
  const ex = await edge.stop('SIGTERM', 8000);
  assert.equal(ex.code, 0, `edge exit after SIGTERM: ${JSON.stringify(ex)}\n${old.tail()}`);
  assert.ok(old.events('edge_stopping').length >= 1, 'edge_stopping logged');
  // The draining edge said goodbye with GOAWAY(NO_ERROR) on a's two tunnels (the ids the edge
  // logged in tunnel_up; later connection failures are other lines).
  const ids = edge.connectorEvents('tunnel_up', a.id).map((l) => l.tunnel);
  assert.equal(ids.length, 2, 'edge tunnel_up lines carry the tunnel id');
  const downs = await a.proc.waitCount((l) => l.event === 'tunnel_down' && ids.some((t) => l._raw.includes(t)), 2, 2000,
    'connector tunnel_down of its two tunnels', am);
  for (const l of downs) assert.match(l._raw, /NO_ERROR|drain|goaway|going away/i, `graceful: ${l._raw}`);

  // A restart is not instant (a drain of streams in flight, a slow start): the edge stays down
  // for DOWNTIME_MS, long enough for the connectors' retries to back off. The requirement is
  // about the time after the edge accepts again, whatever the downtime was.
  await sleep(DOWNTIME_MS);
  const p = await edge.start({ wait: false });
  const ready = await p.waitLog((l) => l.event === 'listener_started' || l.event === 'edge_started', 10000, 'listener_started');
  const up = await p.waitCount((l) => l.event === 'tunnel_up', 4, 15000, 'tunnel_up of both connectors (4 tunnels)');
  const dt = Math.max(...up.slice(0, 4).map(tsOf)) - tsOf(ready);
  assert.ok(dt < 2000, `all 4 tunnels were up ${dt} ms after the edge started accepting (limit 2000 ms)\n` +
    `connector a:\n${a.proc.tail(15)}\nconnector b:\n${b.proc.tail(15)}`);
  const ai = await edge.waitActive(a.id, 2, 1000);
  const bi = await edge.waitActive(b.id, 2, 1000);
  assert.equal(ai.status, 'active');
  assert.equal(bi.status, 'active');
});

/** Everything the CLI shows about the state, without the live parts. */
async function snapshot(edge, appName) {
  const groups = (await edge.cliJson(['group', 'list'])).groups.map((g) => ({ name: g.name, created_at: g.created_at })).sort((x, y) => x.name.localeCompare(y.name));
  const tokens = (await edge.cliJson(['token', 'list'])).tokens.sort((x, y) => x.id.localeCompare(y.id));
  const connectors = (await edge.cliJson(['connector', 'list'])).connectors
    .map((c) => ({ id: c.id, group: c.group, hostname: c.hostname, agent: c.agent, first_seen: c.first_seen }))
    .sort((x, y) => x.id.localeCompare(y.id));
  const app = await edge.cliJson(['app', 'show', appName]);
  return { groups, tokens, connectors, app };
}

test('the state directory survives a restart; a corrupt state file stops the edge and is left as it was', async () => {
  const edge = await Edge.create();
  await edge.start();
  const must = async (args) => {
    const r = await edge.cli(args);
    assert.equal(r.code, 0, show(r));
    return r;
  };
  await must(['group', 'add', 'Eng']);
  const tok = await edge.mintToken({ group: 'Eng', uses: 3 });
  const tok2 = await edge.mintToken({ group: 'Default', expires: '2h' });
  await must(['token', 'delete', tok2.id]);
  await must(['app', 'add', 'wiki', '--internal-url', 'http://127.0.0.1:8080/wiki/', '--group', 'Eng', '--pre-auth', 'passthrough']);
  await must(['app', 'set', 'wiki', 'maintenance_mode=true']);
  const conn = new Connector(edge, 'c');
  const r = await conn.register(tok.token);
  assert.equal(r.code, 0, show(r));

  const before = await snapshot(edge, 'wiki');
  assert.ok(before.groups.some((g) => g.name === 'Eng'));
  assert.equal(before.tokens.find((t) => t.id === tok.id).uses_left, 2);
  assert.equal(before.tokens.find((t) => t.id === tok2.id).state, 'revoked');
  assert.equal(before.connectors.length, 1);
  assert.equal(before.connectors[0].group, 'Eng');
  assert.equal(before.app.maintenance_mode, true);

  const ex = await edge.stop();
  assert.equal(ex.code, 0, `edge exit: ${JSON.stringify(ex)}`);

  // What is on disk: one 0600 JSON file per record, no token text, no temporary files.
  const modes = treeModes(edge.stateDir);
  const files = Object.keys(modes);
  for (const kind of ['groups', 'tokens', 'connectors', 'apps']) {
    assert.ok(files.some((f) => f.startsWith(`${kind}/`)), `${kind}/ has files: ${files.join(' ')}`);
  }
  for (const [f, m] of Object.entries(modes)) {
    assert.equal(m, 0o600, `${f}: mode ${m.toString(8)}, expected 600`);
    assert.match(f, /\.json$/, `${f}: a leftover that is not a record`);
  }
  const disk = treeText(edge.stateDir);
  assert.ok(!disk.includes(tok.token) && !disk.includes(tok2.token), 'a token text is stored');

  await edge.start();
  const after = await snapshot(edge, 'wiki');
  assert.deepEqual(after, before, 'the state after the restart is the state before it');
  const ex2 = await edge.stop();
  assert.equal(ex2.code, 0);

  // Corrupt files, one at a time: the edge refuses to start and names the file.
  const find = (kind, needle) => {
    const dir = join(edge.stateDir, kind);
    const f = readdirSync(dir).find((n) => readFileSync(join(dir, n), 'utf8').includes(needle));
    assert.ok(f, `no ${kind} file contains ${needle}`);
    return `${kind}/${f}`;
  };
  const corruptions = [
    [find('apps', 'wiki'), (s) => s.slice(0, Math.floor(s.length / 2))],
    [find('groups', 'Eng'), () => '[1, 2, 3]\n'],
    [find('connectors', before.connectors[0].id), () => '{}\n'],
    [find('tokens', tok.id), () => ''],
  ];
  for (const [rel, corrupt] of corruptions) {
    const path = join(edge.stateDir, rel);
    const good = readFileSync(path);
    writeFileSync(path, corrupt(good.toString('utf8')));
    const hashes = treeHashes(edge.stateDir);
    const p = await edge.start({ wait: false });
    const res = await Promise.race([p.exited, deadline(8000).then(() => null)]);
    assert.ok(res !== null, `${rel}: the edge kept running with a corrupt state file\n${p.tail()}`);
    assert.equal(res.code, 1, `${rel}: exit status (docs/edge.md: 1)`);
    const out = p.lines.map((l) => l._raw).join('\n') + p.stderr;
    assert.ok(out.includes(rel), `${rel}: the message must name the file:\n${out.slice(-2000)}`);
    assert.equal(p.events('edge_started').length, 0, `${rel}: edge_started logged`);
    assert.deepEqual(treeHashes(edge.stateDir), hashes, `${rel}: the state directory was changed`);
    writeFileSync(path, good);
  }
  // Repaired, it starts again with the same state.
  await edge.start();
  assert.deepEqual(await snapshot(edge, 'wiki'), before);
});

test('portico-edge --check validates the configuration and exits 0 or 1', async () => {
  const edge = await Edge.create();
  const ok = await run(bin.edge, ['--config', edge.configPath, '--check']);
  assert.equal(ok.code, 0, show(ok));

  const bad = join(edge.dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ ...edge.config(), listn: ['127.0.0.1:1'] }));
  const r = await run(bin.edge, ['--config', bad, '--check']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stdout + r.stderr, /bad\.json/, 'names the file');
  assert.match(r.stdout + r.stderr, /listn/, 'names the key');

  const bad2 = join(edge.dir, 'bad2.json');
  writeFileSync(bad2, JSON.stringify({ ...edge.config(), limits: { ping_interval: '5s', idle_timeout: '2s' } }));
  const r2 = await run(bin.edge, ['--config', bad2, '--check']);
  assert.equal(r2.code, 1, show(r2));
  assert.match(r2.stdout + r2.stderr, /idle_timeout/);
});

test('NOTIFY_SOCKET gets READY=1 and STOPPING=1; SIGHUP reopens the log file', async () => {
  const edge = await Edge.create();
  const logPath = join(edge.dir, 'edge.log');
  edge.extra = { log: { level: 'info', file: logPath } };
  edge.writeConfig();
  // A unix datagram receiver (Node's dgram has no unix sockets): prints each datagram.
  const sockPath = join(edge.dir, 'notify.sock');
  const rx = new Proc('notify', 'python3', ['-u', '-c', [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print("{\\"event\\":\\"bound\\"}")',
    'while True:',
    '    d = s.recv(4096).decode()',
    '    print(__import__("json").dumps({"event": "datagram", "text": d}))',
  ].join('\n'), sockPath]);
  await rx.waitLog('bound', 5000);
  const p = new Proc('edge', bin.edge, ['--config', edge.configPath], { cwd: edge.dir, env: cleanEnv({ NOTIFY_SOCKET: sockPath }) });
  await rx.waitLog((l) => l.event === 'datagram' && /(^|\n)READY=1(\n|$)/.test(l.text), 5000, 'READY=1');
  const logged = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  assert.match(logged(), /"event":"edge_started"/, 'the log goes to the configured file');
  assert.equal(p.lines.filter((l) => l.event !== '_not_json').length, 0, 'nothing logged on stdout with a log file');

  // logrotate: rename, then SIGHUP; the edge writes to a new file at the old path.
  renameSync(logPath, `${logPath}.1`);
  p.kill('SIGHUP');
  await eventually(() => /"event":"log_reopened"/.test(logged()), 3000, 50, 'log_reopened in a new edge.log');
  const ex = await p.stop('SIGTERM', 8000);
  assert.equal(ex.code, 0);
  await rx.waitLog((l) => l.event === 'datagram' && /(^|\n)STOPPING=1(\n|$)/.test(l.text), 2000, 'STOPPING=1');
  assert.match(logged(), /"event":"edge_stopping"/);
  assert.doesNotMatch(readFileSync(`${logPath}.1`, 'utf8'), /edge_stopping/, 'the old file got nothing after SIGHUP');
});
