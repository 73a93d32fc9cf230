"""HTTP backend tools (``toolApi``) against a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentgw.errors import ToolError
from agentgw.settings import load_settings
from agentgw.tools import call_http_tool
from agentgw.tools.base import ToolContext


async def echo(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(
        {
            "received": body,
            "runId": request.headers.get("X-AgentGW-Run-Id"),
            "toolCallId": request.headers.get("X-AgentGW-Tool-Call-Id"),
            "contentType": request.headers.get("Content-Type"),
        }
    )


async def fail(request: web.Request) -> web.Response:
    return web.Response(status=503, text="backend overloaded, try later")


async def html(request: web.Request) -> web.Response:
    return web.Response(text="<html>login page</html>", content_type="text/html")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def listing(request: web.Request) -> web.Response:
    return web.json_response([1, "two", {"three": 3}])


async def scalar(request: web.Request) -> web.Response:
    return web.json_response(42)


async def text_value(request: web.Request) -> web.Response:
    return web.json_response("plain answer 中文")


async def huge(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    await resp.prepare(request)
    await resp.write(b"[" + b'"xxxxxxxx",' * 500_000 + b"1]")
    return resp


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    for path, handler in (
        ("/echo", echo), ("/fail", fail), ("/html", html), ("/slow", slow),
        ("/list", listing), ("/scalar", scalar), ("/text", text_value), ("/huge", huge),
    ):  # fmt: skip
        app.router.add_post(path, handler)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


def make_ctx(http: aiohttp.ClientSession | None = None, timeout_s: float = 10.0) -> ToolContext:
    return ToolContext(
        settings=load_settings(files=(), environ={}),
        run_id="run7",
        chat_id="chat7",
        tool_call_id="call7",
        http=http,
        timeout_s=timeout_s,
    )


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def test_arguments_posted_as_json_and_reply_returned(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        result = await call_http_tool(
            url(server, "/echo"), "echo", {"city": "上海", "n": [1, 2]}, make_ctx(session)
        )
    assert result == {
        "received": {"city": "上海", "n": [1, 2]},
        "runId": "run7",
        "toolCallId": "call7",
        "contentType": "application/json",
    }


async def test_works_without_a_shared_session(server: TestServer) -> None:
    assert await call_http_tool(url(server, "/list"), "list", {}, make_ctx()) == [1, "two", {"three": 3}]
    assert await call_http_tool(url(server, "/scalar"), "scalar", {}, make_ctx()) == "42"
    assert await call_http_tool(url(server, "/text"), "text", {}, make_ctx()) == "plain answer 中文"


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/fail", "http_tool_error", "HTTP tool t answered HTTP 503: backend overloaded, try later"),
        ("/html", "http_tool_bad_response", "with a body that is not JSON: <html>login page</html>"),
        ("/missing", "http_tool_error", "answered HTTP 404"),
        ("/huge", "http_tool_bad_response", "more than 4194304 bytes"),
    ],
)
async def test_failures_are_tool_errors(server: TestServer, path: str, code: str, message: str) -> None:
    with pytest.raises(ToolError) as info:
        await call_http_tool(url(server, path), "t", {}, make_ctx())
    assert info.value.code == code
    assert message in info.value.message


async def test_timeout_is_a_tool_error(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ToolError) as info:
            await call_http_tool(url(server, "/slow"), "slowpoke", {}, make_ctx(session, timeout_s=0.2))
    assert info.value.code == "http_tool_timeout"
    assert info.value.message == "HTTP tool slowpoke timed out after 0.2 s"


async def test_unreachable_is_a_tool_error() -> None:
    with pytest.raises(ToolError) as info:
        await call_http_tool("http://127.0.0.1:1/x", "gone", {}, make_ctx())
    assert info.value.code == "http_tool_unreachable"
    assert info.value.message.startswith("HTTP tool gone is unreachable")


async def test_unencodable_arguments_are_a_tool_error(server: TestServer) -> None:
    args: dict[str, Any] = {"n": 2**70}
    with pytest.raises(ToolError) as info:
        await call_http_tool(url(server, "/echo"), "t", args, make_ctx())
    assert info.value.code == "invalid_argument"
