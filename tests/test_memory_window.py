"""The token-aware window (§10.11): cut to maxInputTokens, never splitting a call from its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentgw.memory.recorder import RunRecorder
from agentgw.memory.store import ChatStore, StoredRun
from agentgw.memory.window import build_context, default_reserve
from agentgw.settings import Settings
from agentgw.usage import estimate_tokens
from tests.test_memory_recorder import LiveRun, make_settings, new_chat, system_of


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def tool_runs(settings: Settings, count: int) -> list[StoredRun]:
    """``count`` runs, each: question, two parallel calls with bulky results, an answer."""
    store = ChatStore(settings)
    chat_id = await new_chat(store)
    for i in range(count):
        run_id = f"run{i}"
        rec = RunRecorder(store, chat_id, run_id, settings)
        live = LiveRun(rec, chat_id, run_id)
        await live.begin(f"question {i}: how is the weather?", first=i == 0)
        rec.begin_stage("react", system_of("R"), None)
        live.text("reasoning", "secret thoughts " * 50)
        live.tool_call(f"call_{i}_a", "mock_city_weather", '{"city":"Shanghai"}')
        live.tool_call(f"call_{i}_b", "mock_city_weather", '{"city":"Beijing"}')
        live.emit("tool.end", toolId=f"call_{i}_a")
        live.emit("tool.end", toolId=f"call_{i}_b")
        live.emit("tool.result", toolId=f"call_{i}_a", result="sunny and warm " * 40)
        live.emit("tool.result", toolId=f"call_{i}_b", result="cloudy and cool " * 40)
        await rec.flush_step()
        rec.begin_stage("react", system_of("R"), None)
        live.text("content", f"answer {i}: " + "details " * 30)
        live.emit("run.complete", runId=run_id)
        await rec.flush_step()
        await rec.finish("completed")
    return await store.load_window(chat_id, count)


def assert_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Each assistant tool call is followed by exactly its results; no result stands alone."""
    i = 0
    while i < len(messages):
        message = messages[i]
        assert message["role"] != "tool", f"orphan tool result at {i}"
        if message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            results = []
            j = i + 1
            while j < len(messages) and messages[j]["role"] == "tool":
                results.append(messages[j]["tool_call_id"])
                j += 1
            assert sorted(results) == sorted(ids)
            i = j
        else:
            i += 1


async def test_no_limit_keeps_everything(settings: Settings) -> None:
    runs = await tool_runs(settings, 3)
    context = build_context(runs, None)
    assert [m["role"] for m in context] == ["user", "assistant", "tool", "tool", "assistant"] * 3
    assert_pairs_intact(context)
    assert all("secret thoughts" not in str(m) for m in context)


async def test_oldest_runs_are_dropped_first(settings: Settings) -> None:
    runs = await tool_runs(settings, 6)
    full = build_context(runs, None)
    per_run = estimate_tokens(build_context(runs[-1:], None))
    # After the default reserve (a quarter), room for two and a half runs.
    limit = int(per_run * 2.5) * 4 // 3 + 4
    context = build_context(runs, limit)
    budget = limit - default_reserve(limit)
    assert estimate_tokens(context) <= budget + 3
    assert context == full[-len(context) :]  # a suffix: nothing newer was dropped
    users = [m["content"] for m in context if m["role"] == "user"]
    assert users == ["question 4: how is the weather?", "question 5: how is the weather?"]
    assert_pairs_intact(context)


async def test_cut_inside_the_last_run_keeps_calls_with_results(settings: Settings) -> None:
    runs = await tool_runs(settings, 2)
    last = build_context(runs[-1:], None)

    def cost(messages: list[dict[str, Any]]) -> int:
        return estimate_tokens(messages) - 3  # without the reply priming

    assert cost(last[:1]) > 2
    # Too small for the whole newest run (2 tokens short of its question), enough for its
    # call group and answer.
    context = build_context(runs, cost(last[1:4]) + cost(last[-1:]) + 2, reserve_tokens=0)
    assert [m["role"] for m in context] == ["assistant", "tool", "tool", "assistant"]
    assert_pairs_intact(context)
    assert context[-1]["content"].startswith("answer 1:")
    # Smaller still: the call group cannot be split, so it goes whole; the answer stays.
    context = build_context(runs, cost(last[-1:]) + cost(last[1:4]) - 1, reserve_tokens=0)
    assert context == last[-1:]
    assert build_context(runs, 5, reserve_tokens=0) == []


async def test_reserve_defaults_to_a_quarter() -> None:
    assert default_reserve(8000) == 2000
    assert build_context([], 100) == []
