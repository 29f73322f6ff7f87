"""W6 in Python: an HTTP/1.1 keep-alive server whose handler awaits asyncio.sleep(0.01) (a stand-in for a
backend) before it answers "hello". aiohttp when the interpreter can import it, else a raw asyncio server
(start_server streams, the nearest plain-asyncio shape of a coroutine handler).

    asyncio_w6.py PORT SECONDS     port 0 picks a free one; prints "impl=NAME port=N pid=N" once listening
                                   (the pid: python3 may be a shim that runs the interpreter)
"""
import asyncio
import os
import sys

RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


async def raw(port, seconds):
    async def handle(reader, writer):
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # wrk's GETs carry no body
                await asyncio.sleep(0.01)
                writer.write(RESP)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    # The default backlog (100) would drop some of wrk's 500 connects at its start.
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print(f"impl=python-asyncio port={server.sockets[0].getsockname()[1]} pid={os.getpid()}", flush=True)
    async with server:
        await asyncio.sleep(seconds)


async def with_aiohttp(web, port, seconds):
    async def slow_hello(request):
        await asyncio.sleep(0.01)
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", slow_hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    print(f"impl=python-aiohttp port={site._server.sockets[0].getsockname()[1]} pid={os.getpid()}", flush=True)
    await asyncio.sleep(seconds)
    await runner.cleanup()


if __name__ == "__main__":
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    try:
        from aiohttp import web
    except ImportError:
        asyncio.run(raw(port, seconds))
    else:
        asyncio.run(with_aiohttp(web, port, seconds))
