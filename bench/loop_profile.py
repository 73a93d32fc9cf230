"""``python -m bench.loop_profile``: a request's CPU up to its first delta, callback by callback.

Every piece of work an asyncio program does runs as one event-loop callback: a task step,
a socket's read callback, a ``call_soon``. This tool runs the relay and the gateway (``--targets``) with
each callback timed (``time.thread_time_ns`` around ``Handle._run``) and sends them bursts
of ``--streams`` streams whose provider holds every stream after its first delta, so a
burst's window (from its first request to its last first delta) holds exactly the work a
request costs before its first delta. Connections are warm (a burst of the same size goes
first), as in the bench's rounds. It prints, per target, the CPU per request in the window
and how it splits over the callbacks, with how many of each a request takes.

The timing adds about 1-2 us per callback, so the totals are above ``bench.burst_cpu``'s
(which reads ``/proc`` and times nothing); the split and the callback counts are the point.

A target runs as ``python -m bench.loop_profile --stats FILE --serve -m MODULE ARGS``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import runpy
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentgw.providers.wire import ProviderClient
from bench.client import StreamStats, Target, one_stream
from bench.stack import NAMES, Stack


def _category(handle: asyncio.Handle) -> str:
    callback: Any = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    get_coro = getattr(owner, "get_coro", None)
    if isinstance(owner, asyncio.Task) and get_coro is not None:
        coro = get_coro()
        return f"task step: {getattr(coro, '__qualname__', type(coro).__name__)}"
    name = str(getattr(callback, "__qualname__", type(callback).__name__))
    protocol = getattr(owner, "_protocol", None)
    if protocol is not None:
        return f"{name} ({type(protocol).__name__})"
    return name


def _install(stats_path: Path) -> None:
    """Time every callback between SIGUSR1 and SIGUSR2; SIGUSR2 writes the sums."""
    run = asyncio.Handle._run
    clock = time.thread_time_ns
    cpu: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    window = {"on": False, "start": 0}

    def timed(handle: asyncio.Handle) -> None:
        if not window["on"]:
            run(handle)
            return
        began = clock()
        run(handle)
        name = _category(handle)
        cpu[name] += clock() - began
        calls[name] += 1

    def start(_signum: int, _frame: object) -> None:
        cpu.clear()
        calls.clear()
        window["start"] = clock()
        window["on"] = True

    def stop(_signum: int, _frame: object) -> None:
        window["on"] = False
        total = clock() - window["start"]
        stats_path.write_text(json.dumps({"total_ns": total, "cpu_ns": cpu, "calls": calls}))

    asyncio.Handle._run = timed  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def serve(stats_path: Path, argv: list[str]) -> None:
    """Run ``python <argv>`` (``-m MODULE ARGS``) in this process, its callbacks timed."""
    if len(argv) < 2 or argv[0] != "-m":
        raise SystemExit(f"--serve takes -m MODULE [ARGS], got {argv!r}")
    _install(stats_path)
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


def _take(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    window: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return window


async def _held_bursts(
    client: ProviderClient, target: Target, stats_path: Path, streams: int, bursts: int
) -> dict[str, Any]:
    total = 0
    cpu: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    # As many warm connections as a burst needs, on both sides of the target.
    await asyncio.gather(*[one_stream(client, target, "n=1") for _ in range(streams)])
    for _ in range(bursts):
        await asyncio.sleep(0.3)
        os.kill(target.pid, signal.SIGUSR1)
        await asyncio.sleep(0.05)
        stats = [StreamStats() for _ in range(streams)]
        tasks = [asyncio.create_task(one_stream(client, target, "n=2 hold_s=0.3", stats=s)) for s in stats]
        # The stats are filled by the streams as they read; nothing to wait on but a short poll.
        while any(s.ttfd_ms is None and s.error is None for s in stats):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        os.kill(target.pid, signal.SIGUSR2)
        results = await asyncio.gather(*tasks)
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(f"{target.name}: {len(errors)} streams failed, first: {errors[0]}")
        window = _take(stats_path)
        for _ in range(200):  # the target writes the file from its signal handler
            if window is not None:
                break
            await asyncio.sleep(0.01)
            window = _take(stats_path)
        if window is None:
            raise RuntimeError(f"{target.name} wrote no callback times to {stats_path}")
        total += window["total_ns"]
        cpu.update(window["cpu_ns"])
        calls.update(window["calls"])
    return {"requests": streams * bursts, "total_ns": total, "cpu_ns": cpu, "calls": calls}


def report(name: str, result: dict[str, Any], top: int) -> str:
    requests = result["requests"]
    per = lambda ns: ns / requests / 1000  # noqa: E731
    in_callbacks = sum(result["cpu_ns"].values())
    lines = [
        f"{name}: {per(result['total_ns']):.1f} us of CPU per request up to its first delta "
        f"({requests} requests); in callbacks {per(in_callbacks):.1f}, "
        f"outside them (epoll, the loop) {per(result['total_ns'] - in_callbacks):.1f}; "
        f"{sum(result['calls'].values()) / requests:.2f} callbacks per request",
    ]
    ranked = sorted(result["cpu_ns"].items(), key=lambda kv: -kv[1])
    for category, ns in ranked[:top]:
        lines.append(f"  {per(ns):7.1f} us  {result['calls'][category] / requests:5.2f}/request  {category}")
    return "\n".join(lines)


async def run(names: list[str], streams: int, bursts: int, top: int, quick: bool) -> str:
    stats_dir = Path(tempfile.mkdtemp(prefix="agentgw-loop-profile-"))

    def launch(name: str, args: list[str]) -> list[str]:
        return ["-m", "bench.loop_profile", "--stats", str(stats_dir / f"{name}.json"), "--serve", *args]

    out: list[str] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            async with Stack(session, names, quick=quick, launch=launch) as stack:
                for name, target in stack.targets.items():
                    result = await _held_bursts(
                        stack.client, target, stats_dir / f"{name}.json", streams, bursts
                    )
                    out.append(report(name, result, top))
    finally:
        shutil.rmtree(stats_dir, ignore_errors=True)
    return "\n\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_profile")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=8)
    parser.add_argument("--top", type=int, default=14, help="callbacks listed per target")
    parser.add_argument("--targets", default="relay,gateway", help=f"comma-separated, of {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="short warm-up (smoke test)")
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(Path(args.stats), args.serve)
        return 0
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if not names or unknown:
        parser.error(f"--targets takes names of {', '.join(NAMES)}, got {args.targets!r}")
    print(asyncio.run(run(names, args.streams, args.bursts, args.top, args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
