// SPDX-License-Identifier: MIT
// Integration-test harness: starts Portico's real binaries on loopback, each in a fresh
// temporary directory with certificates made at run time (openssl CLI), reads their JSON log
// lines, and stops every process it started (by PID) when the test ends. Edge and Connector
// wrap the two daemons with their configuration files, the admin CLI and registration.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync, existsSync, readdirSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const BUILD = process.env.PTC_BUILDDIR || join(process.cwd(), 'build');
export const SRC = process.env.PTC_SRCDIR || process.cwd();
export const bin = {
  edge: join(BUILD, 'edge', 'portico-edge'),
  connector: join(BUILD, 'connector', 'portico-connector'),
  cli: join(BUILD, 'edge', 'cli', 'portico'),
};

/** The host name the tests give the edge: it resolves to 127.0.0.1 only (see README). */
export const EDGE_HOST = 'localhost';

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves like promise, or rejects with Error(what) if it takes longer than ms. */
export function within(promise, ms, what) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} (not within ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

/** A timer for races (a deadline): it does not keep the process alive once the race is over. */
export function deadline(ms) {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** A fresh temporary directory, removed when the process exits unless PTC_KEEP=1. */
const tempDirs = [];
export function tempDir(tag = 'it') {
  const dir = mkdtempSync(join(tmpdir(), `ptc-${tag}-`));
  if (tempDirs.length === 0 && process.env.PTC_KEEP !== '1') {
    process.on('exit', () => {
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  tempDirs.push(dir);
  return dir;
}

/** Asks the kernel for a free loopback TCP port. */
export async function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves true once a TCP connection to host:port succeeds (and closes it). */
export function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes a CA and leaf certificates signed by it (EC P-256). `leaves` maps a name to its
 * subjectAltName list, e.g. {edge: ['DNS:edge.test', 'IP:127.0.0.1']}. Returns paths.
 */
export function makeCerts(dir, leaves, { caName = 'ca' } = {}) {
  mkdirSync(dir, { recursive: true });
  const out = { ca: join(dir, `${caName}.crt`), caKey: join(dir, `${caName}.key`) };
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', out.caKey], dir);
  openssl(['req', '-x509', '-new', '-key', out.caKey, '-sha256', '-days', '30',
    '-subj', `/CN=Portico Test ${caName}/O=Portico Test`, '-out', out.ca,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  for (const [name, sans] of Object.entries(leaves)) {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const crt = join(dir, `${name}.crt`);
    const ext = join(dir, `${name}.ext`);
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
    const cn = (sans.find((s) => s.startsWith('DNS:')) || 'DNS:leaf').slice(4);
    openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr], dir);
    writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\n`);
    openssl(['x509', '-req', '-in', csr, '-CA', out.ca, '-CAkey', out.caKey,
      '-CAcreateserial', '-out', crt, '-sha256', '-extfile', ext, '-days', '30'], dir);
    out[name] = { crt, key };
  }
  return out;
}

/** Certificates for an edge named EDGE_HOST on 127.0.0.1, from a CA of their own. */
export function edgeCerts(dir, caName = 'ca') {
  return makeCerts(dir, { edge: [`DNS:${EDGE_HOST}`, 'IP:127.0.0.1'] }, { caName });
}

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)/;

/** A running process with its parsed JSON log lines. */
export class Proc {
  constructor(name, cmd, args, opts = {}) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    this.startedAt = Date.now();
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.pid = this.child.pid;
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: Date.now() };
        resolve(this.exitInfo);
      });
      this.child.on('error', (e) => {
        this.stderr += `spawn failed: ${e.message}\n`;
        this.exitInfo = { code: null, signal: null, error: e, at: Date.now() };
        resolve(this.exitInfo);
      });
    });
    let buf = '';
    this.child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.onLine(line);
      }
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      if (process.env.PTC_VERBOSE === '1') process.stderr.write(`[${name}] ${d}`);
    });
    procs.add(this);
    allProcs.push(this);
    this.child.on('exit', () => procs.delete(this));
  }

  onLine(line) {
    if (process.env.PTC_VERBOSE === '1') process.stderr.write(`[${this.name}] ${line}\n`);
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      obj = { event: '_not_json', text: line };
    }
    obj._raw = line;
    obj._at = Date.now();
    this.lines.push(obj);
    this.waiters = this.waiters.filter((w) => !(w.from <= this.lines.length - 1 && w.pred(obj) && (w.resolve(obj), true)));
  }

  /** The index the next log line will get: pass it as `from` to wait for later lines only. */
  mark() {
    return this.lines.length;
  }

  /**
   * Resolves with the first log line at index >= from (past or future) matching pred (a
   * function, or an event name), or rejects on timeout or when the process exits first.
   */
  waitLog(pred, timeoutMs = 10000, what = 'log line', from = 0) {
    if (typeof pred === 'string') {
      const ev = pred;
      pred = (l) => l.event === ev;
      if (what === 'log line') what = ev;
    }
    const found = this.lines.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, from };
      this.waiters.push(w);
      const fail = (why) => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: no ${what} ${why}\n${this.tail()}`));
      };
      const t = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      // A process that exited will log nothing more.
      this.exited.then((info) => {
        setTimeout(() => {
          if (this.waiters.includes(w)) {
            clearTimeout(t);
            fail(`(exited: code ${info.code}, signal ${info.signal})`);
          }
        }, 100);
      });
      w.resolve = (v) => {
        clearTimeout(t);
        resolve(v);
      };
    });
  }

  /** Waits until `n` lines matching pred (from index `from`) have been logged. */
  async waitCount(pred, n, timeoutMs = 10000, what = 'log lines', from = 0) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const got = this.lines.slice(from).filter(pred);
      if (got.length >= n) return got;
      if (Date.now() > end || (this.exitInfo && Date.now() > this.exitInfo.at + 100)) {
        throw new Error(`${this.name}: ${got.length} of ${n} ${what} within ${timeoutMs} ms\n${this.tail()}`);
      }
      await sleep(25);
    }
  }

  events(ev, from = 0) {
    return this.lines.slice(from).filter((l) => l.event === ev);
  }

  /** The last log lines and stderr, for failure messages. */
  tail(n = 25) {
    const lines = this.lines.slice(-n).map((l) => l._raw).join('\n');
    return `--- ${this.name} (pid ${this.pid}) last log lines:\n${lines}\n--- stderr:\n${this.stderr.slice(-3000)}`;
  }

  running() {
    return this.exitInfo === null;
  }

  kill(sig = 'SIGTERM') {
    if (this.running()) {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* already gone */
      }
    }
    return this.exited;
  }

  /** Sends sig and resolves with the exit info, or rejects after timeoutMs. */
  async stop(sig = 'SIGTERM', timeoutMs = 10000) {
    this.kill(sig);
    const r = await Promise.race([this.exited, deadline(timeoutMs).then(() => null)]);
    if (r === null) throw new Error(`${this.name} did not exit within ${timeoutMs} ms of ${sig}\n${this.tail()}`);
    return r;
  }
}

const procs = new Set();
const allProcs = [];
const runReports = []; // sanitizer reports of commands run to completion by run()

/** Stops every process the harness started (SIGKILL after a grace period). */
export async function stopAll() {
  const all = [...procs];
  for (const p of all) {
    if (p.stopped) p.kill('SIGCONT');
    p.kill('SIGTERM');
  }
  await Promise.race([Promise.all(all.map((p) => p.exited)), deadline(5000)]);
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all.map((p) => p.exited));
}

/**
 * Sanitizer reports (ASan, LSan, UBSan) written by any process started so far, on stderr;
 * an empty string when there are none. The ASan build runs these tests too.
 */
export function sanitizerReports() {
  return allProcs
    .filter((p) => SANITIZER_RE.test(p.stderr))
    .map((p) => `${p.name} (${p.cmd} ${p.args.join(' ')}):\n${p.stderr.slice(0, 4000)}`)
    .concat(runReports)
    .join('\n');
}

/** An afterEach hook: stop everything, then fail the test on a sanitizer report. */
export async function cleanup() {
  await stopAll();
  const rep = sanitizerReports();
  allProcs.length = 0;
  runReports.length = 0;
  if (rep) throw new Error(`sanitizer report:\n${rep}`);
}

process.on('exit', () => {
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Runs a command to completion; resolves {code, signal, stdout, stderr}. */
export function run(cmd, args, opts = {}) {
  const { timeoutMs = 30000, ...spawnOpts } = opts;
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: null, signal: null, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(t);
      const r = { code, signal, stdout, stderr, cmd: [cmd, ...args].join(' ') };
      if (SANITIZER_RE.test(stderr)) {
        r.sanitizer = stderr;
        runReports.push(`${r.cmd}:\n${stderr.slice(0, 4000)}`);
      }
      resolve(r);
    });
  });
}

/** Describes a run() result for assertion messages. */
export function show(r) {
  return `$ ${r.cmd}\nexit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr.slice(0, 3000)}`;
}

/** Polls fn until it returns a truthy value or the time runs out. */
export async function eventually(fn, timeoutMs = 10000, stepMs = 100, what = 'condition') {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`${what} not met within ${timeoutMs} ms (last: ${last && last.message ? last.message : JSON.stringify(last)})`);
}

export function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Every regular file under dir (relative path -> sha256 of its bytes). */
export function treeHashes(dir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile()) out[r] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

/** Every regular file under dir (relative path -> its mode & 0o777). */
export function treeModes(dir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile()) out[r] = statSync(p).mode & 0o777;
    }
  };
  walk(dir, '');
  return out;
}

/** Every regular file under dir, concatenated (for "this secret is nowhere" checks). */
export function treeText(dir) {
  let s = '';
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) s += readFileSync(p, 'latin1');
    }
  };
  walk(dir);
  return s;
}

// ---------------------------------------------------------------------------------------
// The edge

/** Short liveness settings so that the tests run fast (the defaults are 15 s / 45 s). */
export const FAST_LIMITS = {
  handshake_timeout: '5s',
  ping_interval: '1s',
  idle_timeout: '3s',
  drain_timeout: '3s',
};

/**
 * One portico-edge with its own directory: edge.json, state/, admin.sock and certificates
 * (pass `certs` from edgeCerts() to share a CA between edges). Start it with start(); the
 * admin CLI runs against its socket with cli().
 */
export class Edge {
  constructor({ dir, certs, port, limits = FAST_LIMITS, logLevel = 'info', adminTcp = null, extra = {} } = {}) {
    this.dir = dir || tempDir('edge');
    this.certs = certs || edgeCerts(join(this.dir, 'certs'));
    this.port = port;
    this.limits = limits;
    this.logLevel = logLevel;
    this.adminTcp = adminTcp; // {port, tokenFile}
    this.extra = extra;
    this.stateDir = join(this.dir, 'state');
    this.socket = join(this.dir, 'admin.sock');
    this.configPath = join(this.dir, 'edge.json');
    this.proc = null;
    this.runs = [];
  }

  /** Creates the edge with a free port and writes its configuration. */
  static async create(opts = {}) {
    const e = new Edge(opts);
    if (!e.port) e.port = await freePort();
    e.writeConfig();
    return e;
  }

  get url() {
    return `https://${EDGE_HOST}:${this.port}`;
  }

  config() {
    const cfg = {
      listen: [`127.0.0.1:${this.port}`],
      edge_host: EDGE_HOST,
      default_domain: 'apps.localhost',
      tls: { cert: this.certs.edge.crt, key: this.certs.edge.key },
      state_dir: this.stateDir,
      admin: { socket: this.socket, socket_mode: '0600' },
      log: { level: this.logLevel },
      limits: this.limits,
      ...this.extra,
    };
    if (this.adminTcp) {
      cfg.admin.tcp = `127.0.0.1:${this.adminTcp.port}`;
      cfg.admin.token_file = this.adminTcp.tokenFile;
    }
    return cfg;
  }

  writeConfig() {
    writeFileSync(this.configPath, JSON.stringify(this.config(), null, 2));
  }

  /**
   * Starts portico-edge and, unless wait is false, resolves once it has logged edge_started
   * and its admin socket exists.
   */
  async start({ wait = true, timeoutMs = 10000 } = {}) {
    const p = new Proc(`edge#${this.runs.length + 1}`, bin.edge, ['--config', this.configPath], { cwd: this.dir });
    this.proc = p;
    this.runs.push(p);
    if (!wait) return p;
    // edge_started comes after the listeners are bound (a probe connection would show up
    // in the edge's log as a failed TLS handshake).
    await p.waitLog('edge_started', timeoutMs);
    await eventually(() => existsSync(this.socket), timeoutMs, 20, `admin socket ${this.socket}`);
    return p;
  }

  async stop(sig = 'SIGTERM', timeoutMs = 10000) {
    if (!this.proc) return null;
    return this.proc.stop(sig, timeoutMs);
  }

  /** Runs the CLI against this edge's admin socket. */
  cli(args, opts = {}) {
    return run(bin.cli, ['--socket', this.socket, ...args], { cwd: this.dir, ...opts });
  }

  /** Runs the CLI with --json; asserts exit 0 and returns the parsed output (null if empty). */
  async cliJson(args) {
    const r = await this.cli(['--json', ...args]);
    if (r.code !== 0) throw new Error(`CLI failed:\n${show(r)}`);
    const text = r.stdout.trim();
    if (text === '') return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`CLI --json output is not JSON (${e.message}):\n${show(r)}`);
    }
  }

  /** Mints a registration token; returns the API's answer {id, token, group, ...}. */
  async mintToken({ group = 'Default', expires = null, uses = null } = {}) {
    const args = ['token', 'create', '--group', group];
    if (expires) args.push('--expires', expires);
    if (uses !== null) args.push('--uses', String(uses));
    const t = await this.cliJson(args);
    if (!t || typeof t.token !== 'string' || typeof t.id !== 'string') {
      throw new Error(`token create --json gave no {id, token}: ${JSON.stringify(t)}`);
    }
    return t;
  }

  /** `connector list --json`'s entry for id (undefined if absent). */
  async connectorInfo(id) {
    const j = await this.cliJson(['connector', 'list']);
    if (!j || !Array.isArray(j.connectors)) throw new Error(`connector list --json: no "connectors" array: ${JSON.stringify(j)}`);
    return j.connectors.find((c) => c.id === id);
  }

  /** Waits until `connector list --json` shows id active with n tunnels. */
  async waitActive(id, n = 2, timeoutMs = 10000) {
    return eventually(async () => {
      const c = await this.connectorInfo(id);
      if (c && c.status === 'active' && c.tunnels === n) return c;
      throw new Error(`connector ${id}: ${JSON.stringify(c)}`);
    }, timeoutMs, 100, `connector ${id} active with ${n} tunnels`);
  }

  /** Edge log lines of `event` that name connector id, from index `from` of the current run. */
  connectorEvents(event, id, from = 0) {
    return this.proc.lines.slice(from).filter((l) => l.event === event && l.connector === id);
  }
}

// ---------------------------------------------------------------------------------------
// The connector

/**
 * One portico-connector with its own directory: connector.json, credentials.json (and the
 * status file next to it). register() runs `portico-connector register`; start() runs it.
 */
export class Connector {
  constructor(edge, name = 'conn', { dir, caFile, caInConfig = true, proxy = null, tunnels = null, drain = '3s', logLevel = 'info', extra = {} } = {}) {
    this.edge = edge;
    this.name = name;
    this.dir = dir || tempDir(name);
    this.caFile = caFile || (edge && edge.certs.ca);
    this.caInConfig = caInConfig;
    this.proxy = proxy;
    this.tunnels = tunnels;
    this.drain = drain;
    this.logLevel = logLevel;
    this.extra = extra;
    this.credPath = join(this.dir, 'credentials.json');
    this.configPath = join(this.dir, 'connector.json');
    this.statusPath = join(this.dir, 'status.json');
    this.proc = null;
    this.runs = [];
    this.writeConfig();
  }

  config() {
    const cfg = {
      credentials: this.credPath,
      drain_timeout: this.drain,
      log: { level: this.logLevel },
      ...this.extra,
    };
    if (this.tunnels !== null) cfg.tunnels_per_edge = this.tunnels;
    if (this.caInConfig && this.caFile) cfg.ca_file = this.caFile;
    if (this.proxy) cfg.proxy = this.proxy;
    return cfg;
  }

  writeConfig() {
    writeFileSync(this.configPath, JSON.stringify(this.config(), null, 2));
  }

  /** Runs `portico-connector register`; resolves the run() result. */
  register(token, { edgeUrl, caFile = this.caFile, env, extraArgs = [] } = {}) {
    const args = ['register', '--edge', edgeUrl || this.edge.url, '--token', token,
      '--config', this.configPath, '--credentials', this.credPath];
    if (caFile) args.push('--ca-file', caFile);
    return run(bin.connector, [...args, ...extraArgs], { cwd: this.dir, env: env || cleanEnv() });
  }

  /** Mints a token on the edge and registers with it; asserts success. Returns the id. */
  async registerOk(opts = {}) {
    const t = await this.edge.mintToken(opts.token || {});
    const r = await this.register(t.token, opts);
    if (r.code !== 0) throw new Error(`register failed:\n${show(r)}`);
    return this.id;
  }

  /** The number of tunnels per edge it should keep (tunnels_per_edge, default 2). */
  get tunnelCount() {
    return this.tunnels ?? 2;
  }

  get credentials() {
    return readJson(this.credPath);
  }

  get id() {
    return this.credentials.connector_id;
  }

  /** Starts `portico-connector run`. */
  start({ env } = {}) {
    const p = new Proc(`${this.name}#${this.runs.length + 1}`, bin.connector, ['run', '--config', this.configPath],
      { cwd: this.dir, env: env || cleanEnv() });
    this.proc = p;
    this.runs.push(p);
    return p;
  }

  /** Starts the connector and waits until the edge shows it active with all its tunnels. */
  async startActive(timeoutMs = 10000) {
    const p = this.start();
    await this.edge.waitActive(this.id, this.tunnelCount, timeoutMs);
    return p;
  }
}

/** The environment for child processes: without proxy variables unless a test sets them. */
export function cleanEnv(add = {}) {
  const env = { ...process.env };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy']) delete env[k];
  return { ...env, ...add };
}
