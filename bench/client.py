"""The one client that drives both the relay and the gateway, and the /proc readers.

Each delta carries its provider send time (``"<ns>|"``); the client stamps arrival and
checks that every event holds exactly one upstream delta (no merging) and that none is lost.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp


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
    session: aiohttp.ClientSession,
    target: Target,
    control: str,
    agent: str = "bench",
    timeout_s: float = 120,
    stats: StreamStats | None = None,
) -> StreamStats:
    """One stream through ``target``; ``stats`` (filled as the stream goes) may be given."""
    stats = stats if stats is not None else StreamStats()
    started = time.time_ns()
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(target.url, json=target.body(control, agent)) as resp:
                if resp.status != 200:
                    stats.error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                    return stats
                buf = b""
                async for chunk in resp.content.iter_any():
                    now = time.time_ns()
                    buf += chunk
                    if b"\n\n" not in buf:
                        continue
                    *frames, buf = buf.split(b"\n\n")
                    for frame in frames:
                        _scan(frame, target.gateway, stats, now, started)
    except Exception as exc:  # the bench reports errors, it does not stop on them
        stats.error = f"{type(exc).__name__}: {exc}"
    if target.gateway and stats.error is None and stats.terminal != "run.complete":
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
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


async def run_streams(
    session: aiohttp.ClientSession, target: Target, streams: int, deltas: int, gap_us: int = 0
) -> RunResult:
    control = f"n={deltas} gap_us={gap_us}"
    cpu0 = cpu_seconds(target.pid)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one_stream(session, target, control) for _ in range(streams)))
    wall = time.perf_counter() - t0
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
        wall_s=wall,
    )
