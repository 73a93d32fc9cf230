"""The run event log: numbering, block rules, followers, heartbeats."""

from __future__ import annotations

import asyncio

import orjson

from agentgw.engine.stream import EventLog
from agentgw.events import HEARTBEAT, validate_event


def decode(frame: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line[5:]) for line in frame.split(b"\n") if line.startswith(b"data:")]


async def test_idle_follower_gets_heartbeats_then_events() -> None:
    log = EventLog("r1")
    follower = log.follow(0, heartbeat_s=0.05)
    assert await asyncio.wait_for(anext(follower), 2) is None  # idle: a heartbeat
    log.emit("run.start", {"runId": "r1", "chatId": "c"})
    frame = await asyncio.wait_for(anext(follower), 2)
    assert frame is not None and decode(frame)[0]["type"] == "run.start"
    log.emit("run.complete", {"runId": "r1"})
    rest = [f async for f in follower]
    assert [decode(f)[0]["type"] for f in rest if f] == ["run.complete"]
    assert HEARTBEAT == b":heartbeat\n\n"


async def test_cancelled_follower_does_not_disturb_others() -> None:
    log = EventLog("r2")
    a, b = log.follow(0), log.follow(0)
    task_a = asyncio.create_task(anext(a))
    task_b = asyncio.create_task(anext(b))
    await asyncio.sleep(0.01)
    task_a.cancel()
    log.text_delta("content", "hi")
    frame = await asyncio.wait_for(task_b, 2)
    assert frame is not None
    kinds = [e["type"] for e in decode(frame)]
    assert kinds == ["content.start", "content.delta"]


async def test_blocks_open_close_and_ids() -> None:
    log = EventLog("r3")
    log.text_delta("reasoning", "a")
    log.text_delta("reasoning", "")  # empty deltas are dropped
    log.text_delta("content", " ")  # whitespace is content
    log.emit("tool.start", {"toolId": "t", "runId": "r3"})
    log.text_delta("content", "b")
    log.emit("run.complete", {"runId": "r3"})
    log.emit("content.delta", {"contentId": "x", "delta": "late"})  # after the end: ignored
    events = [e for frame in log.frames for e in decode(frame)]
    kinds = [e["type"] for e in events]
    assert kinds == [
        "reasoning.start",
        "reasoning.delta",
        "reasoning.end",
        "content.start",
        "content.delta",
        "content.end",
        "tool.start",
        "content.start",
        "content.delta",
        "content.end",
        "run.complete",
    ]
    assert [e["seq"] for e in events] == list(range(1, 12))
    ids = [e.get("contentId") for e in events if e["type"] == "content.start"]
    assert ids == ["r3_c_1", "r3_c_2"]
    for event in events:
        assert validate_event(event) == []
