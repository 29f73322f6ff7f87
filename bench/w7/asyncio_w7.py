"""W7 in Python asyncio: C coroutines share N reads of 4 KB, each os.pread on one descriptor through
loop.run_in_executor (what aiofiles does) on an executor of 4 threads, as Node's libuv pool and ours, at
the offsets of the LCG that bench/w7.c describes, with its checksum.

    python3 asyncio_w7.py FILE N C
"""
import asyncio
import concurrent.futures
import os
import resource
import sys
import time

BLOCK = 4096


async def main(path, n, c):
    fd = os.open(path, os.O_RDONLY)
    blocks = os.fstat(fd).st_size // BLOCK
    if blocks < 1:
        sys.exit(f"asyncio_w7: {path}: under 4 KB")
    c = min(c, n)
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(4)
    loop.set_default_executor(pool)

    async def reader(i):
        s, total = i + 1, 0
        for _ in range(n // c + (1 if i < n % c else 0)):
            s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
            buf = await loop.run_in_executor(None, os.pread, fd, BLOCK, ((s >> 8) % blocks) * BLOCK)
            if len(buf) != BLOCK:
                raise OSError("a read came back short of 4 KB")
            total += int.from_bytes(buf[:4], "little") + int.from_bytes(buf[-4:], "little")
        return total

    t0 = time.perf_counter()
    sums = await asyncio.gather(*(reader(i) for i in range(c)))
    wall = time.perf_counter() - t0
    os.close(fd)
    pool.shutdown()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"workload=W7 impl=python-asyncio n={n} wall_s={wall:.4f} rss_kb={rss} conc={c} threads=4 "
          f"reads_per_s={n / wall:.0f} ns_per_read={wall * 1e9 / n:.1f} checksum={sum(sums)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4 or int(sys.argv[2]) < 1 or int(sys.argv[3]) < 1:
        sys.exit("usage: python3 asyncio_w7.py FILE N C")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
