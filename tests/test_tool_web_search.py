"""``web_search`` through the real exa-py client against a loopback fake of Exa's HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentgw.settings import load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext

API_KEY = "fake-exa-key"


@dataclass
class FakeExa:
    """Answers ``POST /search`` the way Exa does; records what it was sent."""

    server: TestServer | None = None
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 200

    async def search(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if request.headers.get("x-api-key") != API_KEY:
            return web.json_response({"error": "invalid api key"}, status=401)
        if self.status != 200:
            return web.json_response({"error": f"upstream exploded, key {API_KEY}"}, status=self.status)
        results = [
            {
                "id": f"https://example.org/{i}",
                "url": f"https://example.org/{i}",
                "title": f"Result {i} for {body['query']}",
                "publishedDate": f"2026-01-0{i + 1}T00:00:00.000Z",
                "author": "Ada" if i == 0 else None,
                "text": f"第{i}段 " + "lorem ipsum " * 100,
                "favicon": "https://example.org/favicon.ico" if i == 0 else None,
            }
            for i in range(body.get("numResults", 10))
        ]
        return web.json_response(
            {
                "requestId": "req_1",
                "resolvedSearchType": "neural",
                "results": results,
                "costDollars": {"total": 0.005},
            }
        )

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def exa(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeExa]:
    # requests (inside exa-py) honours proxy variables; loopback must go direct.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fake = FakeExa()
    app = web.Application()
    app.router.add_post("/search", fake.search)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()


def make_ctx(base_url: str, key: str = API_KEY, enabled: bool = True) -> tuple[ToolContext, list[Any]]:
    emitted: list[tuple[str, dict[str, Any]]] = []
    settings = load_settings(
        files=(),
        environ={"EXA_API_KEY": key} if key else {},
        overrides={"agent.web-search.exa.base-url": base_url, "agent.web-search.enabled": enabled},
    )
    ctx = ToolContext(
        settings=settings,
        run_id="run1",
        chat_id="chat1",
        tool_call_id="call_ws",
        emit=lambda kind, fields: emitted.append((kind, fields)),
        timeout_s=10,
    )
    return ctx, emitted


async def call(ctx: ToolContext, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    text, ok = await execute_builtin("web_search", args, ctx)
    return orjson.loads(text), ok


async def test_results_and_source_snapshots(exa: FakeExa) -> None:
    ctx, emitted = make_ctx(exa.url)
    res, ok = await call(ctx, {"query": "agent gateways", "numResults": 3})
    assert ok
    assert res["ok"] is True
    assert [r["url"] for r in res["results"]] == [f"https://example.org/{i}" for i in range(3)]
    first = res["results"][0]
    assert first["title"] == "Result 0 for agent gateways"
    assert first["publishedDate"] == "2026-01-01T00:00:00.000Z"
    assert first["author"] == "Ada"
    assert first["snippet"].startswith("第0段 lorem ipsum")
    assert len(first["snippet"]) == 500
    assert "author" not in res["results"][1]
    # What exa-py sent over the wire.
    headers, body = exa.requests[0]
    assert headers["x-api-key"] == API_KEY
    assert body["query"] == "agent gateways"
    assert body["numResults"] == 3
    # One source.snapshot per result, with the favicon as icon when there is one.
    assert [kind for kind, _ in emitted] == ["source.snapshot"] * 3
    snapshots = [fields for _, fields in emitted]
    assert [s["url"] for s in snapshots] == [r["url"] for r in res["results"]]
    assert snapshots[0]["icon"] == "https://example.org/favicon.ico"
    assert "icon" not in snapshots[1]
    assert len({s["sourceId"] for s in snapshots}) == 3
    assert all(s["title"] == r["title"] for s, r in zip(snapshots, res["results"], strict=True))


async def test_default_number_of_results(exa: FakeExa) -> None:
    ctx, _ = make_ctx(exa.url)
    res, _ = await call(ctx, {"query": "q"})
    assert len(res["results"]) == 5
    assert exa.requests[0][1]["numResults"] == 5


async def test_missing_key_is_a_normal_result(exa: FakeExa) -> None:
    ctx, emitted = make_ctx(exa.url, key="")
    res, ok = await call(ctx, {"query": "q"})
    assert not ok
    assert res["ok"] is False
    assert res["error"]["code"] == "missing_api_key"
    assert "EXA_API_KEY" in res["error"]["message"]
    assert exa.requests == [] and emitted == []


async def test_disabled_search_does_not_call_exa(exa: FakeExa) -> None:
    ctx, _ = make_ctx(exa.url, enabled=False)
    res, _ = await call(ctx, {"query": "q"})
    assert res["error"]["code"] == "web_search_disabled"
    assert exa.requests == []


async def test_exa_http_error_is_readable_and_hides_the_key(exa: FakeExa) -> None:
    exa.status = 500
    ctx, emitted = make_ctx(exa.url)
    res, ok = await call(ctx, {"query": "q"})
    assert not ok
    assert res["error"]["code"] == "search_failed"
    assert "500" in res["error"]["message"]
    assert API_KEY not in res["error"]["message"]
    assert emitted == []


async def test_unreachable_exa(exa: FakeExa) -> None:
    ctx, _ = make_ctx("http://127.0.0.1:1")
    res, _ = await call(ctx, {"query": "q"})
    assert res["error"]["code"] == "search_failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "query: is required"),
        ({"query": "   "}, "query: must not be blank"),
        ({"query": {"q": 1}}, "query: must be a string"),
        ({"query": "x" * 5000}, "query: is too long"),
        ({"query": "q", "numResults": 0}, "numResults: must be between 1 and 25"),
        ({"query": "q", "numResults": 10**9}, "numResults: must be between 1 and 25"),
        ({"query": "q", "numResults": [3]}, "numResults: must be an integer"),
    ],
)
async def test_bad_arguments(exa: FakeExa, args: dict[str, Any], message: str) -> None:
    ctx, _ = make_ctx(exa.url)
    text, ok = await execute_builtin("web_search", args, ctx)
    assert not ok
    payload = orjson.loads(text)
    assert (payload["tool"], payload["code"]) == ("web_search", "invalid_argument")
    assert message in payload["error"]
    assert exa.requests == []
