"""HTTP backend tools: a capability file's ``toolApi`` URL called with the arguments.

The gateway POSTs the arguments as a JSON object; the JSON reply is the tool result.
Headers ``X-AgentGW-Run-Id``, ``X-AgentGW-Chat-Id`` and ``X-AgentGW-Tool-Call-Id`` let
the tool correlate calls. Non-2xx replies, non-JSON bodies, oversized bodies, timeouts
and connection failures become a :class:`ToolError` with the status and a body excerpt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from agentgw.errors import ToolError
from agentgw.tools.base import ToolContext, ToolResult

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_EXCERPT = 300


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        buf += chunk
        if len(buf) > MAX_RESPONSE_BYTES:
            raise ToolError(
                f"HTTP tool replied with more than {MAX_RESPONSE_BYTES} bytes", "http_tool_bad_response"
            )
    return bytes(buf)


async def _post(
    session: aiohttp.ClientSession, url: str, name: str, args: dict[str, Any], ctx: ToolContext
) -> ToolResult:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-AgentGW-Run-Id": ctx.run_id,
        "X-AgentGW-Chat-Id": ctx.chat_id,
        "X-AgentGW-Tool-Call-Id": ctx.tool_call_id,
    }
    async with session.post(url, data=orjson.dumps(args), headers=headers) as resp:
        body = await _read_capped(resp)
        excerpt = body[:_EXCERPT].decode("utf-8", errors="replace")
        if not 200 <= resp.status < 300:
            raise ToolError(f"HTTP tool {name} answered HTTP {resp.status}: {excerpt}", "http_tool_error")
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ToolError(
                f"HTTP tool {name} answered HTTP {resp.status} with a body that is not JSON: {excerpt}",
                "http_tool_bad_response",
            ) from None
    if isinstance(value, dict | list | str):
        return value
    return orjson.dumps(value).decode()


async def call_http_tool(url: str, name: str, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """POST ``args`` to ``url`` and return the JSON reply (see the module docstring)."""
    timeout = aiohttp.ClientTimeout(total=ctx.timeout_s)
    try:
        async with asyncio.timeout(ctx.timeout_s):
            if ctx.http is not None:
                return await _post(ctx.http, url, name, args, ctx)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                return await _post(session, url, name, args, ctx)
    except TimeoutError:
        raise ToolError(
            f"HTTP tool {name} timed out after {ctx.timeout_s:g} s", "http_tool_timeout"
        ) from None
    except aiohttp.ClientError as exc:
        raise ToolError(f"HTTP tool {name} is unreachable: {exc}", "http_tool_unreachable") from None
    except TypeError as exc:  # orjson could not encode the arguments
        raise ToolError(f"HTTP tool {name}: arguments are not JSON: {exc}", "invalid_argument") from None
