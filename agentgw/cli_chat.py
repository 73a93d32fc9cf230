"""``agentgw chat <agentKey> [message]``: stream one run of a running gateway in the terminal."""

from __future__ import annotations

import os
import sys
from typing import Any

import aiohttp
import orjson


def render(event: dict[str, Any], out: Any) -> None:
    kind = event.get("type", "")
    if kind == "reasoning.delta":
        out.write(f"\x1b[2m{event['delta']}\x1b[0m")
    elif kind == "content.delta":
        out.write(event["delta"])
    elif kind in ("reasoning.end", "content.end"):
        out.write("\n")
    elif kind == "tool.start":
        out.write(f"\n[tool {event.get('toolName')} {event.get('toolId')}] ")
    elif kind == "tool.args":
        out.write(event["delta"])
    elif kind == "tool.result":
        out.write(f"\n[result] {event['result'][:500]}\n")
    elif kind == "action.start":
        out.write(f"\n[action {event.get('actionName')}]\n")
    elif kind in ("plan.update", "task.start", "task.complete", "task.fail"):
        out.write(
            f"\n[{kind}] {orjson.dumps({k: v for k, v in event.items() if k not in ('seq', 'timestamp')}).decode()}\n"
        )
    elif kind == "run.error":
        out.write(f"\n[error] {event['error'].get('code')}: {event['error'].get('message')}\n")
    elif kind in ("run.complete", "run.cancel"):
        out.write(f"\n[{kind}]\n")
    out.flush()


async def chat(agent: str, message: str | None, url: str) -> int:
    text = message if message is not None else sys.stdin.read()
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("AGENTGW_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status = 1
    async with aiohttp.ClientSession() as session:
        body = {"agentKey": agent, "message": text}
        async with session.post(f"{url.rstrip('/')}/api/ap/query", json=body, headers=headers) as resp:
            if resp.status != 200:
                print(f"agentgw chat: HTTP {resp.status}: {await resp.text()}", file=sys.stderr)
                return 1
            async for raw in resp.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue
                event = orjson.loads(line[5:])
                render(event, sys.stdout)
                if event.get("type") == "run.complete":
                    status = 0
    return status
