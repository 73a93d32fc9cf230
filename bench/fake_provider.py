"""The benchmark's fake provider: OpenAI chat-completions SSE, as fast as asked.

The last user message is the control line, ``n=<deltas> gap_us=<spacing> hold_s=<seconds>``;
every content delta is ``"<send time ns>|"`` so the client can measure added latency from the
same bytes whether they came through the relay or the gateway. When tools are offered and
fewer than ``tools=<k>`` tool results are in the conversation, it calls the first tool.

Run: ``python -m bench.fake_provider --port P`` (prints ``ready`` when listening).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

import orjson
from aiohttp import web

from bench.idle import OpenStreams

_CONTROL = re.compile(r"(\w+)=([\d.]+)")
_PREFIX = b'data: {"id":"bench","object":"chat.completion.chunk","model":"bench-model","choices":[{"index":0,"delta":{"content":"'
_SUFFIX = b'|"},"finish_reason":null}]}\n\n'
_FINISH = (
    b'data: {"id":"bench","object":"chat.completion.chunk","model":"bench-model","choices":[{"index":0,"delta":{},'
    b'"finish_reason":"%s"}]}\n\n'
    b'data: {"id":"bench","object":"chat.completion.chunk","model":"bench-model","choices":[],'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
    b"data: [DONE]\n\n"
)


def control(body: dict[str, object]) -> dict[str, float]:
    messages = body.get("messages")
    text = ""
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                text = m["content"]
                break
    return {k: float(v) for k, v in _CONTROL.findall(text)}


def _tool_frames(body: dict[str, object], call_no: int) -> list[bytes]:
    tools = body.get("tools")
    assert isinstance(tools, list)
    name = tools[0]["function"]["name"]
    call_id = f"call_bench_{call_no}"
    args = ['{"city": ', '"Shanghai", ', '"date": "2026-11-24"}']
    frames = [
        b"data: "
        + orjson.dumps(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": call_id,
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            ]
                        },
                    }
                ]
            }
        )
        + b"\n\n"
    ]
    for part in args:
        frames.append(
            b"data: "
            + orjson.dumps(
                {
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}}
                    ]
                }
            )
            + b"\n\n"
        )
    frames.append(_FINISH % (b"tool_calls", 10, len(args), 10 + len(args)))
    return frames


OPEN = OpenStreams()  # streams being served (the idle collector waits for none)


async def chat(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    ctl = control(body)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    messages = body.get("messages") or []
    tool_results = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
    if body.get("tools") and tool_results < int(ctl.get("tools", 0)):
        for frame in _tool_frames(body, tool_results):
            await resp.write(frame)
        return resp
    n = int(ctl.get("n", 10))
    gap = ctl.get("gap_us", 0.0) / 1e6
    hold = ctl.get("hold_s", 0.0)
    write = resp.write
    time_ns = time.time_ns
    for i in range(n):
        await write(b"%b%d%b" % (_PREFIX, time_ns(), _SUFFIX))
        if hold and i == 0:
            await asyncio.sleep(hold)
        elif gap:
            await asyncio.sleep(gap)
    await write(_FINISH % (b"stop", 10, n, 10 + n))
    return resp


def build_app() -> web.Application:
    app = web.Application(client_max_size=16 << 20)
    app.router.add_post("/v1/chat/completions", OPEN.counted(chat))
    app.router.add_post("/chat/completions", OPEN.counted(chat))
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    async def serve() -> None:
        runner = web.AppRunner(build_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
        # Collected as the relays and the served gateway are (agentgw.gctune): a full
        # collection of the provider inside a burst held every target's first deltas alike.
        OPEN.collect_when_idle()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
