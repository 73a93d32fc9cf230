"""What the adapters send (SPEC §11.6), read from the scripted server's recorded requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentgw.providers import scripted as s
from agentgw.providers import stream_call
from agentgw.providers.base import ModelCall, Protocol
from agentgw.providers.scripted import RecordedRequest
from agentgw.providers.wire import ProviderClient

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "mock_city_weather",
        "description": "Weather of a city on a date",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
            "required": ["city", "date"],
        },
    },
}

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "system", "content": "Skills: none."},
    {"role": "user", "content": "Weather in Paris and Rome?", "_runId": "r1"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Two cities, two calls.",
        "_thinking_signature": "sig-abc",
        "_reasoningId": "r_1",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": "mock_city_weather",
                    "arguments": '{"city":"Paris","date":"2026-02-13"}',
                },
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "mock_city_weather", "arguments": '{"city":"Rome","date":"2026-02-13"}'},
            },
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "mock_city_weather",
        "content": '{"temperatureC": 11}',
    },
    {
        "role": "tool",
        "tool_call_id": "call_2",
        "name": "mock_city_weather",
        "content": '{"temperatureC": 15}',
    },
    {"role": "user", "content": "And tomorrow?"},
]


@pytest.fixture
async def server() -> AsyncIterator[s.ScriptedProvider]:
    async with s.ScriptedProvider(demo_delay_s=0) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


async def send(
    server: s.ScriptedProvider,
    client: ProviderClient,
    protocol: Protocol = "OPENAI",
    **overrides: Any,
) -> RecordedRequest:
    fields: dict[str, Any] = {
        "protocol": protocol,
        "provider_key": "acme",
        "base_url": server.base_url,
        "api_key": "sk-live-123",
        "model_id": "acme-chat",
        "messages": [{"role": "user", "content": "hello"}],
    }
    fields.update(overrides)
    server.enqueue([s.Text("ok")])
    before = len(server.requests)
    async for _ in stream_call(client, ModelCall(**fields)):
        pass
    server.assert_complete()
    assert len(server.requests) == before + 1
    return server.requests[-1]


# ---- OpenAI-style ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "protocol", "new_api_path", "path"),
    [
        ("/v1", "OPENAI", None, "/v1/chat/completions"),
        ("/v1/", "OPENAI", None, "/v1/chat/completions"),
        ("", "OPENAI", None, "/v1/chat/completions"),
        ("/api/paas/v4", "OPENAI", None, "/api/paas/v4/chat/completions"),
        ("/compatible-mode", "OPENAI", None, "/compatible-mode/v1/chat/completions"),
        ("", "NEWAPI_OPENAI_COMPATIBLE", "/v1/chat/completions", "/v1/chat/completions"),
        ("/proxy", "NEWAPI_OPENAI_COMPATIBLE", "/api/openai/chat", "/proxy/api/openai/chat"),
        ("", "NEWAPI_OPENAI_COMPATIBLE", "custom/completions", "/custom/completions"),
    ],
)
async def test_openai_url_forms(server, client, suffix, protocol, new_api_path, path) -> None:
    root = server.base_url.removesuffix("/v1")
    extra = {"new_api_path": new_api_path} if new_api_path else {}
    req = await send(server, client, protocol, base_url=root + suffix, **extra)
    assert req.path == path


async def test_openai_headers(server, client) -> None:
    req = await send(server, client)
    assert req.headers["Authorization"] == "Bearer sk-live-123"
    assert req.headers["Accept"] == "text/event-stream"
    assert req.headers["Content-Type"] == "application/json"
    assert "x-api-key" not in {k.lower() for k in req.headers}


async def test_no_key_means_no_authorization_header(server, client) -> None:
    req = await send(server, client, api_key="")
    assert "Authorization" not in req.headers


async def test_openai_minimal_body(server, client) -> None:
    req = await send(server, client)
    assert req.body == {
        "model": "acme-chat",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 4096,
    }


async def test_openai_messages_tools_and_sampling(server, client) -> None:
    req = await send(
        server,
        client,
        messages=CONVERSATION,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
        max_tokens=1000,
        temperature=0.2,
        top_p=0.9,
    )
    body = req.body
    assert body["max_tokens"] == 1000
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user", "assistant", "tool", "tool", "user"]
    assert all(not k.startswith("_") for m in messages for k in m)  # internal keys stripped
    assistant = messages[3]
    assert assistant["content"] == ""  # tool-call turns carry an empty string, never null
    assert assistant["reasoning_content"] == "Two cities, two calls."  # the engine chose to echo it
    assert [tc["id"] for tc in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "mock_city_weather",
        "arguments": '{"city":"Paris","date":"2026-02-13"}',
    }
    assert messages[4] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "mock_city_weather",
        "content": '{"temperatureC": 11}',
    }
    assert all(isinstance(m["content"], str) for m in messages)


async def test_openai_no_tools_when_choice_is_none_or_list_empty(server, client) -> None:
    body = (
        await send(server, client, tools=[WEATHER_TOOL], tool_choice="none", parallel_tool_calls=False)
    ).body
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body
    body = (await send(server, client, tools=[], tool_choice="required")).body
    assert "tools" not in body and "tool_choice" not in body
    body = (await send(server, client, tools=[WEATHER_TOOL], tool_choice="required")).body
    assert body["tool_choice"] == "required"
    assert "parallel_tool_calls" not in body  # only when the engine sets it


async def test_reasoning_message_key_absent_unless_engine_sets_it(server, client) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": None},
        {"role": "user", "content": [{"type": "text", "text": "multi"}, {"type": "text", "text": "part"}]},
    ]
    body = (await send(server, client, messages=messages)).body
    assert body["messages"][1] == {"role": "assistant", "content": "a"}
    assert body["messages"][2]["content"] == "multipart"


@pytest.mark.parametrize(
    ("base", "model", "enabled", "is_reasoner", "expected", "absent"),
    [
        # DashScope / Qwen: enable_thinking both ways
        (
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "qwen-plus",
            True,
            False,
            {"enable_thinking": True},
            ["reasoning_effort"],
        ),
        ("{root}/v1", "qwen3-32b", False, False, {"enable_thinking": False}, ["reasoning_effort"]),
        ("{root}/v1", "qwq-32b", True, True, {}, ["enable_thinking", "reasoning_effort", "temperature"]),
        # OpenAI-style: reasoning_effort only when enabled
        ("{root}/v1", "gpt-5-mini", True, False, {"reasoning_effort": "high"}, ["enable_thinking"]),
        ("{root}/v1", "gpt-4o", False, False, {"temperature": 0.5}, ["reasoning_effort", "enable_thinking"]),
        # GLM
        (
            "{root}/api/paas/v4",
            "glm-4.7",
            False,
            False,
            {"thinking": {"type": "disabled"}},
            ["reasoning_effort"],
        ),
        # DeepSeek: the model id decides; no knob, and a reasoner gets no sampling params
        (
            "{root}/v1",
            "deepseek-reasoner",
            True,
            True,
            {},
            ["reasoning_effort", "temperature", "top_p", "thinking"],
        ),
    ],
)
async def test_reasoning_knobs_by_family(
    server, client, base, model, enabled, is_reasoner, expected, absent
) -> None:
    root = server.base_url.removesuffix("/v1")
    if "dashscope" in base:
        # the family is read from the host; the request itself goes to the loopback server
        from agentgw.providers.openai import build_request

        call = ModelCall(
            protocol="OPENAI",
            provider_key="bailian",
            base_url=base,
            api_key="k",
            model_id=model,
            messages=[],
            reasoning_enabled=enabled,
        )
        body = build_request(call)[2]
    else:
        body = (
            await send(
                server,
                client,
                base_url=base.format(root=root),
                model_id=model,
                reasoning_enabled=enabled,
                reasoning_effort="HIGH",
                is_reasoner=is_reasoner,
                temperature=0.5,
                top_p=0.8,
            )
        ).body
    for key, value in expected.items():
        assert body[key] == value
    for key in absent:
        assert key not in body


def test_openai_reasoner_on_openai_gets_max_completion_tokens() -> None:
    from agentgw.providers.openai import build_request

    call = ModelCall(
        protocol="OPENAI",
        provider_key="openai",
        base_url="https://api.openai.com/v1",
        api_key="k",
        model_id="o4-mini",
        messages=[],
        is_reasoner=True,
        reasoning_enabled=True,
        reasoning_effort="LOW",
        temperature=0.3,
    )
    url, _, body = build_request(call)
    assert url == "https://api.openai.com/v1/chat/completions"
    assert body["max_completion_tokens"] == 4096 and "max_tokens" not in body
    assert body["reasoning_effort"] == "low"
    assert "temperature" not in body


# ---- Anthropic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "path"), [("/v1", "/v1/messages"), ("", "/v1/messages"), ("/", "/v1/messages")]
)
async def test_anthropic_url_forms(server, client, suffix, path) -> None:
    root = server.base_url.removesuffix("/v1")
    req = await send(server, client, "ANTHROPIC", base_url=root + suffix)
    assert req.path == path


async def test_anthropic_headers_and_minimal_body(server, client) -> None:
    req = await send(server, client, "ANTHROPIC")
    assert req.headers["x-api-key"] == "sk-live-123"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["Accept"] == "text/event-stream"
    assert "Authorization" not in req.headers
    assert req.body == {
        "model": "acme-chat",
        "max_tokens": 4096,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }


async def test_anthropic_mapping_of_system_tools_and_results(server, client) -> None:
    req = await send(
        server,
        client,
        "ANTHROPIC",
        messages=CONVERSATION,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
        temperature=0.4,
        reasoning_enabled=True,
        reasoning_effort="LOW",
    )
    body = req.body
    assert body["system"] == "You are terse.\n\nSkills: none."
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in body
    assert body["tools"] == [
        {
            "name": "mock_city_weather",
            "description": "Weather of a city on a date",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0] == {"role": "user", "content": "Weather in Paris and Rome?"}
    assert messages[1]["content"] == [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "sig-abc"},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "mock_city_weather",
            "input": {"city": "Paris", "date": "2026-02-13"},
        },
        {
            "type": "tool_use",
            "id": "call_2",
            "name": "mock_city_weather",
            "input": {"city": "Rome", "date": "2026-02-13"},
        },
    ]
    # both results and the next question share one user turn, results first
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperatureC": 11}'},
        {"type": "tool_result", "tool_use_id": "call_2", "content": '{"temperatureC": 15}'},
        {"type": "text", "text": "And tomorrow?"},
    ]


@pytest.mark.parametrize(
    ("choice", "wire"), [("none", "none"), ("auto", "auto"), ("required", "any"), (None, "auto")]
)
async def test_anthropic_tool_choice(server, client, choice, wire) -> None:
    body = (await send(server, client, "ANTHROPIC", tools=[WEATHER_TOOL], tool_choice=choice)).body
    assert body["tool_choice"] == {"type": wire}


@pytest.mark.parametrize(("effort", "budget"), [("LOW", 1024), ("MEDIUM", 4096), ("HIGH", 16384)])
async def test_anthropic_thinking_budget(server, client, effort, budget) -> None:
    body = (
        await send(
            server,
            client,
            "ANTHROPIC",
            reasoning_enabled=True,
            reasoning_effort=effort,
            max_tokens=2048,
            temperature=0.7,
            top_p=0.9,
        )
    ).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] > budget
    assert "temperature" not in body and "top_p" not in body


async def test_anthropic_no_thinking_on_forced_tool_turns(server, client) -> None:
    body = (
        await send(
            server, client, "ANTHROPIC", reasoning_enabled=True, tools=[WEATHER_TOOL], tool_choice="required"
        )
    ).body
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "any"}


async def test_anthropic_thinking_blocks_only_echoed_with_thinking_on(server, client) -> None:
    body = (await send(server, client, "ANTHROPIC", messages=CONVERSATION, tools=[WEATHER_TOOL])).body
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]


async def test_anthropic_assistant_without_signature_sends_no_thinking_block(server, client) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "plain answer", "reasoning_content": "hidden"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "next"},
    ]
    body = (await send(server, client, "ANTHROPIC", messages=messages)).body
    assert body["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "plain answer"},
        {"role": "user", "content": "next"},
    ]
