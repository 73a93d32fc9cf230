"""A run's event log: the one place events are numbered, block-bracketed and fanned out.

The engine emits into an :class:`EventLog`; any number of SSE writers (the query response,
a resuming tab) follow it with :meth:`EventLog.pump`. Events are kept for the life of the
run so a reconnecting client can replay what it missed (§10.1).

Fan-out (§4.1, one upstream delta → one event, at once): a follower that has caught up is
written to by the emitting task itself, synchronously, through its :class:`FrameSink`: no
task switch and no wake-up per event. A follower that is behind (it resumed, or its peer
is slow) catches up in its own task and then goes back to being written to directly. The
engine may :meth:`~EventLog.cork` the log while it turns one received provider chunk into
events; :meth:`~EventLog.uncork` then writes them with one send (each still its own event).

Block rules (§11.3): ``reasoning.start``/``content.start`` go out right before a block's first
delta; the open block is closed (``*.end``) by the next event of any other kind and before
the terminal event. Ids are ``{runId}_r_{n}`` / ``{runId}_c_{n}``; a new id opens after any
other event, so new blocks follow every turn, tool result, plan or task event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from agentgw.events import HEARTBEAT, TERMINAL_TYPES, now_ms, sse_frame

Listener = Callable[[dict[str, Any]], None]


class FrameSink(Protocol):
    """Where a follower's SSE frames go (an HTTP response; see ``agentgw.http.sse``)."""

    def write_nowait(self, data: bytes) -> bool:
        """Send ``data`` now if the peer can take it; ``False`` (nothing sent) if it cannot."""
        ...

    async def write(self, data: bytes) -> None:
        """Send ``data``, first waiting for a slow peer; raises when the peer is gone."""
        ...


class _Follower:
    __slots__ = ("beat", "cursor", "last", "sink", "waiter")

    def __init__(self, sink: FrameSink, cursor: int, now: float) -> None:
        self.sink = sink
        self.cursor = cursor  # frames[:cursor] are sent
        self.last = now  # loop time of the last send (heartbeats)
        self.beat = False  # a heartbeat is due
        self.waiter: asyncio.Future[None] | None = None  # set while written to directly


class EventLog:
    __slots__ = (
        "_clock",
        "_corked",
        "_counters",
        "_direct",
        "_listeners",
        "_open_id",
        "_open_kind",
        "_ts",
        "closed",
        "frames",
        "last_event",
        "run_id",
        "seq",
        "task_id",
    )

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0  # the seq of the last event
        self.last_event: dict[str, Any] = {}
        # Events are kept as their SSE frames only (what a resuming client needs); the dicts
        # go to the listeners when emitted and are not held for the life of the run.
        self.frames: list[bytes] = []
        self.closed = False
        self.task_id: str | None = None  # set while a PLAN_EXECUTE task runs
        self._listeners: list[Listener] = []
        self._direct: list[_Follower] = []  # caught-up followers, written to on emit
        self._corked = False
        self._clock: Callable[[], float] | None = None  # the loop's clock, once followed
        self._open_kind: str | None = None  # "reasoning" | "content"
        self._open_id = ""
        self._counters = {"reasoning": 0, "content": 0}
        self._ts = 0

    def add_listener(self, listener: Listener) -> None:
        """Called synchronously with every event (chat memory recorder, metrics)."""
        self._listeners.append(listener)

    # ---- emitting -------------------------------------------------------------------------

    def _push(self, event: dict[str, Any]) -> dict[str, Any]:
        self.seq = event["seq"]
        self.last_event = event
        self.frames.append(sse_frame(event))
        for listener in self._listeners:
            listener(event)
        if self._direct and not self._corked:
            self._fan_out()
        return event

    def cork(self) -> None:
        """Hold direct writes: the events emitted until :meth:`uncork` go out in one send."""
        self._corked = True

    def uncork(self) -> None:
        self._corked = False
        if self._direct:
            self._fan_out()

    def _fan_out(self) -> None:
        frames = self.frames
        end = len(frames)
        stuck: list[_Follower] | None = None
        now = self._clock() if self._clock is not None else 0.0
        for f in self._direct:
            if f.cursor < end:
                data = frames[-1] if end - f.cursor == 1 else b"".join(frames[f.cursor : end])
                if f.sink.write_nowait(data):
                    f.cursor = end
                    f.last = now
                else:
                    stuck = [f] if stuck is None else [*stuck, f]
        if self.closed:
            self._release(list(self._direct))
        elif stuck is not None:
            self._release(stuck)

    def _release(self, followers: list[_Follower]) -> None:
        """Stop writing to ``followers`` directly; their own tasks take over."""
        for f in followers:
            self._direct.remove(f)
            waiter = f.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _timestamp(self) -> int:
        # Strictly increasing timestamps make replays and history sort stably.
        ts = now_ms()
        if ts <= self._ts:
            ts = self._ts + 1
        self._ts = ts
        return ts

    def emit(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Emit any non-delta event; closes an open reasoning/content block first."""
        if self.closed:
            return {}
        if self._open_kind is not None:
            self.close_block()
        event: dict[str, Any] = {"seq": self.seq + 1, "type": type_, "timestamp": self._timestamp()}
        for key, value in fields.items():
            if value is not None:
                event[key] = value
        if type_ in TERMINAL_TYPES:
            self.closed = True
            self._corked = False  # the terminal event goes out now, and followers finish
        return self._push(event)

    def text_delta(self, kind: str, delta: str) -> None:
        """One upstream reasoning/content delta → one ``*.delta`` event (opening a block if needed)."""
        if self.closed or not delta:
            return
        if self._open_kind != kind:
            if self._open_kind is not None:
                self.close_block()
            n = self._counters[kind] + 1
            self._counters[kind] = n
            self._open_id = f"{self.run_id}_{kind[0]}_{n}"
            self._open_kind = kind
            start: dict[str, Any] = {
                "seq": self.seq + 1,
                "type": f"{kind}.start",
                "timestamp": self._timestamp(),
                f"{kind}Id": self._open_id,
                "runId": self.run_id,
            }
            if self.task_id is not None:
                start["taskId"] = self.task_id
            self._push(start)
        self._push(
            {
                "seq": self.seq + 1,
                "type": f"{kind}.delta",
                "timestamp": self._timestamp(),
                f"{kind}Id": self._open_id,
                "delta": delta,
            }
        )

    def close_block(self) -> None:
        kind = self._open_kind
        if kind is None:
            return
        self._open_kind = None
        self._push(
            {
                "seq": self.seq + 1,
                "type": f"{kind}.end",
                "timestamp": self._timestamp(),
                f"{kind}Id": self._open_id,
            }
        )

    @property
    def open_block_id(self) -> str | None:
        return self._open_id if self._open_kind is not None else None

    # ---- following ------------------------------------------------------------------------

    async def pump(self, sink: FrameSink, after: int = 0, heartbeat_s: float = 15.0) -> None:
        """Send the frames after seq ``after`` to ``sink`` until the terminal event.

        Frames already emitted go out in one send (each still its own SSE event); once
        caught up, the follower is written to by the emitting task (see the module doc)
        and this task only sleeps. A heartbeat goes out after ``heartbeat_s`` without a
        send, from one timer per follower, re-armed when it fires. Returns after the
        terminal frame is sent; raises what ``sink.write`` raises (a peer that went away).
        """
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        f = _Follower(sink, max(0, after), loop.time())
        handle: asyncio.TimerHandle

        def tick() -> None:
            nonlocal handle
            now = loop.time()
            due = f.last + heartbeat_s
            if now >= due:
                if f.waiter is not None and f.sink.write_nowait(HEARTBEAT):
                    f.last = now
                else:
                    f.beat = True
                    if f.waiter is not None:
                        self._release([f])
                due = now + heartbeat_s
            handle = loop.call_at(due, tick)

        handle = loop.call_at(f.last + heartbeat_s, tick)
        try:
            while True:
                frames = self.frames
                end = len(frames)
                if f.cursor < end:
                    data = frames[f.cursor] if end - f.cursor == 1 else b"".join(frames[f.cursor : end])
                    f.cursor = end
                    await sink.write(data)
                    f.last = loop.time()
                    continue
                if self.closed:
                    return
                if f.beat:
                    f.beat = False
                    await sink.write(HEARTBEAT)
                    f.last = loop.time()
                    continue
                f.waiter = loop.create_future()
                self._direct.append(f)
                try:
                    await f.waiter
                finally:
                    f.waiter = None
                    if f in self._direct:  # cancelled (the peer went away)
                        self._direct.remove(f)
        finally:
            handle.cancel()
