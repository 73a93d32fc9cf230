"""The served gateway's event loop: asyncio's, with provider reads first and runs started next.

asyncio runs the callbacks of one loop iteration in order: those already waiting (task
steps scheduled by the previous iteration: a new query's handler, a run building its model
call), then the reads the selector has just reported. In a burst of queries that order
holds a provider's first delta, already in the socket, behind the work of every query that
came after it. :class:`GatewayLoop` runs the read callback of an *urgent* socket (a provider
connection of ``agentgw.providers.wire``) before the callbacks already waiting: what is
streaming goes out first, new work after. The work is the same, its order is not: in a
burst, the queries that came first get their first deltas sooner and the last ones later.
Measured (200 streams × 200 deltas starting at once, A/B of two gateways against one
provider, pinned, two runs of 12 rounds): first delta p50 29.8 → 28.3 and 28.5 ms
(per-round median differences −1.9 and −1.0 ms), the same CPU per delta.

A query's handler starts its run with :func:`create_task_next`: the run's first step (it
sends the model call) runs a few callbacks later, with the runs the next handlers start,
not at the end of the next iteration behind the steps of every query that came after it.
Right after its handler it cost the CPU more than it saved the model call: a handler and a
run taking turns each ran ~15-20 us slower than in a row of its kind (their code and data
evicting each other from the core's caches; ``bench.loop_profile``, held bursts of 200: a
request's CPU up to its first delta 202 us with runs a loop iteration later, 228 right
after each handler, 213 and 205 in groups of 4 and 8). In groups of ``NEXT_GROUP`` (4):
first delta p50 -3.4 and -3.7 ms for one run after each handler, and -1.4 ms more for the
groups of 4 (``python -m bench.ab``, 200 x 200, runs of 12 and 30 rounds).

Of the urgent reads, those of connections still waiting for their response's head (the
head comes with the first delta) go first: a new stream's first delta before the next
deltas of the streams already going, which wait a few reads more (A/B, 200 x 200, two runs
of 30 rounds: first delta p50 -2.7 and -2.1 ms).

A read callback of a provider connection only parses the bytes and emits the events they
hold (it sets everything it needs before the request is sent), so running it earlier does
not reorder anything that depends on it. Any other loop (the tests', uvloop) simply has no
urgent sockets: :func:`mark_urgent` does nothing there.
"""

from __future__ import annotations

import asyncio
import collections
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

NEXT_GROUP = 4  # first steps of create_task_next tasks run in groups of up to this many


class GatewayLoop(asyncio.SelectorEventLoop):
    """A selector event loop that runs urgent sockets' read callbacks first, and the first
    steps of tasks made by :meth:`create_task_next` a few callbacks after they were made."""

    def __init__(self) -> None:
        super().__init__()
        self._urgent: set[int] = set()
        self._heads: set[int] = set()  # urgent sockets whose response's head is not in yet
        self._next: list[asyncio.Handle] = []  # first steps of the group being gathered
        self._next_go = asyncio.Handle(self._run_next, (), self)

    def create_task_next(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """A task whose first step runs after at most ``NEXT_GROUP - 1`` of the callbacks
        already waiting, with the first steps of the tasks made so meanwhile, in the order
        they were made, ahead of every other callback (see :func:`create_task_next`)."""
        ready: collections.deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        before = len(ready)
        task = self.create_task(coro, name=name)
        if len(ready) == before + 1:  # the task's first step, just scheduled: taken out
            group = self._next
            group.append(ready.pop())
            if len(group) == 1:  # the group's first: it starts after the next few callbacks
                ready.insert(min(NEXT_GROUP - 1, len(ready)), self._next_go)
        return task

    def _run_next(self) -> None:
        group, self._next = self._next, []
        self._ready.extendleft(reversed(group))  # type: ignore[attr-defined]

    def mark_urgent(self, fd: int) -> None:
        self._urgent.add(fd)

    def unmark_urgent(self, fd: int) -> None:
        self._urgent.discard(fd)
        self._heads.discard(fd)

    def expect_head(self, fd: int) -> None:
        """An urgent socket's request is sent: its reads go first until :meth:`head_in`."""
        if fd in self._urgent:
            self._heads.add(fd)

    def head_in(self, fd: int) -> None:
        self._heads.discard(fd)

    # asyncio.selector_events.BaseSelectorEventLoop._process_events (Python 3.11), but an
    # urgent reader's handle goes ahead of the callbacks already waiting, and of those the
    # ones of sockets waiting for their response's head go first.
    def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None:
        urgent = self._urgent
        heads = self._heads
        first: list[asyncio.Handle] = []
        streaming: list[asyncio.Handle] = []
        for key, mask in event_list:
            reader, writer = key.data
            if mask & selectors.EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)  # type: ignore[attr-defined]
                elif key.fd in urgent:
                    (first if key.fd in heads else streaming).append(reader)
                else:
                    self._add_callback(reader)  # type: ignore[attr-defined]
            if mask & selectors.EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)  # type: ignore[attr-defined]
                else:
                    self._add_callback(writer)  # type: ignore[attr-defined]
        if streaming:
            self._ready.extendleft(reversed(streaming))  # type: ignore[attr-defined]
        if first:
            self._ready.extendleft(reversed(first))  # type: ignore[attr-defined]


def create_task_next(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as a task whose first step runs a few callbacks from now.

    For a run started by a query's handler: its first step (up to sending the model call)
    runs after at most ``NEXT_GROUP - 1`` more callbacks (mostly the next queries'
    handlers), with the runs those start, instead of waiting, at the end of the next loop
    iteration, for the steps of every query that came after it (module notes). Running the
    handler's own task eagerly after its read too was worse (+2.3 ms at 200 x 200). On
    another loop this is ``asyncio.create_task``.
    """
    loop = asyncio.get_running_loop()
    if isinstance(loop, GatewayLoop):
        return loop.create_task_next(coro, name=name)
    return loop.create_task(coro, name=name)


def mark_urgent(loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> int:
    """Mark ``transport``'s socket urgent on ``loop`` (a :class:`GatewayLoop`); returns its fd
    for :func:`unmark_urgent`, or -1 when there is nothing to mark."""
    if not isinstance(loop, GatewayLoop):
        return -1
    sock: Any = transport.get_extra_info("socket")
    fd = sock.fileno() if sock is not None else -1
    if fd >= 0:
        loop.mark_urgent(fd)
    return fd


def expect_head(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """A request went out on the urgent socket ``fd``: until :func:`head_in`, its reads go
    before the other urgent reads (a stream's first delta before the next deltas of the
    streams already going). Nothing on another loop."""
    if fd >= 0 and isinstance(loop, GatewayLoop):
        loop.expect_head(fd)


def head_in(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    if fd >= 0 and isinstance(loop, GatewayLoop):
        loop.head_in(fd)


def unmark_urgent(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Before the socket is closed (its fd may be reused at once)."""
    if fd >= 0 and isinstance(loop, GatewayLoop):
        loop.unmark_urgent(fd)
