"""Garbage collection for a long-running streaming server (the served process only).

What startup built (modules, settings, the first catalog) lives as long as the process:
``gc.freeze()`` keeps collections from scanning it again (a full collection took ~25 ms
with it, ~5 ms without). A run allocates hundreds of containers, most freed by reference
counting; a live run holds ~165 and they all survive a collection (``collected=0`` in every
young collection of the bench), so a collection while a burst of runs is live costs only
time, and a lot of it: one young collection inside a 200 x 200 burst took 21.4 ms and put
that burst's median first delta at 58.2 ms against 33-39 ms for the seven bursts without
one (``gc.callbacks`` timed in the served gateway, eight bursts, 2026-12-01).

So the collections the interpreter would make are made when no run is at work (live and
not just waiting for a submit; :class:`IdleCollector` looks every 100 ms), when there is
little to scan and nobody to keep waiting. The automatic collection stays as the bound
for a server that is never idle: every 50,000 net container allocations, not 700 (a burst
of 200 runs is ~33,000: it starts with an empty young generation and ends before a
collection). Cyclic garbage waits for the next quiet moment, or at most those 50,000.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from aiohttp import web

from agentgw import appkeys

YOUNG_THRESHOLD = 50_000
IDLE_PERIOD_S = 0.1
IDLE_MIN_COUNT = 1_000  # fewer new containers than this: nothing worth a collection


def serve_gc(app: web.Application) -> None:
    """At startup (after the app's resources), :func:`tune` and start an
    :class:`IdleCollector` that waits until no run is at work (a run waiting for a human's
    submit is not); it stops at cleanup."""
    collectors: list[IdleCollector] = []

    async def start(app: web.Application) -> None:
        tune()
        runs = app[appkeys.RUNS]
        collector = IdleCollector(runs.working)
        collector.start()
        collectors.append(collector)

    async def stop(_app: web.Application) -> None:
        for collector in collectors:
            collector.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def tune() -> None:
    """Freeze what startup built and raise the automatic young threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)


class IdleCollector:
    """Collects when ``busy()`` is false, the generation the interpreter would pick.

    Every ``period_s`` it looks: with ``min_count`` or more containers allocated since the
    last collection and nothing busy, it collects the oldest generation whose count has
    reached its threshold (as the automatic collection does), else the young one.
    """

    def __init__(
        self, busy: Callable[[], bool], *, period_s: float = IDLE_PERIOD_S, min_count: int = IDLE_MIN_COUNT
    ) -> None:
        self.busy = busy
        self.period_s = period_s
        self.min_count = min_count
        self.collections = 0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.period_s, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.period_s, self._tick)
        young, middle, old = gc.get_count()
        if young < self.min_count or self.busy():
            return
        _, middle_threshold, old_threshold = gc.get_threshold()
        generation = 2 if old >= old_threshold else 1 if middle >= middle_threshold else 0
        gc.collect(generation)
        self.collections += 1
