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
sends the model call) runs as soon as the handler's step returns, not at the end of the
next iteration behind the steps of every query that came after it (−3.4 and −3.7 ms in two
such A/B runs).

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


class GatewayLoop(asyncio.SelectorEventLoop):
    """A selector event loop that runs urgent sockets' read callbacks first, and the first
    step of a task made by :meth:`create_task_next` right after the callback that made it."""

    def __init__(self) -> None:
        super().__init__()
        self._urgent: set[int] = set()

    def create_task_next(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """A task whose first step runs right after the running callback, ahead of the
        callbacks already waiting (see :func:`create_task_next`)."""
        ready: collections.deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        before = len(ready)
        task = self.create_task(coro, name=name)
        if len(ready) == before + 1:  # the task's first step, just scheduled: moved to the front
            ready.appendleft(ready.pop())
        return task

    def mark_urgent(self, fd: int) -> None:
        self._urgent.add(fd)

    def unmark_urgent(self, fd: int) -> None:
        self._urgent.discard(fd)

    # asyncio.selector_events.BaseSelectorEventLoop._process_events (Python 3.11), but an
    # urgent reader's handle goes ahead of the callbacks already waiting.
    def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None:
        urgent = self._urgent
        first: list[asyncio.Handle] = []
        for key, mask in event_list:
            reader, writer = key.data
            if mask & selectors.EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)  # type: ignore[attr-defined]
                elif key.fd in urgent:
                    first.append(reader)
                else:
                    self._add_callback(reader)  # type: ignore[attr-defined]
            if mask & selectors.EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)  # type: ignore[attr-defined]
                else:
                    self._add_callback(writer)  # type: ignore[attr-defined]
        if first:
            self._ready.extendleft(reversed(first))  # type: ignore[attr-defined]


def create_task_next(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as a task whose first step runs as soon as the running callback returns.

    For a run started by a query's handler: its first step (up to sending the model call)
    follows the handler's in the same loop iteration instead of waiting, at the end of the
    next one, for the steps of every query that came after it. In a burst the model calls
    still go out one iteration's worth at a time, only sooner. Measured (200 streams x 200
    deltas starting at once, ``python -m bench.ab``, two runs of 10 and 12 rounds): first
    delta p50 -3.4 and -3.7 ms (round by round, median), the same CPU per delta. Running
    the handler's task eagerly after its read too was worse (+2.3 ms). On another loop
    this is ``asyncio.create_task``.
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


def unmark_urgent(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Before the socket is closed (its fd may be reused at once)."""
    if fd >= 0 and isinstance(loop, GatewayLoop):
        loop.unmark_urgent(fd)
