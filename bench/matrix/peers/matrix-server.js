// The Node.js peer of the comparison matrix (bench/matrix): the http module on one thread, its 50 ms
// "database call" a timer, as an async driver's wait would be.
//
//   node matrix-server.js 127.0.0.1 8080
'use strict';
const http = require('http');

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 8080);
const plaintext = Buffer.from('Hello, World!');

const server = http.createServer((request, response) => {
  switch (request.url) {
    case '/plaintext':
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': plaintext.length });
      response.end(plaintext);
      return;
    case '/json': {
      const body = JSON.stringify({ message: 'Hello, World!' });
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      response.end(body);
      return;
    }
    case '/delay':
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'text/plain', 'content-length': 12 });
        response.end('waited 50 ms');
      }, 50);
      return;
    default:
      response.writeHead(404, { 'content-length': 0 });
      response.end();
  }
});
server.keepAliveTimeout = 65000;  // longer than the load generators' runs: connections stay open
server.headersTimeout = 66000;
server.listen(port, host, 1024, () => {
  const address = server.address();
  console.log(`listening on ${address.address}:${address.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
