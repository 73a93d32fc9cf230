"""The scripted provider (both wire formats, read back by the real adapters) and its demo responder."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agentgw.providers import scripted as s
from agentgw.providers import stream_call
from agentgw.providers.base import (
    ContentDelta,
    Finish,
    ModelCall,
    Protocol,
    ProviderEvent,
    ReasoningDelta,
    ReasoningSignature,
    ToolCallDelta,
    Usage,
)
from agentgw.providers.demo import build_arguments, find_city, find_task_id, respond
from agentgw.providers.wire import ProviderClient

PROTOCOLS = ["OPENAI", "ANTHROPIC"]


def tool(
    name: str, properties: dict[str, Any] | None = None, required: list[str] | None = None
) -> dict[str, Any]:
    params = {"type": "object", "properties": properties or {}, "required": required or []}
    return {"type": "function", "function": {"name": name, "description": name, "parameters": params}}


WEATHER = tool(
    "mock_city_weather", {"city": {"type": "string"}, "date": {"type": "string"}}, ["city", "date"]
)
DATETIME = tool("city_datetime", {"city": {"type": "string"}}, ["city"])
CONFIRM = tool(
    "confirm_dialog",
    {"message": {"type": "string"}, "options": {"type": "array", "items": {"type": "string"}}},
    ["message", "options"],
)
PLAN_ADD = tool(
    "_plan_add_tasks_",
    {
        "tasks": {
            "type": "array",
            "items": {"type": "object", "properties": {"description": {"type": "string"}}},
        }
    },
    ["tasks"],
)
PLAN_UPDATE = tool(
    "_plan_update_task_", {"taskId": {"type": "string"}, "status": {"type": "string"}}, ["taskId", "status"]
)


@pytest.fixture
async def server() -> AsyncIterator[s.ScriptedProvider]:
    async with s.ScriptedProvider(demo_delay_s=0, slow_delay_s=0) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


async def run(
    server: s.ScriptedProvider,
    client: ProviderClient,
    protocol: Protocol = "OPENAI",
    messages: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> list[ProviderEvent]:
    call = ModelCall(
        protocol=protocol,
        provider_key="demo",
        base_url=server.base_url,
        api_key="demo",
        model_id="demo-model",
        messages=messages or [{"role": "user", "content": "hello"}],
        **overrides,
    )
    return [e async for e in stream_call(client, call)]


def texts(events: list[ProviderEvent], kind: type[ContentDelta] | type[ReasoningDelta]) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


def calls(events: list[ProviderEvent]) -> list[tuple[str, dict[str, Any]]]:
    found: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            entry = found.setdefault(e.index, ["", ""])
            if e.name:
                entry[0] = e.name
            entry[1] += e.arguments
    return [(name, json.loads(args)) for name, args in (found[i] for i in sorted(found))]


# ---- scripted steps, both wire formats ------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_every_step_kind_round_trips(server, client, protocol) -> None:
    server.enqueue(
        [
            s.Reasoning("Let me think.", chunks=3, signature="sig-1"),
            s.Text(["Hello", " ", "world"]),
            s.ParallelToolCalls(
                [
                    s.ToolCall("a", {"x": 1}, id="call_a", fragments=3),
                    s.ToolCall("b", '{"y": [1, 2]}', fragments=2),
                ]
            ),
            s.Usage(input=100, output=40, reasoning=7, cached=30),
            s.Finish("length"),
        ]
    )
    events = await run(server, client, protocol)
    assert sum(isinstance(e, ReasoningDelta) for e in events) == 3
    assert texts(events, ReasoningDelta) == "Let me think."
    assert [e.text for e in events if isinstance(e, ContentDelta)] == ["Hello", " ", "world"]
    assert calls(events) == [("a", {"x": 1}), ("b", {"y": [1, 2]})]
    first = [e for e in events if isinstance(e, ToolCallDelta) and e.id]
    assert first[0].id == "call_a" and first[1].id
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.input_tokens == 100 and usage.output_tokens == 40 and usage.cached_tokens == 30
    if protocol == "OPENAI":
        assert usage.reasoning_tokens == 7
    else:
        assert events.count(ReasoningSignature("sig-1")) == 1
    assert events[-1].reason == "length"  # type: ignore[union-attr]
    server.assert_complete()


async def test_openai_parallel_fragments_are_interleaved(server, client) -> None:
    server.enqueue(
        [s.ParallelToolCalls([s.ToolCall("a", "abcd", fragments=4), s.ToolCall("b", "wxyz", fragments=4)])]
    )
    events = await run(server, client)
    order = [e.index for e in events if isinstance(e, ToolCallDelta)]
    assert order == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_finish_is_inferred_when_the_script_has_none(server, client, protocol) -> None:
    server.enqueue([s.ToolCall("a", {})])
    server.enqueue([s.Text("done")])
    assert (await run(server, client, protocol))[-1] == Finish(
        "tool_calls", "tool_calls" if protocol == "OPENAI" else "tool_use"
    )
    assert (await run(server, client, protocol))[-1].reason == "stop"  # type: ignore[union-attr]


async def test_scripts_are_served_in_order_and_requests_recorded(server, client) -> None:
    server.enqueue([s.Text("first")])
    server.enqueue(s.Script([s.Text("second")]))
    assert server.pending == 2
    assert texts(await run(server, client), ContentDelta) == "first"
    assert texts(await run(server, client, "ANTHROPIC"), ContentDelta) == "second"
    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert server.requests[0].body["model"] == "demo-model"
    assert server.requests[1].headers["x-api-key"] == "demo"
    server.assert_complete()


async def test_assert_complete_reports_unused_scripts(server) -> None:
    server.enqueue([s.Text("never asked")])
    with pytest.raises(AssertionError, match="1 scripted response"):
        server.assert_complete()


async def test_signal_and_call_hooks_run_in_order(server, client) -> None:
    reached = asyncio.Event()
    seen: list[str] = []

    async def hook() -> None:
        seen.append("async")

    server.enqueue(
        [s.Text("a"), s.Signal(reached), s.Call(lambda: seen.append("sync")), s.Call(hook), s.Text("b")]
    )
    events = await run(server, client)
    assert reached.is_set() and seen == ["sync", "async"]
    assert texts(events, ContentDelta) == "ab"


async def test_non_json_request_is_rejected(server) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.base_url + "/chat/completions", data=b"not json") as resp,
    ):
        assert resp.status == 400
        assert "JSON object" in (await resp.json())["error"]["message"]


def test_pieces_split_evenly_and_keep_given_lists() -> None:
    assert s.pieces("abcdefg", 3) == ["abc", "de", "fg"]
    assert s.pieces("ab", 5) == ["a", "b"]
    assert s.pieces(["x", " ", "y"], 99) == ["x", " ", "y"]


# ---- demo responder -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_demo_answers_with_reasoning_and_content(server, client, protocol) -> None:
    events = await run(server, client, protocol, [{"role": "user", "content": "What is agentgw?"}])
    assert texts(events, ReasoningDelta)
    content = texts(events, ContentDelta)
    assert "What is agentgw?" in content
    assert sum(isinstance(e, ContentDelta) for e in events) > 5  # streamed in many deltas
    assert calls(events) == []
    assert isinstance(events[-2], Usage) and events[-1] == Finish("stop", events[-1].raw_reason)  # type: ignore[union-attr]
    assert server.demo_responses == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_demo_weather_tool_call_then_answer(server, client, protocol) -> None:
    question = {"role": "user", "content": "What's the weather in Beijing?"}
    events = await run(server, client, protocol, [question], tools=[WEATHER, DATETIME], tool_choice="auto")
    assert calls(events) == [("mock_city_weather", {"city": "Beijing", "date": dt.date.today().isoformat()})]
    assert events[-1].reason == "tool_calls"  # type: ignore[union-attr]
    call_id = next(e.id for e in events if isinstance(e, ToolCallDelta) and e.id)
    result = {
        "city": "Beijing",
        "date": "2026-02-13",
        "temperatureC": 22,
        "condition": "sunny",
        "humidity": 40,
        "windLevel": 2,
    }
    history = [
        question,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "mock_city_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "name": "mock_city_weather", "content": json.dumps(result)},
    ]
    events = await run(server, client, protocol, history, tools=[WEATHER, DATETIME], tool_choice="auto")
    assert calls(events) == []
    assert "The weather in Beijing on 2026-02-13 is sunny, 22°C" in texts(events, ContentDelta)


async def test_demo_parallel_calls_unless_disabled(server, client) -> None:
    question = [{"role": "user", "content": "weather and time in Tokyo tomorrow"}]
    events = await run(server, client, "OPENAI", question, tools=[WEATHER, DATETIME], tool_choice="auto")
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert calls(events) == [
        ("mock_city_weather", {"city": "Tokyo", "date": tomorrow}),
        ("city_datetime", {"city": "Tokyo"}),
    ]
    events = await run(
        server,
        client,
        "OPENAI",
        question,
        tools=[WEATHER, DATETIME],
        tool_choice="auto",
        parallel_tool_calls=False,
    )
    assert [name for name, _ in calls(events)] == ["mock_city_weather"]


async def test_demo_react_steps_then_stops(server, client) -> None:
    """After each result the next matching tool is called once; then it answers (no loop)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather and time in Paris"}]
    names = []
    for _ in range(4):
        events = await run(
            server,
            client,
            "OPENAI",
            messages,
            tools=[WEATHER, DATETIME],
            tool_choice="auto",
            parallel_tool_calls=False,
        )
        made = calls(events)
        if not made:
            assert "Paris" in texts(events, ContentDelta)
            break
        name, args = made[0]
        names.append(name)
        messages += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": f"c{len(names)}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": f"c{len(names)}",
                "name": name,
                "content": json.dumps({"city": "Paris", **args}),
            },
        ]
    assert names == ["mock_city_weather", "city_datetime"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_demo_plan_add_tasks_when_required(server, client, protocol) -> None:
    messages = [
        {"role": "user", "content": "Check the weather in Shanghai, then book a table, and write a summary"}
    ]
    events = await run(server, client, protocol, messages, tools=[PLAN_ADD], tool_choice="required")
    ((name, args),) = calls(events)
    assert name == "_plan_add_tasks_"
    assert [t["description"] for t in args["tasks"]] == [
        "Check the weather in Shanghai",
        "book a table",
        "write a summary",
    ]


async def test_demo_plan_tasks_for_a_single_question() -> None:
    script = respond(
        {
            "messages": [{"role": "user", "content": "Explain SSE"}],
            "tools": [PLAN_ADD],
            "tool_choice": "required",
        },
        "openai",
    )
    step = next(st for st in script.steps if isinstance(st, s.ToolCall))
    tasks = json.loads(step.arguments)["tasks"]  # type: ignore[arg-type]
    assert 2 <= len(tasks) <= 3 and all("Explain SSE" in t["description"] for t in tasks[:2])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_demo_update_task_uses_the_prompted_task_id(server, client, protocol) -> None:
    prompt = (
        "Task list:\n- a1b2c3d4 | completed | look up\n- 0f0e0d0c | init | answer\n\n"
        "Current task_id: 0f0e0d0c\nDescription: answer\nWhen done, update the task."
    )
    events = await run(
        server,
        client,
        protocol,
        [{"role": "user", "content": prompt}],
        tools=[PLAN_UPDATE, WEATHER],
        tool_choice="required",
    )
    assert calls(events) == [("_plan_update_task_", {"taskId": "0f0e0d0c", "status": "completed"})]


async def test_demo_confirm_dialog_for_confirmation_requests(server, client) -> None:
    messages = [{"role": "user", "content": "Please confirm before deleting the file"}]
    events = await run(server, client, "OPENAI", messages, tools=[CONFIRM, WEATHER], tool_choice="auto")
    ((name, args),) = calls(events)
    assert name == "confirm_dialog"
    assert args["message"] == "Please confirm before deleting the file"
    assert isinstance(args["options"], list) and args["options"]


async def test_demo_tool_choice_none_never_calls(server, client) -> None:
    messages = [{"role": "user", "content": "weather in Rome?"}]
    events = await run(server, client, "OPENAI", messages, tools=[WEATHER], tool_choice="none")
    assert calls(events) == [] and "weather in Rome?" in texts(events, ContentDelta)


async def test_demo_slow_streams_two_hundred_deltas(server, client) -> None:
    events = await run(server, client, "OPENAI", [{"role": "user", "content": "answer slow please"}])
    assert sum(isinstance(e, ContentDelta) for e in events) == 200


def test_demo_slow_uses_the_slow_delay() -> None:
    script = respond(
        {"messages": [{"role": "user", "content": "go slow"}]}, "openai", delay_s=0.03, slow_delay_s=0.1
    )
    assert script.delay_s == 0.1
    assert respond({"messages": [{"role": "user", "content": "hi"}]}, "openai", delay_s=0.03).delay_s == 0.03


def test_demo_helpers() -> None:
    assert find_city("上海明天天气") == "Shanghai"
    assert find_city("weather for Lisbon please") == "Lisbon"
    assert find_city("no city here") == "Shanghai"
    assert find_task_id("- 11111111 | completed | a\n- 22222222 | init | b", set()) == "22222222"
    assert find_task_id("taskId: 33333333", {"33333333"}) is None
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "level": {"type": "integer"},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "flags": {"type": "array", "items": {"type": "boolean"}},
            "optional": {"type": "string"},
        },
        "required": ["city", "level", "mode", "flags"],
    }
    ctx = {"question": "q", "city": "Oslo", "date": "2026-01-01"}
    assert build_arguments(schema, ctx) == {"city": "Oslo", "level": 1, "mode": "fast", "flags": [True]}


def test_demo_does_not_loop_after_many_tool_rounds() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather"}]
    for i in range(4):
        messages += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": f"c{i}", "type": "function", "function": {"name": "x", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "content": "ok"},
        ]
    script = respond({"messages": messages, "tools": [WEATHER], "tool_choice": "auto"}, "openai")
    assert not any(isinstance(st, s.ToolCall | s.ParallelToolCalls) for st in script.steps)
    assert any(isinstance(st, s.Text) for st in script.steps)


def test_demo_execute_stage_looks_at_the_current_task_only() -> None:
    prompt = (
        "Tasks:\n- aaaaaaaa | init | Check the weather in Paris\n- bbbbbbbb | init | Write a haiku\n"
        "Current taskId: {task}\nDo this task now."
    )
    tools = [WEATHER, PLAN_UPDATE]
    script = respond(
        {"messages": [{"role": "user", "content": prompt.format(task="bbbbbbbb")}], "tools": tools}, "openai"
    )
    assert not any(isinstance(st, s.ToolCall | s.ParallelToolCalls) for st in script.steps)
    answer = "".join(next(st for st in script.steps if isinstance(st, s.Text)).text)
    assert "Write a haiku" in answer
    script = respond(
        {"messages": [{"role": "user", "content": prompt.format(task="aaaaaaaa")}], "tools": tools}, "openai"
    )
    call = next(st for st in script.steps if isinstance(st, s.ToolCall))
    assert call.name == "mock_city_weather"
    assert json.loads(call.arguments)["city"] == "Paris"  # type: ignore[arg-type]
