"""The served process collects garbage at quiet moments (agentgw.gctune.IdleCollector).

Automatic collection is off in these tests, so what is collected is the collector's doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator

import pytest

from agentgw.gctune import IdleCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """Cyclic garbage only a collection frees: two nodes pointing at each other."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


async def freed(ref: weakref.ref[Node], limit_s: float = 1.0) -> bool:
    """Whether ``ref``'s object is freed within ``limit_s`` (the collector ticks meanwhile)."""
    for _ in range(int(limit_s / 0.01)):
        if ref() is None:
            return True
        await asyncio.sleep(0.01)
    return ref() is None


@contextlib.contextmanager
def running(collector: IdleCollector) -> Iterator[IdleCollector]:
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_garbage_is_collected_when_nothing_is_busy(no_automatic_gc: None) -> None:
    garbage = cycle()
    with running(IdleCollector(lambda: False, period_s=0.01, min_count=1)) as collector:
        assert await freed(garbage)
    assert collector.collections >= 1


async def test_nothing_is_collected_while_busy(no_automatic_gc: None) -> None:
    busy = True
    garbage = cycle()
    with running(IdleCollector(lambda: busy, period_s=0.01, min_count=1)) as collector:
        await asyncio.sleep(0.1)
        assert garbage() is not None and collector.collections == 0
        busy = False
        assert await freed(garbage)


async def test_few_new_objects_are_not_worth_a_collection(no_automatic_gc: None) -> None:
    garbage = cycle()
    with running(IdleCollector(lambda: False, period_s=0.01, min_count=10_000_000)) as collector:
        await asyncio.sleep(0.1)
    assert garbage() is not None and collector.collections == 0
    gc.collect()


async def test_the_generation_is_the_one_the_interpreter_would_pick(no_automatic_gc: None) -> None:
    """Once the young generation was collected as often as the middle one's threshold
    says, the middle one is collected, as an automatic collection would do."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    before = gc.get_threshold()
    gc.set_threshold(before[0], 3, 1000)
    gc.callbacks.append(record)
    try:
        with running(IdleCollector(lambda: False, period_s=0.005, min_count=1)):
            for _ in range(400):
                keep = [cycle() for _ in range(5)]  # something new to collect on every tick
                if 1 in seen:
                    break
                await asyncio.sleep(0.005)
            del keep
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*before)
    assert seen[:3] == [0, 0, 0] and 1 in seen
