"""RunRecorder → chat file → history / context replay, on real files.

The live events are produced by :class:`LiveRun`, a small emitter following the SSE
contract (§5, §11.3): block starts before their first delta, ``*.end`` before any other
kind of event, per-run ``seq``, strictly increasing timestamps.
"""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.memory.history import compact_live_events, history_events
from agentgw.memory.recorder import HELD_EVENTS, RunRecorder
from agentgw.memory.store import ChatStore, chat_name
from agentgw.memory.window import build_context
from agentgw.settings import Settings, load_settings

HEX8 = r"[0-9a-f]{8}"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"memory.chat.dir": str(tmp_path / "chats")}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(files=(), environ={}, overrides=values)


def system_of(prompt: str) -> dict[str, Any]:
    return {
        "model": "demo-model",
        "messages": [{"role": "system", "content": prompt}],
        "tools": [],
        "stream": True,
    }


class LiveRun:
    """Emits the live events of one run into a recorder and keeps them."""

    clock = 1_700_000_000_000  # shared so runs of one chat keep increasing timestamps

    def __init__(self, recorder: RunRecorder, chat_id: str, run_id: str) -> None:
        self.recorder = recorder
        self.chat_id = chat_id
        self.run_id = run_id
        self.events: list[dict[str, Any]] = []
        self.task_id: str | None = None
        self._open: tuple[str, str] | None = None
        self._n = {"reasoning": 0, "content": 0}

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        if not type_.endswith(".delta"):
            self.close_block()
        LiveRun.clock += 3
        event = {"seq": len(self.events) + 1, "type": type_, "timestamp": LiveRun.clock}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(event)
        self.recorder.on_event(event)
        return event

    def close_block(self) -> None:
        if self._open is not None:
            kind, block_id = self._open
            self._open = None
            self.emit(f"{kind}.end", **{f"{kind}Id": block_id})

    def text(self, kind: str, *deltas: str) -> str:
        self._n[kind] += 1
        block_id = f"{self.run_id}_{kind[0]}_{self._n[kind]}"
        self.emit(f"{kind}.start", **{f"{kind}Id": block_id, "runId": self.run_id, "taskId": self.task_id})
        self._open = (kind, block_id)
        for delta in deltas:
            self.emit(f"{kind}.delta", **{f"{kind}Id": block_id, "delta": delta})
        return block_id

    def tool_call(self, tool_id: str, name: str, *chunks: str, **extra: Any) -> None:
        fields = {"toolType": "function", **extra}
        self.emit(
            "tool.start", toolId=tool_id, runId=self.run_id, taskId=self.task_id, toolName=name, **fields
        )
        for i, chunk in enumerate(chunks):
            self.emit("tool.args", toolId=tool_id, delta=chunk, chunkIndex=i)

    def action_call(self, action_id: str, name: str, *chunks: str) -> None:
        self.emit(
            "action.start",
            actionId=action_id,
            runId=self.run_id,
            taskId=self.task_id,
            actionName=name,
            description=f"{name} action",
        )
        for chunk in chunks:
            self.emit("action.args", actionId=action_id, delta=chunk)
        self.emit("action.end", actionId=action_id)

    def usage(self, inp: int, out: int) -> None:
        self.emit(
            "usage",
            runId=self.run_id,
            inputTokens=inp,
            outputTokens=out,
            reasoningTokens=1,
            cachedTokens=0,
            points=1.5,
            estimated=False,
            model="demo-model",
        )

    async def begin(
        self,
        message: str,
        *,
        first: bool,
        references: list[dict[str, Any]] | None = None,
        plan: dict[str, Any] | None = None,
    ) -> None:
        query = {
            "requestId": self.run_id,
            "chatId": self.chat_id,
            "role": "user",
            "message": message,
            "agentKey": "demo",
            "references": references,
        }
        self.emit("request.query", **query)
        await self.recorder.start(query)
        if first:
            self.emit("chat.start", chatId=self.chat_id, chatName=chat_name(message), chatImageToken="tok")
        self.emit("run.start", runId=self.run_id, chatId=self.chat_id, agentKey="demo", version="v1")
        if plan is not None:
            self.emit("plan.update", planId=plan["planId"], chatId=self.chat_id, plan=plan)


async def new_chat(store: ChatStore, message: str = "hello there") -> str:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, chat_name(message), "demo", "Demo agent", None)
    return chat_id


async def rich_run(
    store: ChatStore, settings: Settings, chat_id: str, run_id: str, *, first: bool
) -> LiveRun:
    """A PLAN_EXECUTE-shaped run: reasoning, content, parallel tool calls, an action, a plan."""
    rec = RunRecorder(store, chat_id, run_id, settings)
    live = LiveRun(rec, chat_id, run_id)
    plan = {"planId": "plan_1", "tasks": [{"taskId": "aaaa0001", "description": "look up", "status": "init"}]}
    await live.begin(
        "  What is   the weather\n in Shanghai and Beijing today, please?  ",
        first=first,
        references=[{"id": "ref1", "type": "file", "name": "a.txt"}],
    )
    rec.begin_stage("plan", system_of("plan prompt"), None)
    live.emit("plan.create", planId="plan_1", chatId=chat_id, plan=plan)
    live.emit("plan.update", planId="plan_1", chatId=chat_id, plan=plan)
    await rec.flush_step()
    live.task_id = "aaaa0001"
    live.emit("task.start", taskId="aaaa0001", runId=run_id, taskName="look up", description="look up")
    rec.begin_stage("execute", system_of("execute prompt"), "aaaa0001")
    live.text("reasoning", "Need ", "two cities.")
    live.text("content", "Checking ", "both.")
    live.tool_call("call_a", "mock_city_weather", '{"city":', '"Shanghai"}')
    live.tool_call("call_b", "mock_city_weather", '{"city":"Beijing"}')
    live.action_call("a_0000beef", "switch_theme", '{"theme":', '"dark"}')
    live.emit("tool.end", toolId="call_a")
    live.emit("tool.end", toolId="call_b")
    live.usage(120, 30)
    live.emit("action.result", actionId="a_0000beef", result="OK")
    live.emit(
        "source.snapshot",
        sourceId="s1",
        runId=run_id,
        taskId="aaaa0001",
        title="Weather",
        url="https://x.test",
    )
    live.emit("tool.result", toolId="call_b", result='{"city":"Beijing","temperatureC":18}')
    live.emit("tool.result", toolId="call_a", result='{"city":"Shanghai","temperatureC":22}')
    await rec.flush_step()
    rec.begin_stage("execute", system_of("execute prompt"), "aaaa0001")
    live.text("content", "Both looked up.")
    live.usage(200, 10)
    done = {**plan, "tasks": [{**plan["tasks"][0], "status": "completed"}]}
    live.emit("plan.update", planId="plan_1", chatId=chat_id, plan=done)
    live.emit("task.complete", taskId="aaaa0001")
    live.task_id = None
    await rec.flush_step()
    rec.begin_stage("summary", system_of("execute prompt"), None)
    live.text("content", "Shanghai 22°C, ", "Beijing 18°C.")
    live.usage(300, 20)
    live.emit("run.complete", runId=run_id, finishReason="end_turn", usage={"inputTokens": 620})
    await rec.flush_step()
    await rec.finish("completed")
    return live


def read_file_lines(store: ChatStore, chat_id: str) -> list[dict[str, Any]]:
    raw = store.chat_path(chat_id).read_bytes()
    assert raw.endswith(b"\n")
    return [orjson.loads(line) for line in raw.splitlines() if line.strip()]


def strip_ts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> ChatStore:
    return ChatStore(settings)


async def test_recorded_file_follows_v31(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    await rich_run(store, settings, chat_id, "run1", first=True)
    lines = read_file_lines(store, chat_id)

    assert lines[0]["_type"] == "query"
    assert lines[0]["query"]["message"].startswith("  What is")
    assert {"chatId", "runId", "updatedAt", "query"} <= set(lines[0])
    steps = lines[1:]
    assert all(s["_type"] == "step" and s["chatId"] == chat_id and s["runId"] == "run1" for s in steps)
    assert [s["_seq"] for s in steps] == list(range(1, len(steps) + 1))
    assert [s["_stage"] for s in steps] == ["plan", "execute", "execute", "summary", "summary"]
    assert steps[-1]["messages"] == [] and steps[-1]["_end"] == {
        "type": "run.complete",
        "finishReason": "end_turn",
    }
    assert steps[0]["plan"]["tasks"][0]["status"] == "init"
    assert steps[2]["plan"]["tasks"][0]["status"] == "completed"
    assert "plan" not in steps[1] and "plan" not in steps[3]
    assert steps[1]["taskId"] == "aaaa0001" and "taskId" not in steps[3]

    user = steps[0]["messages"][0]
    assert user["role"] == "user" and user["content"][0]["text"].startswith("  What is") and "ts" in user

    execute = steps[1]["messages"]
    assistants = [m for m in execute if m["role"] == "assistant"]
    for message in assistants:
        kinds = [k for k in ("content", "reasoning_content", "tool_calls") if k in message]
        assert len(kinds) == 1, message
        assert re.fullmatch(f"m_{HEX8}", message["_msgId"])
        assert message["_usage"]["inputTokens"] == 120 and message["_usage"]["model"] == "demo-model"
        assert {"startedAt", "endedAt", "durationMs"} <= set(message["_timing"])
    assert len({m["_msgId"] for m in assistants}) == 1  # one model response
    reasoning, content, call_a, call_b, action = assistants
    assert re.fullmatch(f"r_{HEX8}", reasoning["_reasoningId"])
    assert reasoning["reasoning_content"] == [{"type": "text", "text": "Need two cities."}]
    assert re.fullmatch(f"c_{HEX8}", content["_contentId"])
    assert content["content"] == [{"type": "text", "text": "Checking both."}]
    assert call_a["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "mock_city_weather", "arguments": '{"city":"Shanghai"}'},
        }
    ]
    assert call_a["_toolId"] == "call_a" and call_b["_toolId"] == "call_b"
    assert action["_actionId"] == "a_0000beef" and "_toolId" not in action
    tools = [m for m in execute if m["role"] == "tool"]
    assert [(t["tool_call_id"], t["name"]) for t in tools] == [
        ("a_0000beef", "switch_theme"),
        ("call_b", "mock_city_weather"),
        ("call_a", "mock_city_weather"),
    ]
    assert tools[0]["_actionId"] == "a_0000beef" and tools[1]["_toolId"] == "call_b"
    assert tools[1]["content"] == [{"type": "text", "text": '{"city":"Beijing","temperatureC":18}'}]
    assert all("ts" in t for t in tools)
    # A tool result renews _msgId: the next turn's answer is another response.
    next_answer = steps[2]["messages"][0]
    assert next_answer["_msgId"] != assistants[0]["_msgId"]
    assert next_answer["_usage"]["inputTokens"] == 200

    record = await store.get_chat(chat_id)
    assert record is not None
    assert record["usage"]["inputTokens"] == 620 and record["usage"]["calls"] == 3
    assert record["usage"]["points"] == pytest.approx(4.5)


async def test_system_snapshot_rule(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("hi", first=True)
    stages = [
        ("plan", "P"),  # first step of the run: written
        ("plan", "P"),  # same stage, same prompt: not written
        ("execute", "E"),  # stage changed and prompt differs: written
        ("execute", "E2"),  # prompt differs but same stage: not written
        ("summary", "E2"),  # stage changed and prompt differs from the last written ("E"): written
        ("summary", "E2"),  # same stage: not written
        ("execute", "E2"),  # stage changed, prompt equal to the last written: not written
    ]
    for stage, prompt in stages:
        rec.begin_stage(stage, system_of(prompt), None)
        live.text("content", f"{stage} turn")
        await rec.flush_step()
    await rec.finish("completed")
    steps = [line for line in read_file_lines(store, chat_id) if line["_type"] == "step" and line["messages"]]
    written = [(s["_stage"], s["system"]["messages"][0]["content"] if "system" in s else None) for s in steps]
    assert written == [
        ("plan", "P"),
        ("plan", None),
        ("execute", "E"),
        ("execute", None),
        ("summary", "E2"),
        ("summary", None),
        ("execute", None),
    ]
    assert steps[0]["system"] == system_of("P")


async def test_action_tools_setting_stores_action_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, memory__chat__action_tools="show_modal, launch_fireworks")
    store = ChatStore(settings)
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("party", first=True)
    rec.begin_stage("react", system_of("R"), None)
    live.tool_call("call_1", "launch_fireworks", "{}")
    live.tool_call("call_2", "city_datetime", '{"city":"Paris"}')
    live.emit("tool.end", toolId="call_1")
    live.emit("tool.end", toolId="call_2")
    live.emit("tool.result", toolId="call_1", result="OK")
    live.emit("tool.result", toolId="call_2", result="noon")
    live.emit("run.complete", runId="run1")
    await rec.finish("completed")
    messages = [
        m for line in read_file_lines(store, chat_id) if line["_type"] == "step" for m in line["messages"]
    ]
    fireworks = [
        m
        for m in messages
        if m.get("name") == "launch_fireworks"
        or (m.get("tool_calls") and m["tool_calls"][0]["function"]["name"] == "launch_fireworks")
    ]
    assert len(fireworks) == 2 and all(m["_actionId"] == "call_1" and "_toolId" not in m for m in fireworks)
    clock = [m for m in messages if m.get("_toolId") == "call_2"]
    assert len(clock) == 2 and all("_actionId" not in m for m in clock)
    # History keeps the live shape (tool.* events) for such a tool.
    lines = await store.read_lines(chat_id)
    assert strip_ts(history_events(lines)) == strip_ts(compact_live_events(live.events))


async def test_history_equals_compacted_live_events(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store, "  What is   the weather\n in Shanghai and Beijing today, please?  ")
    first = await rich_run(store, settings, chat_id, "run1", first=True)
    # Second run: a frontend tool answered by the user, then the answer.
    rec = RunRecorder(store, chat_id, "run2", settings)
    live = LiveRun(rec, chat_id, "run2")
    done_plan = {
        "planId": "plan_1",
        "tasks": [{"taskId": "aaaa0001", "description": "look up", "status": "completed"}],
    }
    await live.begin(
        "and tomorrow?",
        first=False,
        references=[{"id": "ref1", "type": "file", "name": "a.txt"}],
        plan=done_plan,
    )
    rec.begin_stage("react", system_of("R"), None)
    live.text("reasoning", "ask the user")
    live.tool_call(
        "t_0badc0de",
        "confirm_dialog",
        '{"q":"ok?"}',
        toolType="html",
        toolKey="confirm_dialog",
        toolTimeout=300000,
        description="Confirm",
    )
    live.emit("tool.end", toolId="t_0badc0de")
    live.usage(50, 5)
    live.emit("tool.result", toolId="t_0badc0de", result='{"ok":true}')
    await rec.flush_step()
    rec.begin_stage("react", system_of("R"), None)
    live.text("content", " ", "Tomorrow: sunny.")
    live.emit("run.complete", runId="run2", finishReason="end_turn")
    await rec.flush_step()
    await rec.finish("completed")

    lines = await store.read_lines(chat_id)
    history = history_events(lines)
    compacted = compact_live_events(first.events + live.events)
    assert strip_ts(history) == strip_ts(compacted)

    types = [e["type"] for e in history]
    assert types.count("chat.start") == 1 and types.count("run.complete") == 2
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    stamps = [e["timestamp"] for e in history]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert set(types) == {
        "request.query",
        "chat.start",
        "run.start",
        "plan.update",
        "reasoning.snapshot",
        "content.snapshot",
        "tool.snapshot",
        "action.snapshot",
        "tool.result",
        "action.result",
        "source.snapshot",
        "run.complete",
    }
    # The head of a run, in the §11.3 order.
    assert types[:4] == ["request.query", "chat.start", "run.start", "plan.update"]
    chat_start = history[1]
    assert chat_start["chatName"] == "What is the weather in Shangha"  # 30 code points
    assert "chatImageToken" not in chat_start
    plan_update = history[3]
    assert plan_update["plan"]["tasks"][0]["status"] == "completed"  # the run's latest plan
    tool = next(e for e in history if e["type"] == "tool.snapshot" and e["toolId"] == "call_a")
    assert tool["arguments"] == '{"city":"Shanghai"}' and tool["toolType"] == "function"
    assert tool["taskId"] == "aaaa0001" and tool["toolName"] == "mock_city_weather"
    frontend = next(e for e in history if e["type"] == "tool.snapshot" and e["toolId"] == "t_0badc0de")
    assert frontend["toolKey"] == "confirm_dialog" and frontend["toolType"] == "html"
    assert frontend["toolTimeout"] == 300000 and frontend["description"] == "Confirm"
    reasoning = next(e for e in history if e["type"] == "reasoning.snapshot")
    assert reasoning["reasoningId"] == "run1_r_1" and reasoning["text"] == "Need two cities."
    action = next(e for e in history if e["type"] == "action.snapshot")
    assert action["arguments"] == '{"theme":"dark"}' and action["actionName"] == "switch_theme"
    assert any(e["type"] == "action.result" and e["result"] == "OK" for e in history)
    assert any(e["type"] == "source.snapshot" and e["sourceId"] == "s1" for e in history)
    whitespace = next(e for e in history if e["type"] == "content.snapshot" and e["contentId"] == "run2_c_1")
    assert whitespace["text"] == " Tomorrow: sunny."


async def test_cancelled_run_keeps_partial_output(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("write a poem", first=True)
    rec.begin_stage("oneshot", system_of("S"), None)
    live.text("reasoning", "thinking about ", "rhymes")
    live.text("content", "Roses are ", "red,")
    # Cancelled mid-stream: the engine emits run.cancel (no usage came) and finishes.
    live.emit("run.cancel", runId="run1")
    await rec.finish("cancelled")

    lines = read_file_lines(store, chat_id)
    messages = [m for line in lines if line["_type"] == "step" for m in line["messages"]]
    content = next(m for m in messages if "content" in m and m["role"] == "assistant")
    assert content["content"][0]["text"] == "Roses are red,"
    assert content["_usage"] == {
        "inputTokens": 0,
        "outputTokens": 0,
        "reasoningTokens": 0,
        "cachedTokens": 0,
        "points": 0,
        "estimated": False,
        "model": "",
    }
    assert lines[-1]["_end"] == {"type": "run.cancel"}
    history = history_events(await store.read_lines(chat_id))
    assert history[-1]["type"] == "run.cancel" and history[-1]["runId"] == "run1"
    assert strip_ts(history) == strip_ts(compact_live_events(live.events))


async def test_failed_run_is_replayed_as_run_error(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("hi", first=True)
    rec.begin_stage("react", system_of("S"), None)
    live.text("content", "partial")
    error = {"code": "provider_timeout", "message": "demo: idle", "retriable": True}
    live.emit("run.error", runId="run1", error=error)
    await rec.finish("run.error")
    history = history_events(await store.read_lines(chat_id))
    assert history[-1] == {**history[-1], "type": "run.error", "error": error}
    assert strip_ts(history) == strip_ts(compact_live_events(live.events))


async def test_context_replay_merges_parallel_calls_and_drops_reasoning(
    store: ChatStore, settings: Settings
) -> None:
    chat_id = await new_chat(store)
    await rich_run(store, settings, chat_id, "run1", first=True)
    runs = await store.load_window(chat_id, 20)
    context = build_context(runs, None)
    assert all("reasoning_content" not in m for m in context)
    assert not any("Need two cities" in str(m.get("content")) for m in context)
    roles = [m["role"] for m in context]
    assert roles == ["user", "assistant", "tool", "tool", "tool", "assistant", "assistant"]
    call_msg = context[1]
    assert call_msg["content"] == "Checking both."
    assert [c["id"] for c in call_msg["tool_calls"]] == ["call_a", "call_b", "a_0000beef"]
    assert {m["tool_call_id"] for m in context[2:5]} == {"call_a", "call_b", "a_0000beef"}
    assert all(isinstance(m["content"], str) for m in context)
    assert context[-1]["content"] == "Shanghai 22°C, Beijing 18°C."


async def test_unanswered_tool_call_is_not_replayed(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("confirm?", first=True)
    rec.begin_stage("react", system_of("S"), None)
    live.text("content", "Let me ask.")
    live.tool_call("t_00000001", "confirm_dialog", "{}", toolType="html", toolKey="confirm_dialog")
    live.emit("tool.end", toolId="t_00000001")
    live.emit("run.cancel", runId="run1")
    await rec.finish("cancelled")
    context = build_context(await store.load_window(chat_id), None)
    assert context == [
        {"role": "user", "content": "confirm?"},
        {"role": "assistant", "content": "Let me ask."},
    ]


async def test_window_replays_last_k_runs(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    for i in range(5):
        rec = RunRecorder(store, chat_id, f"run{i}", settings)
        live = LiveRun(rec, chat_id, f"run{i}")
        await live.begin(f"question {i}", first=i == 0)
        rec.begin_stage("oneshot", system_of("S"), None)
        live.text("content", f"answer {i}")
        live.emit("run.complete", runId=f"run{i}")
        await rec.flush_step()
        await rec.finish("completed")
    runs = await store.load_window(chat_id, 2)
    assert [r.run_id for r in runs] == ["run3", "run4"]
    assert build_context(runs, None) == [
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": "answer 3"},
        {"role": "user", "content": "question 4"},
        {"role": "assistant", "content": "answer 4"},
    ]


async def test_trim_file_keeps_the_window(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, memory__chat__k=2, memory__chat__trim_file=True)
    store = ChatStore(settings)
    chat_id = await new_chat(store)
    for i in range(4):
        rec = RunRecorder(store, chat_id, f"run{i}", settings)
        live = LiveRun(rec, chat_id, f"run{i}")
        await live.begin(f"q{i}", first=i == 0)
        live.emit("run.complete", runId=f"run{i}")
        await rec.finish("completed")
    lines = read_file_lines(store, chat_id)
    assert sorted({line["runId"] for line in lines}) == ["run2", "run3"]
    assert lines[0]["_type"] == "query" and lines[0]["runId"] == "run2"


async def test_chat_deleted_mid_run_stops_recording(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("hi", first=True)
    assert await store.delete_chat(chat_id)
    rec.begin_stage("oneshot", system_of("S"), None)
    live.text("content", "still answering")
    live.emit("run.complete", runId="run1")
    await rec.flush_step()
    await rec.finish("completed")
    assert not store.chat_path(chat_id).exists()
    assert await store.list_chats() == []


async def test_engine_added_user_message_and_set_plan(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("plan it", first=True)
    rec.begin_stage("execute", system_of("E"), "t1")
    rec.set_plan({"planId": "p9", "tasks": [{"taskId": "t1", "description": "d", "status": "in_progress"}]})
    rec.add_user_message("Execute task t1")
    live.text("content", "done")
    live.emit("run.complete", runId="run1")
    await rec.finish("completed")
    step = next(line for line in read_file_lines(store, chat_id) if line["_type"] == "step")
    assert [m["role"] for m in step["messages"]] == ["user", "user", "assistant"]
    assert step["plan"]["planId"] == "p9"
    plan = await store.latest_plan(chat_id)
    assert plan == {"planId": "p9", "tasks": [{"taskId": "t1", "description": "d", "status": "init"}]}


async def test_approval_decisions_are_recorded(store: ChatStore, settings: Settings) -> None:
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("delete the logs", first=True)
    rec.begin_stage("react", system_of("R"), None)
    live.tool_call("call_rm", "_bash_", '{"command":"rm -r logs"}')
    live.emit("tool.end", toolId="call_rm")
    live.emit("tool.status", toolId="call_rm", runId="run1", status="PENDING_APPROVAL")
    live.emit("tool.status", toolId="call_rm", runId="run1", status="REJECTED", detail="too risky")
    live.emit("tool.result", toolId="call_rm", result='{"tool":"_bash_","ok":false,"error":"rejected"}')
    live.emit("run.complete", runId="run1")
    await rec.finish("completed")
    messages = [
        m for line in read_file_lines(store, chat_id) if line["_type"] == "step" for m in line["messages"]
    ]
    call = next(m for m in messages if m.get("tool_calls"))
    assert [(s["status"], s.get("detail")) for s in call["_toolStatus"]] == [
        ("PENDING_APPROVAL", None),
        ("REJECTED", "too risky"),
    ]
    history = history_events(await store.read_lines(chat_id))
    assert strip_ts(history) == strip_ts(compact_live_events(live.events))
    assert "tool.status" not in {e["type"] for e in history}


async def test_text_deltas_past_the_held_batch_are_stored_in_order(
    store: ChatStore, settings: Settings
) -> None:
    """The engine's hot path (``on_text``) is taken in batches of ``HELD_EVENTS``: a block
    longer than several batches, a tool call and a second stage between them, all in order."""
    chat_id = await new_chat(store)
    rec = RunRecorder(store, chat_id, "run1", settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("count", first=True)
    rec.begin_stage("react", system_of("R"), None)
    first = [f"{i}," for i in range(HELD_EVENTS * 2 + 7)]
    live.emit("content.start", contentId="run1_c_1", runId="run1")
    for delta in first:
        rec.on_text("content", "run1_c_1", delta)
    live.emit("content.end", contentId="run1_c_1")
    live.tool_call("call_1", "mock_city_weather", '{"city":', '"Shanghai"}')
    live.emit("tool.end", toolId="call_1")
    live.emit("tool.result", toolId="call_1", result="sunny")
    await rec.flush_step()
    rec.begin_stage("react", system_of("R"), None)
    second = [f"<{i}>" for i in range(HELD_EVENTS - 1)]
    live.emit("content.start", contentId="run1_c_2", runId="run1")
    for delta in second:
        rec.on_text("content", "run1_c_2", delta)
    live.emit("content.end", contentId="run1_c_2")
    live.emit("run.complete", runId="run1", finishReason="end_turn")
    await rec.finish("completed")
    steps = [line for line in read_file_lines(store, chat_id) if line["_type"] == "step"]
    messages = [m for step in steps for m in step["messages"]]
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "tool", "assistant"]
    assert messages[1]["content"] == [{"type": "text", "text": "".join(first)}]
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"city":"Shanghai"}'
    assert messages[3]["content"] == [{"type": "text", "text": "sunny"}]
    assert messages[4]["content"] == [{"type": "text", "text": "".join(second)}]
    assert steps[-1]["_end"] == {"type": "run.complete", "finishReason": "end_turn"}
