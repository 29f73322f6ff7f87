// W6 in Node.js: an http server whose handler waits 10 ms on setTimeout (a stand-in for a backend) before
// it answers "hello".
//   node node_w6.js PORT SECONDS     port 0 picks a free one; prints "impl=node port=N" once listening
'use strict';
const http = require('http');
const port = Number(process.argv[2]), seconds = Number(process.argv[3]);
const srv = http.createServer((req, res) => {
  setTimeout(() => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 5 });
    res.end('hello');
  }, 10);
});
srv.keepAliveTimeout = 60000;
// The backlog as the other W6 servers have it, so that wrk's 500 connects at its start all get in.
srv.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  console.log(`impl=node port=${srv.address().port}`);
  setTimeout(() => process.exit(0), seconds * 1000);
});
