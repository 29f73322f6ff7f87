// W4 over https in Node.js: an https server (TLS 1.3, HTTP/1.1, keep-alive) answering "hello", as the
// shared W4 peer does over plain HTTP.
//   node node_w4tls.js PORT SECONDS CERT KEY     port 0 picks a free one; prints "impl=node port=N" once listening
'use strict';
const fs = require('fs');
const https = require('https');
if (process.argv.length !== 6) {
  console.error('usage: node node_w4tls.js PORT SECONDS CERT KEY');
  process.exit(2);
}
const port = Number(process.argv[2]), seconds = Number(process.argv[3]);
const srv = https.createServer({ cert: fs.readFileSync(process.argv[4]), key: fs.readFileSync(process.argv[5]) },
  (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 5 });
    res.end('hello');
  });
srv.keepAliveTimeout = 60000;
srv.listen(port, '127.0.0.1', () => {
  console.log(`impl=node port=${srv.address().port}`);
  setTimeout(() => process.exit(0), seconds * 1000);
});
