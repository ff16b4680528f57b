// A WebSocket peer Spindle did not write: Node's `ws` (Debian node-ws, 8.x; NODE_PATH=/usr/share/nodejs).
//
// node ws_peer.js client PORT   checks a Spindle server (the routes of tests/ws_conformance_test.cpp),
//                               printing "ok NAME" or "fail NAME: why" per check, then "done".
// node ws_peer.js server        serves the routes a Spindle client is checked against; prints
//                               "listening PORT".
'use strict';
const WebSocket = require('ws');

function report(name, passed, why) {
  console.log(passed ? `ok ${name}` : `fail ${name}: ${why}`);
}

function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('close', (code) => reject(new Error(`closed with ${code}`)));
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);
}

async function client(port) {
  const base = `ws://127.0.0.1:${port}`;
  const plain = { perMessageDeflate: false };
  const checks = {
    async text_and_binary_echo() {
      const ws = await open(`${base}/echo`, plain);
      ws.send('h\u00e9llo \u{1F600}');
      const text = await nextMessage(ws);
      ws.send(Buffer.from([0, 1, 2, 255]));
      const bytes = await nextMessage(ws);
      report('text_and_binary_echo', !text.isBinary && text.data.toString() === 'h\u00e9llo \u{1F600}' &&
             bytes.isBinary && bytes.data.equals(Buffer.from([0, 1, 2, 255])), `${text.data} ${bytes.data}`);
      ws.close();
    },
    async fragmented_message() {
      const ws = await open(`${base}/echo`, plain);
      ws.send('frag', { fin: false });
      ws.ping('mid');  // a control frame between the fragments
      ws.send('ment', { fin: false });
      ws.send('ed', { fin: true });
      const message = await nextMessage(ws);
      report('fragmented_message', message.data.toString() === 'fragmented', message.data.toString());
      ws.close();
    },
    async ping_answered() {
      const ws = await open(`${base}/echo`, plain);
      const pong = new Promise((resolve) => ws.once('pong', (data) => resolve(data.toString())));
      ws.ping('payload');
      report('ping_answered', (await pong) === 'payload', 'wrong pong');
      ws.close();
    },
    async permessage_deflate() {
      const ws = await open(`${base}/echo`, { perMessageDeflate: { threshold: 0 } });
      const text = 'compress me, '.repeat(5000);
      ws.send(text);
      const message = await nextMessage(ws);
      report('permessage_deflate', ws.extensions.includes('permessage-deflate') && message.data.toString() === text,
             ws.extensions);
      ws.close();
    },
    async close_code_echoed() {
      const ws = await open(`${base}/echo`, plain);
      const done = closed(ws);
      ws.close(4001, 'bye');
      const { code } = await done;
      report('close_code_echoed', code === 4001, code);
    },
    async server_close_code() {
      const ws = await open(`${base}/close`, plain);
      const { code, reason } = await closed(ws);
      report('server_close_code', code === 4002 && reason === 'server bye', `${code} ${reason}`);
    },
    async invalid_utf8_1007() {
      const ws = await open(`${base}/echo`, plain);
      const done = closed(ws);
      ws.on('error', () => {});
      ws.send(Buffer.from([0xc0, 0xaf]), { binary: false });  // sent as text, unchecked
      const { code } = await done;
      report('invalid_utf8_1007', code === 1007, code);
    },
    async oversize_1009() {
      const ws = await open(`${base}/echo`, plain);
      const done = closed(ws);
      ws.on('error', () => {});
      ws.send('x'.repeat(70 * 1024));
      const { code } = await done;
      report('oversize_1009', code === 1009, code);
    },
    async deflate_bomb_1009() {
      const ws = await open(`${base}/echo`, { perMessageDeflate: { threshold: 0 } });
      const done = closed(ws);
      ws.on('error', () => {});
      ws.send('y'.repeat(200 * 1024));
      const { code } = await done;
      report('deflate_bomb_1009', code === 1009, code);
    },
  };
  for (const [name, run] of Object.entries(checks)) {
    try {
      await withTimeout(run(), 10000);
    } catch (error) {
      report(name, false, String(error));
    }
  }
  console.log('done');
  process.exit(0);
}

function server() {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0 },
                                     maxPayload: 8 * 1024 * 1024 });
  wss.on('connection', (ws, request) => {
    ws.on('error', () => {});
    switch (request.url) {
      case '/echo':
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        break;
      case '/fragments':
        ws.send('one ', { fin: false, compress: false });
        ws.ping('mid');
        ws.send('two', { fin: true, compress: false });
        break;
      case '/close':
        ws.close(4003, 'done');
        break;
      case '/bad-utf8':
        ws.send(Buffer.from('ok \xed\xa0\x80', 'latin1'), { binary: false, compress: false });
        break;
      case '/big':
        ws.send('z'.repeat(2 * 1024 * 1024));
        break;
      default:
        ws.close(4004, 'no such path');
    }
  });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
}

if (process.argv[2] === 'client') client(Number(process.argv[3]));
else server();
