"""A run's event log: the one place events are numbered, block-bracketed and fanned out.

The engine emits into an :class:`EventLog`; any number of SSE writers (the query response,
a resuming tab) follow it with :meth:`EventLog.follow`. Events are kept for the life of the
run so a reconnecting client can replay what it missed (§10.1).

Block rules (§11.3): ``reasoning.start``/``content.start`` go out right before a block's first
delta; the open block is closed (``*.end``) by the next event of any other kind and before
the terminal event. Ids are ``{runId}_r_{n}`` / ``{runId}_c_{n}``; a new id opens after any
other event, so new blocks follow every turn, tool result, plan or task event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from agentgw.events import TERMINAL_TYPES, now_ms, sse_frame

Listener = Callable[[dict[str, Any]], None]


class EventLog:
    __slots__ = (
        "_counters",
        "_listeners",
        "_open_id",
        "_open_kind",
        "_ts",
        "_waiters",
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
        self._waiters: list[asyncio.Future[None]] = []  # one per follower that is idle
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
        if self._waiters:
            self._wake_all()
        return event

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
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

    async def follow(self, after: int = 0, heartbeat_s: float = 15.0) -> AsyncIterator[bytes | None]:
        """Yield SSE frames from ``seq > after`` until the terminal event; ``None`` means heartbeat.

        Each follower waits on a future of its own (a disconnecting client cancels only its
        own), and one timer per follower, re-armed when it fires, drives the heartbeat: no
        timer is created per event.
        """
        loop = asyncio.get_running_loop()
        cursor = max(0, after)
        last_sent = loop.time()
        beat = False
        waiter: asyncio.Future[None] | None = None
        handle: asyncio.TimerHandle

        def tick() -> None:
            nonlocal handle, beat
            due = last_sent + heartbeat_s
            if loop.time() >= due:
                beat = True
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                due = loop.time() + heartbeat_s
            handle = loop.call_at(due, tick)

        handle = loop.call_at(last_sent + heartbeat_s, tick)
        try:
            while True:
                frames = self.frames
                end = len(frames)
                if cursor < end:
                    # Frames already emitted go out in one write: each is still its own SSE
                    # event, nothing waits for more, and a burst costs one syscall, not many.
                    yield frames[cursor] if end - cursor == 1 else b"".join(frames[cursor:end])
                    cursor = end
                    last_sent = loop.time()
                    continue
                if self.closed:
                    return
                if beat:
                    beat = False
                    yield None
                    last_sent = loop.time()
                    continue
                waiter = loop.create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if not waiter.done():  # cancelled: stop being woken
                        self._waiters.remove(waiter)
                    waiter = None
        finally:
            handle.cancel()
