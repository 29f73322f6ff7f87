// W7 in Node.js: C async functions share N reads of 4 KB through one fs.promises FileHandle's read at a
// position (libuv's pool of 4 threads), at the offsets of the LCG that bench/w7.c describes, with its
// checksum (below 2^53, so a Number holds it exactly for any N this workload uses).
//   node node_w7.js FILE N C
'use strict';
const fs = require('fs');
const BLOCK = 4096;

async function main() {
  const [file, ns, cs] = process.argv.slice(2);
  const n = Number(ns);
  let c = Number(cs);
  if (!file || !(n >= 1) || !(c >= 1)) {
    console.error('usage: node node_w7.js FILE N C');
    process.exit(2);
  }
  const fh = await fs.promises.open(file, 'r');
  const blocks = Math.floor((await fh.stat()).size / BLOCK);
  if (blocks < 1) {
    console.error(`node_w7: ${file}: under 4 KB`);
    process.exit(2);
  }
  if (c > n) c = n;
  const reader = async (i) => {
    const buf = Buffer.alloc(BLOCK);
    let s = (i + 1) >>> 0, sum = 0;
    for (let k = Math.floor(n / c) + (i < n % c ? 1 : 0); k > 0; k--) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const { bytesRead } = await fh.read(buf, 0, BLOCK, ((s >>> 8) % blocks) * BLOCK);
      if (bytesRead !== BLOCK) throw new Error('a read came back short of 4 KB');
      sum += buf.readUInt32LE(0) + buf.readUInt32LE(BLOCK - 4);
    }
    return sum;
  };
  const t0 = process.hrtime.bigint();
  const sums = await Promise.all(Array.from({ length: c }, (_, i) => reader(i)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  await fh.close();
  const sum = sums.reduce((a, b) => a + b, 0);
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  console.log(`workload=W7 impl=node n=${n} wall_s=${wall.toFixed(4)} ` +
              `rss_kb=${Math.round(process.resourceUsage().maxRSS)} conc=${c} threads=${threads} ` +
              `reads_per_s=${(n / wall).toFixed(0)} ns_per_read=${(wall * 1e9 / n).toFixed(1)} checksum=${sum}`);
}
main().catch((e) => { console.error('node_w7:', e.message); process.exit(1); });
