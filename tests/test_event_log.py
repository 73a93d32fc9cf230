"""The run event log: numbering, block rules, followers (direct and catching up), heartbeats."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from agentgw.engine.stream import EventLog
from agentgw.events import HEARTBEAT, sse_frame, validate_event


def decode(frame: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line[5:]) for line in frame.split(b"\n") if line.startswith(b"data:")]


class Peer:
    """A follower's far end, in memory: records each send and how it was made.

    ``open`` mimics the HTTP sink: direct writes are declined until one ``write`` went out
    (the headers), and while ``congested`` (a slow client), until ``write`` drains.
    """

    def __init__(self) -> None:
        self.sends: list[tuple[str, bytes]] = []  # ("direct" | "task" | "end", data)
        self.open = False
        self.congested = False
        self.drained = asyncio.Event()
        self.drained.set()
        self.changed = asyncio.Event()

    def write_nowait(self, data: bytes) -> bool:
        if not self.open or self.congested:
            return False
        self.sends.append(("direct", data))
        self.changed.set()
        return True

    async def write(self, data: bytes) -> None:
        await self.drained.wait()
        self.congested = False
        self.sends.append(("task", data))
        self.open = True
        self.changed.set()

    async def follow(self, log: EventLog, **pump: Any) -> None:
        """What the HTTP layer does: pump, then send the returned frames with the end."""
        last = await log.pump(self, **pump)
        self.sends.append(("end", last))
        self.changed.set()

    def events(self) -> list[dict[str, object]]:
        return [e for _, data in self.sends for e in decode(data)]

    async def wait_for(self, count: int) -> None:
        while len(self.events()) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 2)


async def follow(log: EventLog, *, started: bool = True, **pump: Any) -> tuple[Peer, asyncio.Task[None]]:
    """A peer following ``log`` (its headers already out unless ``started=False``)."""
    peer = Peer()
    peer.open = started
    task = asyncio.create_task(peer.follow(log, **pump))
    await asyncio.sleep(0)
    return peer, task


def delta(log: EventLog, text: str) -> None:
    """One provider delta as the engine emits it: corked, so it goes out at uncork."""
    log.cork()
    log.text_delta("content", text)
    log.uncork()


async def test_idle_follower_gets_heartbeats_then_events() -> None:
    log = EventLog("r1")
    peer, pump = await follow(log, started=False, heartbeat_s=0.05)
    await asyncio.wait_for(peer.changed.wait(), 2)
    assert peer.sends[0] == ("task", HEARTBEAT)  # idle: a heartbeat, through the task
    log.emit("run.start", {"runId": "r1", "chatId": "c"})
    await peer.wait_for(1)
    delta(log, "hi")
    assert len(peer.events()) == 3  # written by the emitter before it returned
    delta(log, " there")
    assert len(peer.events()) == 4
    log.emit("run.complete", {"runId": "r1"})
    await asyncio.wait_for(pump, 2)
    assert [e["type"] for e in peer.events()] == [
        "run.start",
        "content.start",
        "content.delta",
        "content.delta",
        "content.end",
        "run.complete",
    ]
    # Caught up, the follower is written to by the emitter: one send per delta; the block's
    # end and the terminal event go out with the end of the response.
    assert [(how, len(decode(data))) for how, data in peer.sends[1:]] == [
        ("direct", 1),
        ("direct", 2),
        ("direct", 1),
        ("end", 2),
    ]
    assert HEARTBEAT == b":heartbeat\n\n"


async def test_events_of_one_step_go_out_together_when_the_task_yields() -> None:
    log = EventLog("r1c")
    peer, pump = await follow(log)
    log.emit("tool.end", {"toolId": "t1"})
    log.emit("usage", {"runId": "r1c", "inputTokens": 1, "outputTokens": 1, "points": 0, "estimated": True})
    assert peer.sends == []  # not yet: the emitting task has not yielded
    await asyncio.sleep(0)
    assert [how for how, _ in peer.sends] == ["direct"]
    assert [e["type"] for e in peer.events()] == ["tool.end", "usage"]
    log.emit("tool.result", {"toolId": "t1", "result": "ok"})
    log.emit("run.complete", {"runId": "r1c"})  # the terminal event takes what is pending along
    await asyncio.wait_for(pump, 2)
    assert peer.sends[-1][0] == "end"
    assert [e["type"] for e in decode(peer.sends[-1][1])] == ["tool.result", "run.complete"]


async def test_direct_heartbeat_while_waiting() -> None:
    log = EventLog("r1b")
    peer, pump = await follow(log, heartbeat_s=0.05)
    await asyncio.sleep(0.13)
    assert peer.sends[:2] == [("direct", HEARTBEAT), ("direct", HEARTBEAT)]
    log.emit("run.cancel", {"runId": "r1b"})
    await asyncio.wait_for(pump, 2)
    assert peer.events()[-1]["type"] == "run.cancel"


async def test_cancelled_follower_does_not_disturb_others() -> None:
    log = EventLog("r2")
    a, b = Peer(), Peer()
    task_a = asyncio.create_task(a.follow(log))
    task_b = asyncio.create_task(b.follow(log))
    await asyncio.sleep(0.01)
    task_a.cancel()
    log.text_delta("content", "hi")
    await b.wait_for(2)
    assert [e["type"] for e in b.events()] == ["content.start", "content.delta"]
    log.emit("run.complete", {"runId": "r2"})
    await asyncio.wait_for(task_b, 2)
    assert task_a.cancelled() and a.sends == []


async def test_late_follower_replays_in_one_send_then_follows_live() -> None:
    log = EventLog("r3")
    for word in ("a", "b", "c"):
        log.text_delta("content", word)
    peer, pump = await follow(log, started=False, after=1)
    await peer.wait_for(3)
    assert peer.sends[0][0] == "task" and [e["seq"] for e in decode(peer.sends[0][1])] == [2, 3, 4]
    delta(log, "d")
    log.emit("run.complete", {"runId": "r3"})
    await asyncio.wait_for(pump, 2)
    assert [e["seq"] for e in peer.events()] == [2, 3, 4, 5, 6, 7]
    assert [how for how, _ in peer.sends[1:]] == ["direct", "end"]


async def test_slow_peer_loses_nothing_and_keeps_order() -> None:
    log = EventLog("r4")
    peer, pump = await follow(log)
    delta(log, "0")
    peer.congested = True
    peer.drained.clear()
    for i in range(1, 50):  # the peer cannot take these now: they wait in the log
        delta(log, str(i))
    await asyncio.sleep(0.01)
    assert len(peer.events()) == 2
    peer.drained.set()
    await peer.wait_for(51)
    delta(log, "50")  # caught up again: direct
    log.emit("run.complete", {"runId": "r4"})
    await asyncio.wait_for(pump, 2)
    events = peer.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "".join(str(e["delta"]) for e in events if e["type"] == "content.delta") == "".join(
        str(i) for i in range(51)
    )
    assert [how for how, _ in peer.sends[-2:]] == ["direct", "end"]


async def test_corked_events_go_out_in_one_send() -> None:
    log = EventLog("r5")
    peer, pump = await follow(log)
    log.cork()
    log.text_delta("reasoning", "x")
    log.text_delta("content", "y")
    assert peer.sends == []
    log.uncork()
    assert len(peer.sends) == 1
    assert [e["type"] for e in decode(peer.sends[0][1])] == [
        "reasoning.start",
        "reasoning.delta",
        "reasoning.end",
        "content.start",
        "content.delta",
    ]
    log.cork()
    log.text_delta("content", "z")
    log.emit("run.complete", {"runId": "r5"})  # the terminal event is never held back
    await asyncio.wait_for(pump, 2)
    assert peer.sends[-1][0] == "end"
    assert [e["type"] for e in decode(peer.sends[-1][1])] == ["content.delta", "content.end", "run.complete"]


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


def test_delta_frames_are_the_bytes_of_their_events() -> None:
    """Deltas are formatted without an event dict; the bytes equal the generic encoding."""
    log = EventLog('run"\\id')  # an id that needs escaping
    texts = ["plain", 'quote " and \\ backslash', "tab\tnew\nline\u0001", "中文 😀", " "]
    log.task_id = "task_1"
    for i, text in enumerate(texts):
        log.text_delta("reasoning" if i % 2 else "content", text)
    for frame in log.frames:
        event = decode(frame)[0]
        assert frame == sse_frame(event)
        assert validate_event(event) == []
    deltas = [decode(f)[0] for f in log.frames if b'.delta"' in f]
    assert [d["delta"] for d in deltas] == texts


def test_held_opening_goes_first_once() -> None:
    """``defer_opening``: the opening is emitted right before the first other event, once,
    and numbered first (the engine's timer that lets it go alone: test_sse_delivery)."""
    log = EventLog("r1")
    calls: list[str] = []

    def opening() -> None:
        calls.append("opening")
        log.emit("run.start", {"runId": "r1"})

    log.defer_opening(opening)
    assert log.frames == []  # held
    log.text_delta("content", "hi")
    log.open()  # already out: nothing again
    log.emit("run.complete", {"runId": "r1"})
    events = [e for frame in log.frames for e in decode(frame)]
    assert calls == ["opening"]
    assert [e["type"] for e in events] == [
        "run.start",
        "content.start",
        "content.delta",
        "content.end",
        "run.complete",
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]

    held = EventLog("r2")
    held.defer_opening(lambda: held.emit("run.start", {"runId": "r2"}) and None)
    held.open()  # as the engine's timer does
    assert [e["type"] for frame in held.frames for e in decode(frame)] == ["run.start"]
