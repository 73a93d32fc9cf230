"""The one client that drives both the relay and the gateway, and the /proc readers.

Each delta carries its provider send time (``"<ns>|"``); the client stamps arrival and
checks that every event holds exactly one upstream delta (no merging) and that none is lost.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from agentgw.providers.wire import ProviderClient, Response


def cpu_seconds(pid: int) -> float:
    """CPU time of a process (all its threads), in seconds, at nanosecond resolution.

    ``/proc/<pid>/task/<tid>/schedstat`` holds each thread's time on CPU in ns; the sum is
    exact for threads alive at both readings (the gateway's worker threads live as long as
    it does). ``/proc/<pid>/stat`` counts in 10 ms ticks, too coarse for per-request costs.
    """
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended between listdir and open
    return total / 1e9


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass
class Target:
    """Where a stream goes: the relay (raw provider chunks) or the gateway (SSE events)."""

    name: str
    url: str
    pid: int
    gateway: bool

    def body(self, control: str, agent: str = "bench") -> dict[str, Any]:
        if self.gateway:
            return {"agentKey": agent, "message": control}
        return {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": control}]}


@dataclass
class StreamStats:
    deltas: int = 0
    merged: int = 0
    latencies_us: list[float] = field(default_factory=list)
    ttfd_ms: float | None = None
    error: str | None = None
    events: int = 0
    terminal: str | None = None


_HEADERS = {"Content-Type": "application/json"}
_GW_MARK = b'"type":"content.delta"'
_GW_DELTA = b'"delta":"'
_RELAY_DELTA = b'"content":"'


def _scan(frame: bytes, gateway: bool, stats: StreamStats, now_ns: int, started_ns: int) -> None:
    if gateway:
        if b'"type":"run.' in frame:
            for kind in (b"run.complete", b"run.error", b"run.cancel"):
                if kind in frame:
                    stats.terminal = kind.decode()
        if _GW_MARK not in frame:
            if frame.startswith(b"id:"):
                stats.events += 1
            return
        stats.events += 1
        start = frame.index(_GW_DELTA) + len(_GW_DELTA)
    else:
        pos = frame.find(_RELAY_DELTA)
        if pos < 0:
            return
        start = pos + len(_RELAY_DELTA)
    end = frame.index(b"|", start)
    if frame[end + 1 : end + 2] != b'"':
        stats.merged += 1
    sent = int(frame[start:end])
    if stats.ttfd_ms is None:
        stats.ttfd_ms = (now_ns - started_ns) / 1e6
    stats.deltas += 1
    stats.latencies_us.append((now_ns - sent) / 1e3)


async def one_stream(
    client: ProviderClient,
    target: Target,
    control: str,
    agent: str = "bench",
    timeout_s: float = 120,
    stats: StreamStats | None = None,
) -> StreamStats:
    """One stream through ``target``; ``stats`` (filled as the stream goes) may be given.

    The body is read in the connection's read callback (``agentgw.providers.wire``, a plain
    HTTP/1.1 client): the client shares the two cores with what it measures, so it should
    cost as little as it can, and the same for every target. aiohttp's client cost ~120 us
    per stream up to its first delta, as much as the relay itself, and one task wake-up per
    read: a target whose first delta comes in a later read than its first bytes (the
    gateway's ``run.start`` goes out before the provider answers) was charged one more.
    """
    stats = stats if stats is not None else StreamStats()
    gateway = target.gateway
    started = time.time_ns()
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    tail = b""

    def on_data(chunk: bytes) -> None:
        nonlocal tail
        now = time.time_ns()
        data = tail + chunk if tail else chunk
        if b"\n\n" not in data:
            tail = data
            return
        *frames, tail = data.split(b"\n\n")
        for frame in frames:
            _scan(frame, gateway, stats, now, started)

    def on_end(exc: BaseException | None) -> None:
        if not ended.done():
            ended.set_result(exc)

    def stream_if(
        resp: Response,
    ) -> tuple[Callable[[bytes], None], Callable[[BaseException | None], None]] | None:
        return (on_data, on_end) if resp.status == 200 else None

    try:
        async with asyncio.timeout(timeout_s):
            body = orjson.dumps(target.body(control, agent))
            resp = await client.post(target.url, _HEADERS, body, connect_timeout_s=30, stream_if=stream_if)
            try:
                if resp.status != 200:
                    text = (await resp.read(200)).decode(errors="replace")
                    stats.error = f"HTTP {resp.status}: {text}"
                    return stats
                failure = await ended
                if failure is not None:
                    raise failure
            finally:
                resp.release()
    except Exception as exc:  # the bench reports errors, it does not stop on them
        stats.error = f"{type(exc).__name__}: {exc}"
    if gateway and stats.error is None and stats.terminal != "run.complete":
        stats.error = f"stream ended with {stats.terminal}"
    return stats


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class RunResult:
    target: str
    streams: int
    sent: int
    delivered: int
    merged: int
    errors: list[str]
    cpu_us_per_delta: float
    latency_p50_us: float
    latency_p99_us: float
    ttfd_p50_ms: float
    ttfd_p99_ms: float
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


async def run_streams(
    client: ProviderClient,
    target: Target,
    streams: int,
    deltas: int,
    gap_us: int = 0,
    settle_s: float = 0.0,
) -> RunResult:
    """``streams`` streams at once; the target's CPU is read ``settle_s`` after the last ended.

    What a target does after its streams ended (the gateway stores chats 100 ms after a
    run's start and collects garbage once no run is live) is its own work: the settle time
    counts it in its CPU, and keeps it out of the rounds of the target measured next.
    """
    control = f"n={deltas} gap_us={gap_us}"
    cpu0 = cpu_seconds(target.pid)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one_stream(client, target, control) for _ in range(streams)))
    wall = time.perf_counter() - t0
    if settle_s:
        await asyncio.sleep(settle_s)
    cpu = cpu_seconds(target.pid) - cpu0
    delivered = sum(r.deltas for r in results)
    latencies = [v for r in results for v in r.latencies_us]
    ttfds = [r.ttfd_ms for r in results if r.ttfd_ms is not None]
    return RunResult(
        target=target.name,
        streams=streams,
        sent=streams * deltas,
        delivered=delivered,
        merged=sum(r.merged for r in results),
        errors=[r.error for r in results if r.error][:5],
        cpu_us_per_delta=cpu / max(1, delivered) * 1e6,
        latency_p50_us=percentile(latencies, 50),
        latency_p99_us=percentile(latencies, 99),
        ttfd_p50_ms=statistics.median(ttfds) if ttfds else float("nan"),
        ttfd_p99_ms=percentile(ttfds, 99) if ttfds else float("nan"),
        wall_s=wall,
    )
