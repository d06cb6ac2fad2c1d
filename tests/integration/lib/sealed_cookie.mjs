// SPDX-License-Identifier: MIT
// The edge's sealed cookies from the outside (edge/session.h): base64url(0x01 | key id (4
// bytes, big-endian) | 24-byte nonce | XChaCha20-Poly1305(payload)) with associated data
// "<purpose>\0<host>", keys from <state_dir>/session_keys.json. The tests open a real session
// cookie with the edge's own key file and seal a changed copy (an expiry in the past, or a few
// seconds ahead) to check what the edge does with sessions that end, without waiting hours.
// XChaCha20 is HChaCha20 (below) plus the IETF ChaCha20-Poly1305 of node:crypto.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const rotl = (v, n) => ((v << n) | (v >>> (32 - n))) >>> 0;

/** HChaCha20 (draft-irtf-cfrg-xchacha §2.2): a 32-byte subkey from key and a 16-byte nonce. */
export function hchacha20(key, nonce16) {
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(4 * i);
  const qr = (a, b, c, d) => {
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.alloc(32);
  [0, 1, 2, 3, 12, 13, 14, 15].forEach((w, i) => out.writeUInt32LE(s[w], 4 * i));
  return out;
}

function ietf(key, nonce24) {
  const sub = hchacha20(key, nonce24.subarray(0, 16));
  const n12 = Buffer.concat([Buffer.alloc(4), nonce24.subarray(16, 24)]);
  return { sub, n12 };
}

export function xchachaSeal(key, nonce24, plain, ad) {
  const { sub, n12 } = ietf(key, nonce24);
  const c = createCipheriv('chacha20-poly1305', sub, n12, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: plain.length });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

/** The plaintext, or null when the tag does not verify. */
export function xchachaOpen(key, nonce24, sealed, ad) {
  if (sealed.length < 16) return null;
  const { sub, n12 } = ietf(key, nonce24);
  const d = createDecipheriv('chacha20-poly1305', sub, n12, { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: sealed.length - 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

/** The edge's session keys: [{id, key (Buffer), created}], current first. */
export function sessionKeys(stateDir) {
  const doc = JSON.parse(readFileSync(join(stateDir, 'session_keys.json'), 'utf8'));
  return doc.keys.map((k) => ({ id: k.id, created: k.created, key: Buffer.from(k.key, 'base64url') }));
}

const ad = (purpose, host) => Buffer.from(`${purpose}\0${host}`, 'latin1');

/**
 * Opens a cookie value with the edge's keys, trying each candidate host (the AD's host may
 * or may not carry the port). Resolves {payload (parsed JSON), host, keyId} or null.
 */
export function openCookie(stateDir, purpose, hosts, value) {
  const bin = Buffer.from(value, 'base64url');
  if (bin.length < 1 + 4 + 24 + 16 || bin[0] !== 1) return null;
  const keyId = bin.readUInt32BE(1);
  const k = sessionKeys(stateDir).find((x) => x.id === keyId);
  if (!k) return null;
  for (const host of hosts) {
    const plain = xchachaOpen(k.key, bin.subarray(5, 29), bin.subarray(29), ad(purpose, host));
    if (plain) return { payload: JSON.parse(plain.toString('utf8')), host, keyId };
  }
  return null;
}

/** Seals payload (an object) as the edge does, with its current key. */
export function sealCookie(stateDir, purpose, host, payload) {
  const k = sessionKeys(stateDir)[0];
  const nonce = randomBytes(24);
  const hdr = Buffer.alloc(5);
  hdr[0] = 1;
  hdr.writeUInt32BE(k.id, 1);
  const ct = xchachaSeal(k.key, nonce, Buffer.from(JSON.stringify(payload), 'utf8'), ad(purpose, host));
  return Buffer.concat([hdr, nonce, ct]).toString('base64url');
}
