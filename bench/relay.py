"""The 1:1 SSE frame relay: the floor any gateway stands on.

``POST /relay`` forwards the request body to the provider, then reads one SSE frame at a
time from the provider and writes it to the client, parsing nothing. Same aiohttp server
and process model as the gateway — only the gateway's work is missing.

Two upstream clients: ``--client aiohttp`` (the default, the floor the targets are measured
against: the stack's HTTP client, one ``readuntil`` per frame) and ``--client wire``, the
gateway's own provider client (``agentgw.providers.wire``: the body arrives in a callback,
each frame written from it), which shows how much of the gateway's figure is its transport.

Its garbage collection is the served gateway's (``agentgw.gctune``: startup frozen, the
automatic threshold raised, collections when no stream is open): with Python's default, a
full collection now and then fell inside a burst (14 ms of one at 200 x 200, that round's
first delta p50 at 41.6 ms against 24-27 for the nine without one).

Run: ``python -m bench.relay --port P --upstream http://127.0.0.1:Q/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

from agentgw.providers.wire import ProviderClient
from bench.idle import OpenStreams

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
WIRE: web.AppKey[ProviderClient] = web.AppKey("wire", ProviderClient)
UPSTREAM: web.AppKey[str] = web.AppKey("upstream", str)
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform"}


OPEN = OpenStreams()  # streams being relayed (the idle collector waits for none)


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    session = request.app[SESSION]
    async with session.post(
        request.app[UPSTREAM], data=body, headers={"Content-Type": "application/json"}
    ) as upstream:
        resp = web.StreamResponse(headers=SSE_HEADERS)
        await resp.prepare(request)
        content = upstream.content
        while True:
            frame = await content.readuntil(b"\n\n")  # a partial frame at EOF, b"" after it
            if not frame:
                break
            await resp.write(frame)
            if not frame.endswith(b"\n\n"):
                break
        await resp.write_eof()
        return resp


async def relay_wire(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = await request.app[WIRE].post(
        request.app[UPSTREAM], {"Content-Type": "application/json"}, body, connect_timeout_s=30
    )
    resp = web.StreamResponse(headers=SSE_HEADERS)
    await resp.prepare(request)
    transport = request.transport
    assert transport is not None
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    tail = b""

    def on_data(chunk: bytes) -> None:
        nonlocal tail
        data = tail + chunk if tail else chunk
        start = 0
        while (end := data.find(b"\n\n", start)) >= 0:
            frame = data[start : end + 2]  # one frame, one write (HTTP/1.1 chunk framing)
            transport.write(b"%x\r\n%b\r\n" % (len(frame), frame))
            start = end + 2
        tail = data[start:]

    upstream.stream(on_data, ended.set_result)
    await ended
    upstream.release()
    await resp.write_eof(tail)
    return resp


async def _session(app: web.Application):  # type: ignore[no-untyped-def]
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    app[WIRE] = ProviderClient()
    yield
    await app[SESSION].close()
    await app[WIRE].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--client", choices=("aiohttp", "wire"), default="aiohttp")
    args = parser.parse_args()
    app = web.Application()
    app[UPSTREAM] = args.upstream
    app.cleanup_ctx.append(_session)
    app.router.add_post("/relay", OPEN.counted(relay if args.client == "aiohttp" else relay_wire))

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        OPEN.collect_when_idle()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
