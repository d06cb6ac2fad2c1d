// SPDX-License-Identifier: MIT
// The demo's sample backend: a private web app that shows what reached it (method, path,
// the headers the edge added) and echoes WebSocket messages. Node's standard library only.
// Usage: node backend.mjs PORT
import http from 'node:http';
import crypto from 'node:crypto';

const port = Number(process.argv[2] || 8081);

function page(req) {
  const rows = Object.entries(req.headers)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(String(v))}</td></tr>`)
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Portico demo app</title>
<style>body{font-family:sans-serif;margin:2em}td{border-bottom:1px solid #ddd;padding:2px 8px}</style></head>
<body><h1>Hello from a private app</h1>
<p>This page is served by a backend on a private address, published through Portico.</p>
<p><b>${esc(req.method)}</b> ${esc(req.url)}</p>
<table>${rows}</table>
<p id="ws">WebSocket: connecting…</p>
<script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
ws.onopen = () => ws.send('ping through the tunnel');
ws.onmessage = (e) => { document.getElementById('ws').textContent = 'WebSocket echo: ' + e.data; };
ws.onerror = () => { document.getElementById('ws').textContent = 'WebSocket: failed'; };
</script></body></html>\n`;
}

function esc(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const server = http.createServer((req, res) => {
  const body = page(req);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});

// A minimal RFC 6455 echo (text frames up to 64 KiB), enough for the demo page.
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if (!key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        socket.destroy();
        return;
      }
      const masked = (buf[1] & 0x80) !== 0;
      if (buf.length < off + (masked ? 4 : 0) + len) return;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      off += masked ? 4 : 0;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(off + len);
      if (op === 0x8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
      if (op === 0x1 || op === 0x2) {
        const hdr = payload.length < 126 ? Buffer.from([0x80 | op, payload.length]) : Buffer.from([0x80 | op, 126, payload.length >> 8, payload.length & 0xff]);
        socket.write(Buffer.concat([hdr, payload]));
      }
    }
  });
  socket.on('error', () => {});
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'demo_backend_listening', port }));
});
