"""Real provider transcripts replayed byte for byte through loopback HTTP into the adapters.

Every file of ``tests/fixtures/sse`` (see SOURCES.md there) is served by the scripted
provider's ``Replay`` step — once in a single write, once in small random-sized writes so
frames arrive cut at arbitrary points — and the adapter's event sequence is checked:
full texts, tool calls, usage, finish reason, or the error. Granularity is checked too:
the content and reasoning events are exactly the upstream's non-empty deltas, in order
(nothing merged, nothing split), read from the fixture with a plain line-by-line JSON scan.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentgw.errors import ProviderError
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
from agentgw.providers.scripted import Replay, ScriptedProvider
from agentgw.providers.wire import ProviderClient

FIXTURES = Path(__file__).parent / "fixtures" / "sse"


@pytest.fixture
async def server() -> AsyncIterator[ScriptedProvider]:
    async with ScriptedProvider(demo_delay_s=0) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


@dataclass
class Outcome:
    events: list[ProviderEvent] = field(default_factory=list)
    error: ProviderError | None = None

    def texts(self, kind: type[ContentDelta] | type[ReasoningDelta]) -> list[str]:
        return [e.text for e in self.events if isinstance(e, kind)]

    def tools(self) -> dict[int, dict[str, Any]]:
        calls: dict[int, dict[str, Any]] = {}
        for e in self.events:
            if isinstance(e, ToolCallDelta):
                entry = calls.setdefault(e.index, {"ids": [], "names": [], "args": ""})
                if e.id is not None:
                    entry["ids"].append(e.id)
                if e.name is not None:
                    entry["names"].append(e.name)
                entry["args"] += e.arguments
        return calls

    def one(self, kind: type[Any]) -> Any:
        found = [e for e in self.events if isinstance(e, kind)]
        assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
        return found[0]


def reference_deltas(raw: bytes, protocol: str) -> tuple[list[str], list[str]]:
    """(content pieces, reasoning pieces) the upstream sent, read naively line by line."""
    content: list[str] = []
    reasoning: list[str] = []
    for line in raw.decode().splitlines():
        if not line.startswith("data: {"):
            continue
        obj = json.loads(line[6:])
        if protocol == "ANTHROPIC":
            delta = obj.get("delta") or {}
            if obj.get("type") == "content_block_delta" and delta.get("text"):
                content.append(delta["text"])
            if obj.get("type") == "content_block_delta" and delta.get("thinking"):
                reasoning.append(delta["thinking"])
            continue
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
            text = delta.get("reasoning_content") or delta.get("reasoning")
            if text:
                reasoning.append(text)
    return content, reasoning


async def replay(
    server: ScriptedProvider,
    client: ProviderClient,
    name: str,
    *,
    protocol: Protocol,
    status: int = 200,
    split: bool = False,
) -> Outcome:
    raw = (FIXTURES / name).read_bytes()
    ctype = "application/json" if name.endswith(".json") else "text/event-stream"
    if name.startswith("zai-"):
        ctype = "text/event-stream;charset=UTF-8"  # as recorded
    sizes: list[int] = []
    if split:
        rng = random.Random(name)
        sizes = [rng.randint(1, 40) for _ in range(200)]
    server.enqueue([Replay(raw, status=status, content_type=ctype, write_sizes=sizes)])
    call = ModelCall(
        protocol=protocol,
        provider_key="fixture",
        base_url=server.base_url,
        api_key="sk-test",
        model_id="recorded",
        messages=[{"role": "user", "content": "hi"}],
    )
    out = Outcome()
    try:
        async for event in stream_call(client, call):
            out.events.append(event)
    except ProviderError as exc:
        out.error = exc
    server.assert_complete()
    return out


def check_granularity(out: Outcome, name: str, protocol: str) -> None:
    content, reasoning = reference_deltas((FIXTURES / name).read_bytes(), protocol)
    assert out.texts(ContentDelta) == content
    assert out.texts(ReasoningDelta) == reasoning


def check_tail(out: Outcome, usage: tuple[int, int, int, int] | None, finish: str, raw: str | None) -> None:
    """Usage (when sent) then Finish come last, once each."""
    assert out.error is None, out.error
    assert out.events[-1] == Finish(finish, raw)
    assert sum(isinstance(e, Finish) for e in out.events) == 1
    if usage is None:
        assert not any(isinstance(e, Usage) for e in out.events)
    else:
        u = out.one(Usage)
        assert out.events[-2] is u
        assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_tokens) == usage
        assert u.estimated is False


def test_every_fixture_is_documented_in_sources() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text()
    files = sorted(p.name for p in FIXTURES.iterdir() if p.name != "SOURCES.md")
    assert len(files) == 17
    for name in files:
        assert f"`{name}`" in sources, name


SPLIT = [pytest.param(False, id="one-write"), pytest.param(True, id="small-writes")]


@pytest.mark.parametrize("split", SPLIT)
async def test_openai_text_with_include_usage(server, client, split) -> None:
    name = "openai-chat-text-include-usage.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    assert "".join(out.texts(ContentDelta)) == "The capital of Mexico is Mexico City."
    assert len(out.texts(ContentDelta)) == 8
    check_granularity(out, name, "OPENAI")
    check_tail(out, (14, 8, 0, 0), "stop", "stop")


@pytest.mark.parametrize("split", SPLIT)
async def test_openai_parallel_tool_calls(server, client, split) -> None:
    out = await replay(server, client, "openai-chat-parallel-tool-calls.sse", protocol="OPENAI", split=split)
    tools = out.tools()
    assert sorted(tools) == [0, 1]
    assert tools[0]["ids"] == ["call_M26z19sncd7b4LBgzKRRbaUE"]
    assert tools[1]["ids"] == ["call_KPXe5NX7IcKkaBUhc6dto2QV"]
    assert tools[0]["names"] == tools[1]["names"] == ["secret_retrieval_tool"]
    assert json.loads(tools[0]["args"]) == {"password": "mellon"}
    assert json.loads(tools[1]["args"]) == {"password": "radiance"}
    # one event per non-empty upstream fragment: opening + 5 argument fragments per call
    assert sum(isinstance(e, ToolCallDelta) for e in out.events) == 12
    assert out.texts(ContentDelta) == []
    check_tail(out, (75, 53, 0, 0), "tool_calls", "tool_calls")


@pytest.mark.parametrize("split", SPLIT)
async def test_deepseek_reasoning_content(server, client, split) -> None:
    name = "deepseek-reasoner-reasoning-content.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    check_granularity(out, name, "OPENAI")
    assert "".join(out.texts(ReasoningDelta)).startswith("Hmm,")
    assert "".join(out.texts(ContentDelta)).endswith("help you today?")
    # reasoning comes first, then content: the first content event follows the last reasoning one
    kinds = [type(e) for e in out.events if isinstance(e, ContentDelta | ReasoningDelta)]
    assert kinds.index(ContentDelta) > len(kinds) - kinds[::-1].index(ReasoningDelta) - 1
    check_tail(out, (6, 212, 198, 0), "stop", "stop")


@pytest.mark.parametrize("split", SPLIT)
async def test_deepseek_tool_call_without_done(server, client, split) -> None:
    name = "deepseek-reasoner-tool-call.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    check_granularity(out, name, "OPENAI")
    tools = out.tools()
    assert list(tools) == [0]
    assert tools[0]["ids"] == ["call_00_ioIn7yN9p1ZOMNpDLwd4MgAF"]
    assert tools[0]["names"] == ["weather"]
    assert json.loads(tools[0]["args"]) == {"location": "San Francisco"}
    # prompt_tokens_details.cached_tokens and DeepSeek's prompt_cache_hit_tokens agree: 320
    check_tail(out, (339, 83, 39, 320), "tool_calls", "tool_calls")


@pytest.mark.parametrize("split", SPLIT)
async def test_qwen_reasoning_then_usage_chunk(server, client, split) -> None:
    name = "qwen-qwen3-max-reasoning-content.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    check_granularity(out, name, "OPENAI")
    assert "".join(out.texts(ContentDelta)).endswith("**Answer: 3**")
    check_tail(out, (24, 1355, 1084, 0), "stop", "stop")


@pytest.mark.parametrize("split", SPLIT)
async def test_zai_glm_reasoning(server, client, split) -> None:
    name = "zai-glm-4.7-reasoning-content.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    check_granularity(out, name, "OPENAI")
    assert out.texts(ContentDelta) == ["4"]
    check_tail(out, (13, 564, 561, 0), "stop", "stop")


@pytest.mark.parametrize("split", SPLIT)
async def test_openrouter_reasoning_and_details_not_doubled(server, client, split) -> None:
    name = "openrouter-claude-reasoning.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    assert "".join(out.texts(ReasoningDelta)) == "This is a simple arithmetic question. 2+2 equals 4."
    assert "".join(out.texts(ContentDelta)) == "2 + 2 = 4"
    check_granularity(out, name, "OPENAI")
    signature = out.one(ReasoningSignature)
    assert signature.signature.startswith("Et0BCkgIChACGAIqQA2s")
    check_tail(out, (43, 36, 13, 0), "stop", "stop")


@pytest.mark.parametrize("split", SPLIT)
async def test_openrouter_error_chunk_after_finish(server, client, split) -> None:
    out = await replay(server, client, "openrouter-midstream-error.sse", protocol="OPENAI", split=split)
    assert out.error is not None
    assert out.error.code == "provider_stream_error"
    assert "Token limit reached" in out.error.message
    assert out.error.retriable is False  # deltas already went out
    # what arrived before the error was streamed; no Finish/Usage for a failed stream
    assert "".join(out.texts(ReasoningDelta)) == "We need to respond to a greeting. The user"
    assert not any(isinstance(e, Finish | Usage) for e in out.events)


@pytest.mark.parametrize("split", SPLIT)
async def test_groq_error_event(server, client, split) -> None:
    name = "groq-midstream-error-event.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    assert out.error is not None
    assert out.error.code == "provider_stream_error"
    assert "tool_use_failed" in out.error.message
    assert "did not match schema" in out.error.message
    check_granularity(out, name, "OPENAI")
    assert "".join(out.texts(ReasoningDelta)).startswith("We need to")


@pytest.mark.parametrize("split", SPLIT)
async def test_llamacpp_repeated_id_and_name_is_one_call(server, client, split) -> None:
    name = "llamacpp-gemma3-270m-forced-tool-call.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    tools = out.tools()
    assert list(tools) == [0]
    assert tools[0]["ids"] == ["call__0_mock_city_weather_cmpl-1f179c2e-ba70-4ffb-b09d-6fc6ce4ab57c"]
    assert tools[0]["names"] == ["mock_city_weather"]
    expected = ""
    fragments = 0
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("data: {"):
            for tc in json.loads(line[6:])["choices"][0]["delta"].get("tool_calls") or []:
                expected += tc["function"]["arguments"]
                fragments += 1 if tc["function"]["arguments"] else 0
    assert tools[0]["args"] == expected  # a base model's babble: not JSON, but every byte kept
    # every non-empty fragment is its own event; the first one carries id and name
    deltas = [e for e in out.events if isinstance(e, ToolCallDelta)]
    assert len(deltas) == fragments
    assert deltas[0].id is not None and all(d.id is None and d.name is None for d in deltas[1:])
    assert out.texts(ContentDelta) == []
    check_tail(out, None, "tool_calls", "tool_calls")


@pytest.mark.parametrize("split", SPLIT)
async def test_llamacpp_text_length_without_usage(server, client, split) -> None:
    name = "llamacpp-gemma3-270m-text.sse"
    out = await replay(server, client, name, protocol="OPENAI", split=split)
    check_granularity(out, name, "OPENAI")
    assert out.texts(ContentDelta)[0] == "\n"  # whitespace-only deltas are content
    check_tail(out, None, "length", "length")


@pytest.mark.parametrize("split", SPLIT)
async def test_anthropic_text(server, client, split) -> None:
    name = "anthropic-text.sse"
    out = await replay(server, client, name, protocol="ANTHROPIC", split=split)
    assert out.texts(ContentDelta) == ["-", " Captain", "\n- Sc", "oop"]
    check_granularity(out, name, "ANTHROPIC")
    check_tail(out, (17, 10, 0, 0), "stop", "end_turn")


@pytest.mark.parametrize("split", SPLIT)
async def test_anthropic_thinking_with_signature(server, client, split) -> None:
    name = "anthropic-thinking-signature.sse"
    out = await replay(server, client, name, protocol="ANTHROPIC", split=split)
    check_granularity(out, name, "ANTHROPIC")
    assert "".join(out.texts(ContentDelta)).startswith("Here are the basic steps for safely crossing")
    signature = out.one(ReasoningSignature)
    assert signature.signature.startswith("EvMCCkYICxgCKkCHP2cSuEdcJK")
    # the signature closes the thinking block: it comes after the last reasoning delta
    position = out.events.index(signature)
    assert all(not isinstance(e, ReasoningDelta) for e in out.events[position:])
    check_tail(out, (43, 282, 0, 0), "stop", "end_turn")


@pytest.mark.parametrize("split", SPLIT)
async def test_anthropic_parallel_tool_use(server, client, split) -> None:
    name = "anthropic-tool-use-parallel.sse"
    out = await replay(server, client, name, protocol="ANTHROPIC", split=split)
    assert "".join(out.texts(ContentDelta)) == "I'll retrieve the secrets for both passwords you provided."
    check_granularity(out, name, "ANTHROPIC")
    tools = out.tools()
    assert sorted(tools) == [0, 1]  # block indices 1 and 2 become tool indices 0 and 1
    assert tools[0]["ids"] == ["toolu_015cUijgET79LXjgeYQerN2h"]
    assert tools[1]["ids"] == ["toolu_01XZTimPexA7h3EVKesnKt5T"]
    assert json.loads(tools[0]["args"]) == {"password": "mellon"}
    assert json.loads(tools[1]["args"]) == {"password": "radiance"}
    # opening + non-empty input_json_delta fragments (the empty "" ones are dropped)
    assert sum(isinstance(e, ToolCallDelta) for e in out.events) == 2 + 3 + 4
    check_tail(out, (416, 109, 0, 0), "tool_calls", "tool_use")


@pytest.mark.parametrize(
    ("name", "protocol", "status", "needle"),
    [
        ("openai-error-400-unsupported-parameter.json", "OPENAI", 400, "Unsupported parameter: 'stop'"),
        ("openai-error-404-model-not-found-stream-request.json", "OPENAI", 404, "does not exist"),
        ("anthropic-error-404-not-found-stream-request.json", "ANTHROPIC", 404, "this-model-does-not-exist"),
    ],
)
async def test_json_error_bodies(server, client, name, protocol, status, needle) -> None:
    out = await replay(server, client, name, protocol=protocol, status=status)
    assert out.events == []
    err = out.error
    assert err is not None
    assert err.code == "provider_http_error"
    assert err.status == status
    assert err.retriable is False
    assert err.provider == "fixture" and err.model == "recorded"
    assert needle in err.message
    assert needle in err.body  # the excerpt keeps the provider's own words
    assert f"(HTTP {status})" in str(err)
