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
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.events: list[dict[str, Any]] = []
        self.frames: list[bytes] = []
        self.closed = False
        self.task_id: str | None = None  # set while a PLAN_EXECUTE task runs
        self._listeners: list[Listener] = []
        self._wake: asyncio.Future[None] | None = None
        self._open_kind: str | None = None  # "reasoning" | "content"
        self._open_id = ""
        self._counters = {"reasoning": 0, "content": 0}
        self._ts = 0

    def add_listener(self, listener: Listener) -> None:
        """Called synchronously with every event (chat memory recorder, metrics)."""
        self._listeners.append(listener)

    # ---- emitting -------------------------------------------------------------------------

    def _push(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        self.frames.append(sse_frame(event))
        for listener in self._listeners:
            listener(event)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)
        return event

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
        event: dict[str, Any] = {"seq": len(self.events) + 1, "type": type_, "timestamp": self._timestamp()}
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
                "seq": len(self.events) + 1,
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
                "seq": len(self.events) + 1,
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
                "seq": len(self.events) + 1,
                "type": f"{kind}.end",
                "timestamp": self._timestamp(),
                f"{kind}Id": self._open_id,
            }
        )

    @property
    def open_block_id(self) -> str | None:
        return self._open_id if self._open_kind is not None else None

    # ---- following ------------------------------------------------------------------------

    async def wait_beyond(self, cursor: int, wait_s: float | None) -> bool:
        """Wait until there are more than ``cursor`` events or the log is closed.

        Returns False on timeout (the caller sends a heartbeat).
        """
        if cursor < len(self.frames) or self.closed:
            return True
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._wake), wait_s)
        except TimeoutError:
            return False
        return True

    async def follow(self, after: int = 0, heartbeat_s: float = 15.0) -> AsyncIterator[bytes | None]:
        """Yield SSE frames from ``seq > after`` until the terminal event; ``None`` means heartbeat."""
        cursor = max(0, after)
        while True:
            frames = self.frames
            end = len(frames)
            if cursor < end:
                # Frames already emitted go out in one write: each is still its own SSE event,
                # nothing waits for more, and a burst costs one syscall instead of many.
                yield frames[cursor] if end - cursor == 1 else b"".join(frames[cursor:end])
                cursor = end
                continue
            if self.closed:
                return
            if not await self.wait_beyond(cursor, heartbeat_s):
                yield None
