"""``python -m bench.profile``: where the gateway's CPU goes in a burst of one-delta queries.

Starts the bench's fake provider and a gateway running under ``cProfile``, sends
``--bursts`` bursts of ``--streams`` queries at once (each one delta), then has the gateway
write its profile: ``bench/results/profile-burst.txt`` holds the functions by own time and
the per-query cumulative time of the phases of a run. cProfile slows Python code more than
system calls, so read the shares, not the absolute times (``make bench`` has those).

The gateway side is ``python -m bench.profile --serve <agentgw serve arguments>``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench.__main__ import RESULTS
from bench.client import run_streams
from bench.stack import Stack

# The phases of a run, each a function whose cumulative time is reported per query.
PHASES = (
    "handle_query",
    "_start_query",
    "_prepare_memory",
    "_finish_memory",
    "run_stream",
    "post",
    "on_batch",
    "emit",
)


def serve(argv: list[str], out: Path) -> None:
    profile = cProfile.Profile()

    def dump(_signum: int, _frame: object) -> None:
        profile.disable()
        profile.dump_stats(str(out))
        os._exit(0)

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["agentgw", *argv]
    from agentgw.__main__ import main

    profile.enable()
    main()


def report(stats_path: Path, queries: int) -> str:
    stats = pstats.Stats(str(stats_path))
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(40)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [
        f"{queries} queries; {total / queries * 1e6:.0f} us of profiled time per query (idle epoll included)",
        "per query, cumulative time of the phases of a run (cProfile time, inflated for Python code):",
    ]
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name in PHASES and "agentgw" in path:
            lines.append(f"  {name:<18} {ct / queries * 1e6:8.1f} us   {Path(path).name}")
    return "\n".join(lines) + "\n\n" + text.getvalue()


async def run(streams: int, bursts: int) -> str:
    stats_dir = Path(tempfile.mkdtemp(prefix="agentgw-profile-"))
    stats_path = stats_dir / "gateway.pstats"

    def launch(_name: str, args: list[str]) -> list[str]:  # args: -m agentgw serve ...
        return ["-m", "bench.profile", "--stats", str(stats_path), "--serve", *args[2:]]

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            # quick: only the first-request work is out of the way (4 streams of 50 deltas).
            async with Stack(session, ("gateway",), quick=True, launch=launch) as stack:
                target = stack.targets["gateway"]
                for _ in range(bursts):
                    result = await run_streams(stack.client, target, streams, 1)
                    if result.errors:
                        raise RuntimeError(f"the burst failed: {result.errors}")
                os.kill(target.pid, signal.SIGUSR1)
                await asyncio.wait_for(stack.procs[-1].proc.wait(), 30)
                return report(stats_path, streams * bursts + 4)
    finally:
        shutil.rmtree(stats_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--out", default=str(RESULTS / "profile-burst.txt"))
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, Path(args.stats))
        return 0
    text = asyncio.run(run(args.streams, args.bursts))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text[:3000])
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
