"""A run's event log: the one place events are numbered, block-bracketed and fanned out.

The engine emits into an :class:`EventLog`; any number of SSE writers (the query response,
a resuming tab) follow it with :meth:`EventLog.pump`. Events are kept for the life of the
run so a reconnecting client can replay what it missed (§10.1).

Fan-out (§4.1, one upstream delta → one event, at once): a follower that has caught up is
written to by the emitting task itself, synchronously, through its :class:`FrameSink`: no
task switch and no wake-up per event. A follower that is behind (it resumed, or its peer
is slow) catches up in its own task and then goes back to being written to directly.

The engine :meth:`~EventLog.cork`-s the log while it turns one received provider chunk into
events; :meth:`~EventLog.uncork` writes them at once with one send (each still its own
event). Events emitted outside a cork (block ends, usage, tool results) go out as soon as
the emitting task yields to the loop, together with whatever else it emitted in that step;
the terminal event wakes the followers at once, and each sends it with the end of its
response (:meth:`EventLog.pump` returns it), in one send.

Block rules (§11.3): ``reasoning.start``/``content.start`` go out right before a block's first
delta; the open block is closed (``*.end``) by the next event of any other kind and before
the terminal event. Ids are ``{runId}_r_{n}`` / ``{runId}_c_{n}``; a new id opens after any
other event, so new blocks follow every turn, tool result, plan or task event.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import orjson

from agentgw.events import HEARTBEAT, TERMINAL_TYPES, sse_frame

_time = time.time
_dumps = orjson.dumps


class Listener(Protocol):
    """Sees every event synchronously as it is emitted (the chat memory recorder)."""

    def on_event(self, event: dict[str, Any]) -> None:
        """Any event but a reasoning/content delta."""
        ...

    def on_text(self, kind: str, block_id: str, text: str) -> None:
        """A ``reasoning.delta`` / ``content.delta``: its kind, block id and text."""
        ...


class FrameSink(Protocol):
    """Where a follower's SSE frames go (an HTTP response: ``agentgw.http.run_routes.ResponseSink``)."""

    def write_nowait(self, data: bytes) -> bool:
        """Send ``data`` now if the peer can take it; ``False`` (nothing sent) if it cannot."""
        ...

    async def write(self, data: bytes) -> None:
        """Send ``data``, first waiting for a slow peer; raises when the peer is gone."""
        ...


class _Follower:
    __slots__ = ("beat", "cursor", "heartbeat_s", "last", "log", "sink", "waiter")

    def __init__(self, log: EventLog, sink: FrameSink, cursor: int, now: float, heartbeat_s: float) -> None:
        self.log = log
        self.sink = sink
        self.cursor = cursor  # frames[:cursor] are sent
        self.last = now  # loop time of the last send (heartbeats)
        self.heartbeat_s = heartbeat_s
        self.beat = False  # a heartbeat is due
        self.waiter: asyncio.Future[None] | None = None  # set while written to directly


class _Heartbeats:
    """One timer for every follower on a loop, instead of a timer (and closure) each.

    It ticks at a fifteenth of the shortest heartbeat interval (1 s for 15 s) while anyone
    follows; a follower idle for its interval gets its heartbeat at the next tick.
    """

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Heartbeats]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.followers: set[_Follower] = set()
        self.period = float("inf")
        self.handle: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Heartbeats:
        beats = cls._by_loop.get(loop)
        if beats is None:
            beats = cls._by_loop[loop] = cls(loop)
        return beats

    def add(self, f: _Follower) -> None:
        self.followers.add(f)
        period = f.heartbeat_s / 15
        if self.handle is None or period < self.period:
            self.period = period
            if self.handle is not None:
                self.handle.cancel()
            self.handle = self.loop.call_later(period, self._tick)

    def discard(self, f: _Follower) -> None:
        self.followers.discard(f)
        if not self.followers and self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.period = float("inf")

    def _tick(self) -> None:
        now = self.loop.time()
        for f in [f for f in self.followers if now - f.last >= f.heartbeat_s]:
            if f.waiter is not None and f.sink.write_nowait(HEARTBEAT):
                f.last = now
            else:
                f.beat = True
                if f.waiter is not None:
                    f.log._release([f])
        self.handle = self.loop.call_at(now + self.period, self._tick)


class EventLog:
    __slots__ = (
        "_corked",
        "_counters",
        "_delta_head",
        "_direct",
        "_listeners",
        "_loop",
        "_open_id",
        "_open_kind",
        "_opening",
        "_soon",
        "_ts",
        "closed",
        "frames",
        "last_type",
        "run_id",
        "seq",
        "task_id",
    )

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0  # the seq of the last event
        self.last_type = ""  # the type of the last event but a text delta
        # Events are kept as their SSE frames only (what a resuming client needs); the dicts
        # go to the listeners when emitted and are not held for the life of the run.
        self.frames: list[bytes] = []
        self.closed = False
        self.task_id: str | None = None  # set while a PLAN_EXECUTE task runs
        self._listeners: list[Listener] = []
        self._direct: list[_Follower] = []  # caught-up followers, written to on emit
        self._corked = False
        self._soon = False  # a fan-out is scheduled for when the emitting task yields
        self._loop: asyncio.AbstractEventLoop | None = None  # set once followed
        self._open_kind: str | None = None  # "reasoning" | "content"
        self._open_id = ""
        self._delta_head = b""  # the open block's delta frame up to the delta's JSON
        self._counters = {"reasoning": 0, "content": 0}
        self._ts = 0
        self._opening: Callable[[], None] | None = None  # see defer_opening

    def defer_opening(self, opening: Callable[[], None]) -> None:
        """Hold ``opening`` (it emits the run's first events) until the log is about to emit
        anything else or :meth:`open` is called (the engine does after a while).

        A run's first events and the work that goes with them wait so for its provider's
        answer: in a burst of queries, a run's first delta does not wait for the opening
        work of every query that came after it.
        """
        assert self.seq == 0 and self._opening is None, "the opening is the first thing emitted"
        self._opening = opening

    def open(self) -> None:
        """Emit the held opening now, if there is one (see :meth:`defer_opening`)."""
        opening = self._opening
        if opening is not None:
            self._opening = None
            opening()

    def add_listener(self, listener: Listener) -> None:
        """Give ``listener`` every event from now on, synchronously."""
        self._listeners.append(listener)

    # ---- emitting -------------------------------------------------------------------------

    def _push(self, event: dict[str, Any]) -> dict[str, Any]:
        self.seq = event["seq"]
        self.last_type = event["type"]
        self.frames.append(sse_frame(event))
        for listener in self._listeners:
            listener.on_event(event)
        if self._direct and not self._corked and not self._soon:
            self._fan_out_soon()
        return event

    def _fan_out_soon(self) -> None:
        assert self._loop is not None
        self._soon = True
        self._loop.call_soon(self._fan_out)

    def cork(self) -> None:
        """Hold direct writes: the events emitted until :meth:`uncork` go out in one send."""
        self._corked = True

    def uncork(self) -> None:
        self._corked = False
        if self._direct:
            self._fan_out()

    def _fan_out(self) -> None:
        self._soon = False
        if self.closed:
            # The last frames go out with the end of each response, from the followers' own
            # tasks (see pump): one send for the terminal event and the end of the stream.
            self._release(list(self._direct))
            return
        frames = self.frames
        end = len(frames)
        stuck: list[_Follower] | None = None
        now = self._loop.time() if self._loop is not None else 0.0
        for f in self._direct:
            if f.cursor < end:
                data = frames[-1] if end - f.cursor == 1 else b"".join(frames[f.cursor : end])
                try:
                    sent = f.sink.write_nowait(data)
                except Exception:  # the follower's own write will report what is wrong
                    sent = False
                if sent:
                    f.cursor = end
                    f.last = now
                else:
                    stuck = [f] if stuck is None else [*stuck, f]
        if stuck is not None:
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
        ts = int(_time() * 1000)
        if ts <= self._ts:
            ts = self._ts + 1
        self._ts = ts
        return ts

    def emit(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Emit any non-delta event; closes an open reasoning/content block first."""
        if self.closed:
            return {}
        if self._opening is not None:
            self.open()
        if self._open_kind is not None:
            self.close_block()
        event: dict[str, Any] = {"seq": self.seq + 1, "type": type_, "timestamp": self._timestamp()}
        for key, value in fields.items():
            if value is not None:
                event[key] = value
        if type_ in TERMINAL_TYPES:
            self.closed = True
            self._corked = True  # no fan-out scheduled for later: it happens right below
            self._push(event)
            self._corked = False
            self._listeners = []  # nothing more is emitted: let the recorder go with the run
            if self._direct:
                self._fan_out()  # followers wake and send the rest with their response's end
            return event
        return self._push(event)

    def text_delta(self, kind: str, delta: str) -> None:
        """One upstream reasoning/content delta → one ``*.delta`` event (opening a block if needed).

        The hot path: the frame is formatted directly (the same bytes ``sse_frame`` makes of
        the event ``{seq, type, timestamp, <kind>Id, delta}``) and listeners get the text.
        """
        if self.closed or not delta:
            return
        if self._open_kind != kind:
            # A held opening goes first; a block is open only after it did (not per delta).
            if self._opening is not None:
                self.open()
            self._open_block(kind)
        seq = self.seq + 1
        self.seq = seq
        ts = int(_time() * 1000)  # _timestamp(), inlined: this runs once per delta
        if ts <= self._ts:
            ts = self._ts + 1
        self._ts = ts
        self.frames.append(self._delta_head % (seq, seq, ts) + _dumps(delta) + b"}\n\n")
        for listener in self._listeners:
            listener.on_text(kind, self._open_id, delta)
        if self._direct and not self._corked and not self._soon:
            self._fan_out_soon()

    def _open_block(self, kind: str) -> None:
        if self._open_kind is not None:
            self.close_block()
        n = self._counters[kind] + 1
        self._counters[kind] = n
        self._open_id = block_id = f"{self.run_id}_{kind[0]}_{n}"
        self._open_kind = kind
        self._delta_head = (
            b'id: %%d\nevent: message\ndata: {"seq":%%d,"type":"%b.delta","timestamp":%%d,"%bId":%b,"delta":'
            % (kind.encode(), kind.encode(), orjson.dumps(block_id))
        )
        start: dict[str, Any] = {
            "seq": self.seq + 1,
            "type": f"{kind}.start",
            "timestamp": self._timestamp(),
            f"{kind}Id": block_id,
            "runId": self.run_id,
        }
        if self.task_id is not None:
            start["taskId"] = self.task_id
        self._push(start)

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

    async def pump(self, sink: FrameSink, after: int = 0, heartbeat_s: float = 15.0) -> bytes:
        """Send the frames after seq ``after`` to ``sink``; return the last ones, unsent.

        Frames already emitted go out in one send (each still its own SSE event); once
        caught up, the follower is written to by the emitting task (see the module doc)
        and this task only sleeps. A heartbeat goes out after ``heartbeat_s`` without a
        send (see :class:`_Heartbeats`). Once the log is closed, the frames not sent yet
        (the terminal event and what came with it) are returned for the caller to send
        with the end of its response, in the same send. Raises what ``sink.write`` raises
        (a peer that went away).
        """
        loop = asyncio.get_running_loop()
        self._loop = loop
        f = _Follower(self, sink, max(0, after), loop.time(), heartbeat_s)
        beats = _Heartbeats.of(loop)
        beats.add(f)
        try:
            while True:
                frames = self.frames
                end = len(frames)
                if self.closed:
                    start, f.cursor = f.cursor, end
                    return frames[start] if end - start == 1 else b"".join(frames[start:end])
                if f.cursor < end:
                    start, f.cursor = f.cursor, end
                    await sink.write(frames[start] if end - start == 1 else b"".join(frames[start:end]))
                    f.last = loop.time()
                    continue
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
            beats.discard(f)
