// SPDX-License-Identifier: MIT
// A small RFC 6455 codec for the integration tests, written from the RFC with node:crypto only:
// the handshake's accept value, frame encoding (client frames masked, server frames not; 7-,
// 16- and 64-bit lengths) and an incremental frame parser. The test backend
// (lib/backend.mjs) echoes with it and the test client (lib/publish.mjs) speaks it through
// the edge.
import { createHash, randomBytes } from 'node:crypto';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function acceptFor(key) {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. */
export function newKey() {
  return randomBytes(16).toString('base64');
}

/** One final frame: opcode, payload (Buffer or string), masked with a random key when `mask`. */
export function encodeFrame(op, payload, mask) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  let head;
  if (p.length < 126) {
    head = Buffer.from([0x80 | op, p.length]);
  } else if (p.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | op;
    head[1] = 126;
    head.writeUInt16BE(p.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | op;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(p.length), 2);
  }
  if (!mask) return Buffer.concat([head, p]);
  head[1] |= 0x80;
  const key = randomBytes(4);
  const body = Buffer.from(p);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** A close frame with a status code and a reason. */
export function closeFrame(code, reason, mask) {
  const r = Buffer.from(reason || '', 'utf8');
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return encodeFrame(OP.CLOSE, p, mask);
}

/**
 * Incremental frame parser. push(bytes) returns the frames completed so far as
 * {fin, op, masked, payload (unmasked Buffer)}; a frame split across pushes is kept.
 */
export class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  push(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : Buffer.from(d);
    const out = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const need = off + (masked ? 4 : 0) + len;
      if (b.length < need) break;
      const payload = Buffer.from(b.subarray(need - len, need));
      if (masked) {
        const key = b.subarray(off, off + 4);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      out.push({ fin: (b[0] & 0x80) !== 0, op: b[0] & 0x0f, masked, payload });
      this.buf = b.subarray(need);
    }
    return out;
  }
}
