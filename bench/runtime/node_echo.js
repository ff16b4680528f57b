// Reference peer for bench/runtime/echo_compare.sh: the idiomatic Node.js echo server (net module,
// one event loop). Prints the same banner as Spindle's examples.
const net = require('net');
const [host, port] = (process.argv[2] || '127.0.0.1:0').split(':');
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.pipe(socket);
  socket.on('error', () => socket.destroy());
});
server.listen(Number(port), host, () => {
  console.log(`listening on ${host}:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
