"""The 1:1 SSE frame relay: the floor any gateway stands on.

``POST /relay`` forwards the request body to the provider, then reads one SSE frame at a
time from the provider and writes it to the client, parsing nothing. Same aiohttp server,
same aiohttp client, same process model as the gateway — only the gateway's work is missing.

Run: ``python -m bench.relay --port P --upstream http://127.0.0.1:Q/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM: web.AppKey[str] = web.AppKey("upstream", str)


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    session = request.app[SESSION]
    async with session.post(
        request.app[UPSTREAM], data=body, headers={"Content-Type": "application/json"}
    ) as upstream:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform"}
        )
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


async def _session(app: web.Application):  # type: ignore[no-untyped-def]
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await app[SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    app = web.Application()
    app[UPSTREAM] = args.upstream
    app.cleanup_ctx.append(_session)
    app.router.add_post("/relay", relay)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
