// An independent RFC 8441 peer on Node.js's own http2 module (no npm packages): WebSocket
// framing written here from RFC 6455.
//
//   node node_rfc8441.js client <port> <streams>   -> opens <streams> WebSockets over one h2c
//        connection, sends messages of several sizes, checks each echo, closes with 1000, and
//        prints one JSON line with what it saw.
//   node node_rfc8441.js server                      -> an h2c server with enableConnectProtocol that
//        echoes every WebSocket message; prints {"port": N} once listening.
//   node node_rfc8441.js server-no-connect-protocol <cert> <key>
//                                                    -> the same over TLS without enableConnectProtocol,
//        with allowHTTP1: WebSockets only as HTTP/1.1 Upgrades.
'use strict';
const http2 = require('node:http2');
const crypto = require('node:crypto');

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20];

function frame(opcode, payload, mask) {
  const n = payload.length;
  let head;
  if (n < 126) { head = Buffer.alloc(2); head[1] = n; }
  else if (n <= 0xffff) { head = Buffer.alloc(4); head[1] = 126; head.writeUInt16BE(n, 2); }
  else { head = Buffer.alloc(10); head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  head[0] = 0x80 | opcode;
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

// Incremental parser: calls onFrame(opcode, fin, payload) for each frame.
function parser(expectMasked, onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const masked = (buf[1] & 0x80) !== 0;
      if (masked !== expectMasked) throw new Error('mask bit wrong');
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const keyOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      let payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[keyOff + (i & 3)];
      const b0 = buf[0];
      buf = buf.subarray(off + len);
      onFrame(b0 & 0x0f, (b0 & 0x80) !== 0, payload);
    }
  };
}

function messages() {
  const out = [];
  SIZES.forEach((size, i) => {
    if (i % 2) out.push({ text: true, data: Buffer.from('é'.repeat(size >> 1) + 'a'.repeat(size & 1)) });
    else out.push({ text: false, data: crypto.randomBytes(size) });
  });
  return out;
}

function runClient(port, streams) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const result = { streams: [], settings: null, errors: [] };
  session.on('error', (e) => result.errors.push(String(e)));
  session.once('remoteSettings', (settings) => {
    result.settings = { enableConnectProtocol: settings.enableConnectProtocol };
    let pending = streams;
    for (let s = 0; s < streams; s++) {
      const req = session.request({
        ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': `/node/${s}`,
        ':authority': `127.0.0.1:${port}`, 'sec-websocket-version': '13', 'origin': 'http://node.test',
      });
      const sent = messages();
      const report = { status: 0, echoed: 0, mismatched: 0, close: null, ended: false };
      result.streams.push(report);
      let index = 0;
      let parts = [];
      req.on('response', (headers) => {
        report.status = headers[':status'];
        for (const m of sent) req.write(frame(m.text ? 1 : 2, m.data, true));
      });
      req.on('data', parser(false, (opcode, fin, payload) => {
        if (opcode === 8) {
          report.close = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          return;
        }
        if (opcode === 9) { req.write(frame(10, payload, true)); return; }
        parts.push(payload);
        if (!fin) return;
        const data = Buffer.concat(parts);
        parts = [];
        const want = sent[index++];
        if (want && Buffer.compare(want.data, data) === 0 && (opcode === 1) === want.text) report.echoed++;
        else report.mismatched++;
        if (index === sent.length) {
          const code = Buffer.alloc(2); code.writeUInt16BE(1000, 0);
          req.write(frame(8, code, true));
          req.end();      // the close handshake, then END_STREAM (RFC 8441 §5)
        }
      }));
      req.on('end', () => { report.ended = true; });
      req.on('close', () => {
        report.rstCode = req.rstCode;
        if (--pending === 0) {
          session.close();
          process.stdout.write(JSON.stringify(result) + '\n');
        }
      });
    }
  });
}

// Echo one WebSocket's frames as they came (fragments stay fragments); Close echoes the code and
// ends; ping gets a pong.  write(buffer) sends, end(buffer) sends and ends.
function echoFrames(write, end) {
  let closed = false;
  return parser(true, (opcode, fin, payload) => {
    if (closed) return;
    if (opcode === 8) {
      closed = true;
      end(frame(8, payload.subarray(0, 2), false));   // echo the code, then end our side
      return;
    }
    if (opcode === 9) { write(frame(10, payload, false)); return; }
    if (opcode === 10) return;
    const f = frame(opcode, payload, false);
    f[0] = (fin ? 0x80 : 0) | opcode;
    write(f);
  });
}

function runServer(connectProtocol, cert, key) {
  // With enableConnectProtocol: h2c.  Without it: TLS with allowHTTP1, where WebSockets can
  // only come as HTTP/1.1 Upgrades (handled below from RFC 6455 §4.2.2).
  const settings = { enableConnectProtocol: connectProtocol };
  const fs = require('node:fs');
  const server = connectProtocol ? http2.createServer({ settings })
    : http2.createSecureServer({ settings, allowHTTP1: true, key: fs.readFileSync(key),
                                 cert: fs.readFileSync(cert) });
  server.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('node says hi\n');
      return;
    }
    stream.respond({ ':status': 200 });
    stream.on('data', echoFrames((b) => stream.write(b), (b) => stream.end(b)));
    stream.on('error', () => {});
  });
  server.on('upgrade', (req, socket, head) => {
    const accept = crypto.createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                 `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const onData = echoFrames((b) => socket.write(b), (b) => socket.end(b));
    socket.on('data', onData);
    socket.on('error', () => {});
    if (head && head.length) onData(head);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const [mode, port, streams] = process.argv.slice(2);
if (mode === 'client') runClient(Number(port), Number(streams || 3));
else if (mode === 'server-no-connect-protocol') runServer(false, process.argv[3], process.argv[4]);
else runServer(true);
