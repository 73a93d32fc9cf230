"""The streaming core through real HTTP: event contract, modes, streaming law, faults."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from aiohttp import web

from agentgw import appkeys
from agentgw.events import validate_event
from agentgw.providers.scripted import (
    Close,
    Delay,
    Finish,
    Hang,
    HttpError,
    MalformedChunk,
    MidStreamError,
    ParallelToolCalls,
    Reasoning,
    ScriptedProvider,
    Signal,
    Text,
    ToolCall,
    Usage,
    WaitFor,
)
from tests.conftest import GatewayFactory
from tests.gateway import parse_sse, serve_app, types_of

REACT = {
    "name": "React test",
    "mode": "REACT",
    "modelConfig": {"modelKey": "demo"},
    "toolConfig": {"backends": ["mock_city_weather", "city_datetime"]},
    "react": {"systemPrompt": "You are a weather assistant."},
}
ONESHOT = {
    "mode": "ONESHOT",
    "modelConfig": {"modelKey": "demo"},
    "plain": {"systemPrompt": "Answer briefly."},
}


def assert_contract(events: list[dict[str, Any]]) -> None:
    """Every event conforms to the published shapes; seq is 1..n; the stream ends once."""
    for event in events:
        assert validate_event(event) == [], (event, validate_event(event))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    terminal = [e for e in events if e["type"] in ("run.complete", "run.cancel", "run.error")]
    assert len(terminal) == 1 and events[-1] is terminal[0]


def deltas(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == f"{kind}.delta")


async def test_oneshot_streams_reasoning_then_content(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    provider.enqueue(
        [Reasoning("Thinking it over", chunks=3), Text("Hello there, friend", chunks=4), Usage(20, 7)]
    )
    events = await gw.query({"agentKey": "one", "message": "hi"})
    assert_contract(events)
    provider.assert_complete()
    kinds = types_of(events)
    assert kinds[:3] == ["request.query", "chat.start", "run.start"]
    assert kinds[3:] == [
        "reasoning.start",
        *["reasoning.delta"] * 3,
        "reasoning.end",
        "content.start",
        *["content.delta"] * 4,
        "content.end",
        "usage",
        "run.complete",
    ]
    run_id = events[2]["runId"]
    assert events[3]["reasoningId"] == f"{run_id}_r_1"
    assert events[8]["contentId"] == f"{run_id}_c_1"
    assert deltas(events, "reasoning") == "Thinking it over"
    assert deltas(events, "content") == "Hello there, friend"
    usage = next(e for e in events if e["type"] == "usage")
    assert (usage["inputTokens"], usage["outputTokens"], usage["estimated"]) == (20, 7, False)
    done = events[-1]
    assert done["finishReason"] == "end_turn"
    assert done["usage"]["inputTokens"] == 20
    # requestId defaults to the runId; the chat id is a fresh UUID returned in chat.start.
    assert events[0]["requestId"] == run_id
    assert events[1]["chatId"] == events[0]["chatId"]
    assert events[1]["chatName"] == "hi"


async def test_provider_request_shape(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"r": REACT})
    provider.enqueue([Text("ok")])
    await gw.query({"agentKey": "r", "message": "plain question"})
    body = provider.requests[0].body
    headers = provider.requests[0].headers
    assert provider.requests[0].path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer test-key-demo"
    assert headers["Accept"] == "text/event-stream"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith("You are a weather assistant.")
    assert body["messages"][-1] == {"role": "user", "content": "plain question"}
    assert {t["function"]["name"] for t in body["tools"]} == {"mock_city_weather", "city_datetime"}
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False
    assert body["max_tokens"] == 4096


async def test_react_runs_backend_tool_and_answers(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"r": REACT})
    provider.enqueue(
        [
            Reasoning("Need the weather", chunks=2),
            ToolCall(
                "mock_city_weather", {"city": "Shanghai", "date": "2026-11-24"}, id="call_w1", fragments=4
            ),
            Finish("tool_calls"),
            Usage(30, 12),
        ]
    )
    provider.enqueue([Text("It is mild in Shanghai.", chunks=3), Usage(60, 8)])
    events = await gw.query({"agentKey": "r", "message": "weather in Shanghai?"})
    assert_contract(events)
    provider.assert_complete()
    kinds = types_of(events)
    start = kinds.index("tool.start")
    assert kinds[start : start + 6] == ["tool.start", *["tool.args"] * 4, "tool.end"]
    tool_start = events[start]
    assert tool_start["toolId"] == "call_w1"
    assert tool_start["toolName"] == "mock_city_weather" and tool_start["toolType"] == "function"
    assert [e["chunkIndex"] for e in events if e["type"] == "tool.args"] == [0, 1, 2, 3]
    args = orjson.loads("".join(e["delta"] for e in events if e["type"] == "tool.args"))
    assert args == {"city": "Shanghai", "date": "2026-11-24"}
    result = next(e for e in events if e["type"] == "tool.result")
    weather = orjson.loads(result["result"])
    assert weather["city"] == "Shanghai" and "temperatureC" in weather
    # The second model call carries the tool call and its result.
    second = provider.requests[1].body["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["id"] == "call_w1"
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": "call_w1",
        "name": "mock_city_weather",
        "content": result["result"],
    }
    # New block ids after the tool result.
    content_ids = {e["contentId"] for e in events if e["type"] == "content.start"}
    assert content_ids == {f"{events[2]['runId']}_c_1"}
    assert deltas(events, "content") == "It is mild in Shanghai."
    assert len([e for e in events if e["type"] == "usage"]) == 2


async def test_streaming_law_one_delta_one_event_at_once(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """The provider sends delta i+1 only after the client has received the event for delta i."""
    gw = await make_gateway({"one": ONESHOT})
    n = 12
    gates = [asyncio.Event() for _ in range(n)]
    steps: list[Any] = []
    for i in range(n):
        if i:
            steps.append(WaitFor(gates[i - 1]))
        steps.append(Text([f"d{i} "]))
    provider.enqueue(steps)
    received: list[str] = []
    async with asyncio.timeout(20):
        async for event in gw.stream({"agentKey": "one", "message": "count"}):
            if event["type"] == "content.delta":
                received.append(event["delta"])
                gates[len(received) - 1].set()
            if event["type"] in ("run.complete", "run.error"):
                assert event["type"] == "run.complete"
                break
    assert received == [f"d{i} " for i in range(n)]


async def test_parallel_backend_calls_run_concurrently(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    """Two HTTP tools of one turn: each answers only once both requests have arrived."""
    arrived: list[str] = []
    both = asyncio.Event()

    async def tool_api(request: web.Request) -> web.Response:
        body = await request.json()
        arrived.append(body["q"])
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return web.json_response({"answer": body["q"].upper()})

    app = web.Application()
    app.router.add_post("/tool", tool_api)
    runner, port = await serve_app(app)
    try:
        (dirs["tools"] / "lookup.backend").write_text(
            orjson.dumps(
                {
                    "tools": [
                        {
                            "type": "function",
                            "name": "lookup",
                            "description": "look up",
                            "toolApi": f"http://127.0.0.1:{port}/tool",
                            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                        }
                    ]
                }
            ).decode()
        )
        agent = {**ONESHOT, "toolConfig": {"backends": ["lookup"]}}
        gw = await make_gateway({"par": agent})
        provider.enqueue(
            [
                ParallelToolCalls(
                    [
                        ToolCall("lookup", {"q": "a"}, id="c1", fragments=2),
                        ToolCall("lookup", {"q": "b"}, id="c2", fragments=2),
                    ]
                ),
                Finish("tool_calls"),
            ]
        )
        provider.enqueue([Text("done")])
        events = await gw.query({"agentKey": "par", "message": "look both up"})
        assert_contract(events)
        results = {e["toolId"]: orjson.loads(e["result"]) for e in events if e["type"] == "tool.result"}
        assert results == {"c1": {"answer": "A"}, "c2": {"answer": "B"}}
        # Interleaved argument fragments were routed by index.
        args = {
            tid: "".join(e["delta"] for e in events if e["type"] == "tool.args" and e["toolId"] == tid)
            for tid in ("c1", "c2")
        }
        assert orjson.loads(args["c1"]) == {"q": "a"} and orjson.loads(args["c2"]) == {"q": "b"}
        # tool.end of both go out before any result.
        kinds = types_of(events)
        assert max(i for i, k in enumerate(kinds) if k == "tool.end") < kinds.index("tool.result")
        assert events[-1]["type"] == "run.complete"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("steps", "code", "needle"),
    [
        ([HttpError(500, {"error": {"message": "boom inside"}})], "provider_http_error", "boom inside"),
        ([HttpError(429, {"error": {"message": "slow down"}})], "provider_http_error", "429"),
        ([HttpError(400, {"error": {"message": "bad param"}})], "provider_http_error", "bad param"),
        ([Text("partial"), MalformedChunk()], "provider_malformed_chunk", ""),
        ([Text("partial"), Close()], "provider_early_close", ""),
        (
            [Text("partial"), MidStreamError("Token limit reached", 400)],
            "provider_stream_error",
            "Token limit",
        ),
        ([Text("partial"), Hang()], "provider_timeout", ""),
    ],
)
async def test_upstream_faults_end_in_run_error(
    make_gateway: GatewayFactory, provider: ScriptedProvider, steps: list[Any], code: str, needle: str
) -> None:
    agent = {**ONESHOT, "budget": {"runTimeoutMs": 10000, "model": {"maxCalls": 3, "timeoutMs": 400}}}
    gw = await make_gateway({"one": agent})
    provider.enqueue(steps)
    async with asyncio.timeout(8):
        events = await gw.query({"agentKey": "one", "message": "hi"})
    assert_contract(events)
    err = events[-1]
    assert err["type"] == "run.error", err
    assert err["error"]["code"] == code
    assert needle in err["error"]["message"]
    assert "demo" in err["error"]["message"]  # names the provider


async def test_refused_connection_is_a_run_error(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway(
        {"one": ONESHOT}, **{"agent.providers": {"demo": {"base-url": "http://127.0.0.1:9/v1"}}}
    )
    async with asyncio.timeout(8):
        events = await gw.query({"agentKey": "one", "message": "hi"})
    assert events[-1]["type"] == "run.error"
    assert events[-1]["error"]["code"] == "provider_connect_error"
    assert events[-1]["error"]["retriable"] is True


async def test_retry_only_before_first_delta(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    agent = {**ONESHOT, "budget": {"model": {"maxCalls": 3, "timeoutMs": 5000, "retryCount": 1}}}
    gw = await make_gateway({"one": agent})
    provider.enqueue([HttpError(503, {"error": {"message": "busy"}})])
    provider.enqueue([Text("second try works")])
    events = await gw.query({"agentKey": "one", "message": "hi"})
    assert events[-1]["type"] == "run.complete"
    assert deltas(events, "content") == "second try works"
    assert len(provider.requests) == 2
    # After a delta went out, a failure is not retried.
    provider.enqueue([Text("half"), Close()])
    provider.enqueue([Text("never used")])
    events = await gw.query({"agentKey": "one", "message": "again"})
    assert events[-1]["type"] == "run.error"
    assert provider.pending == 1


async def test_model_call_budget_ends_run(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    agent = {**REACT, "budget": {"model": {"maxCalls": 2, "timeoutMs": 5000}}}
    gw = await make_gateway({"r": agent})
    for i in range(2):
        provider.enqueue([ToolCall("city_datetime", {"city": "Tokyo"}, id=f"c{i}"), Finish("tool_calls")])
    events = await gw.query({"agentKey": "r", "message": "loop"})
    assert events[-1]["type"] == "run.error"
    assert events[-1]["error"]["code"] == "budget_exceeded"
    assert "model.maxCalls" in events[-1]["error"]["message"]


async def test_run_timeout(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    agent = {**ONESHOT, "budget": {"runTimeoutMs": 300, "model": {"maxCalls": 3, "timeoutMs": 5000}}}
    gw = await make_gateway({"one": agent})
    provider.enqueue([Text("a"), Delay(2.0), Text("b")])
    async with asyncio.timeout(5):
        events = await gw.query({"agentKey": "one", "message": "hi"})
    assert events[-1]["type"] == "run.error"
    assert events[-1]["error"]["code"] == "run_timeout"


async def test_tool_errors_reach_the_model(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"r": REACT})
    provider.enqueue([ToolCall("city_datetime", "{not json", id="bad1"), Finish("tool_calls")])
    provider.enqueue([ToolCall("no_such_tool", {}, id="bad2"), Finish("tool_calls")])
    provider.enqueue([Text("sorry")])
    events = await gw.query({"agentKey": "r", "message": "x"})
    assert events[-1]["type"] == "run.complete"
    results = [orjson.loads(e["result"]) for e in events if e["type"] == "tool.result"]
    assert results[0]["ok"] is False and results[0]["tool"] == "city_datetime"
    assert "not valid JSON" in results[0]["error"]
    assert results[1]["ok"] is False and "unknown tool" in results[1]["error"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"agentKey": "one"}, 400, "message is required"),
        ({"agentKey": "one", "message": "   "}, 400, "blank"),
        ({"agentKey": "one", "message": 5}, 400, "message must be a string"),
        ({"agentKey": "nope", "message": "hi"}, 400, "unknown agent: nope"),
        ({"agentKey": "one", "message": "hi", "chatId": "../../etc"}, 400, "chatId"),
        ({"agentKey": "one", "message": "hi", "references": "x"}, 400, "references must be an array"),
        ({"agentKey": "one", "message": "hi", "params": []}, 400, "params must be an object"),
        ([1, 2], 400, "JSON object"),
    ],
)
async def test_bad_queries_get_an_envelope_error(
    make_gateway: GatewayFactory, body: Any, status: int, needle: str
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    code, payload = await gw.post("/api/ap/query", body)
    assert code == status
    assert payload["code"] == status and payload["data"] == {}
    assert needle in payload["msg"]


async def test_oversized_and_invalid_bodies(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway({"one": ONESHOT})
    async with gw.session.post(
        gw.url("/api/ap/query"),
        data=io.BytesIO(b"x" * (2 << 20)),
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413
        assert "too large" in (await resp.json())["msg"]
    async with gw.session.post(
        gw.url("/api/ap/query"), data=b"{nope", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert "not valid JSON" in (await resp.json())["msg"]


async def test_default_agent_and_sse_headers(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"b_agent": ONESHOT, "a_agent": ONESHOT})
    provider.enqueue([Text("hi")])
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "auto", "message": "hi"}) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["Cache-Control"] == "no-cache, no-transform"
        assert resp.headers["X-Accel-Buffering"] == "no"
        raw = await resp.read()
    assert b'id: 1\nevent: message\ndata: {"seq":1,"type":"request.query","timestamp":' in raw
    assert b'"agentKey":"a_agent"' in raw


async def test_client_disconnect_is_not_a_cancel_and_leaves_no_task(
    make_gateway: GatewayFactory, provider: ScriptedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    caplog.set_level(logging.INFO)
    reached = asyncio.Event()
    provider.enqueue([Text("first"), Signal(reached), Delay(0.3), Text(" second")])
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "one", "message": "hi"}) as resp:
        await resp.content.readuntil(b"content.delta")
        await asyncio.wait_for(reached.wait(), 5)
    # The client is gone; the run finishes on its own and no task is left behind.
    runs = gw.app[appkeys.RUNS]
    assert await runs.wait_idle(5)
    run = next(iter(runs.runs.values()))
    events = parse_sse(b"".join(run.log.frames))
    assert events[-1]["type"] == "run.complete"
    assert "".join(e.get("delta", "") for e in events if e["type"] == "content.delta") == "first second"
    # Kept for resuming, the finished run holds its frames but not its task (nor its coroutine).
    assert run.task is None and runs.active_tasks() == 0
    # A client going away is normal: no error in the log, no 500 written after the stream.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_client_reset_mid_stream_is_not_an_error(
    make_gateway: GatewayFactory, provider: ScriptedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A tab closed mid-answer (a reset socket, as curl piped into head does): the next write
    fails; the run goes on and nothing is logged as an error."""
    gw = await make_gateway({"one": ONESHOT})
    caplog.set_level(logging.INFO)
    reached = asyncio.Event()
    provider.enqueue([Text("first"), Signal(reached)] + [Delay(0.02), Text(" more")] * 10)
    parts = urlsplit(gw.url("/api/ap/query"))
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = orjson.dumps({"agentKey": "one", "message": "hi"})
    writer.write(
        b"POST /api/ap/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    await reader.readuntil(b"content.delta")
    await asyncio.wait_for(reached.wait(), 5)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    writer.close()
    runs = gw.app[appkeys.RUNS]
    assert await runs.wait_idle(5)
    events = parse_sse(b"".join(next(iter(runs.runs.values())).log.frames))
    assert events[-1]["type"] == "run.complete"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_provider_error_never_echoes_the_api_key(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    key = gw.settings.agent.providers["demo"].api_key
    provider.enqueue([HttpError(401, {"error": {"message": f"Incorrect API key provided: {key}"}})])
    events = await gw.query({"agentKey": "one", "message": "hi"})
    err = events[-1]
    assert err["type"] == "run.error" and "401" in err["error"]["message"]
    assert key not in orjson.dumps(events).decode() and "***" in err["error"]["message"]
