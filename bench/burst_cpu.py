"""``python -m bench.burst_cpu``: who gets the two cores in the first moments of a burst.

A burst of ``--streams`` streams (200 deltas, 5 ms apart: the 200 x 200 workload) goes to
the relay and then to the gateway, ``--rounds`` times. For the first ``--window-ms`` of each
burst it reads, from ``/proc/<pid>/task/*/schedstat``, how long the provider, the client
(this process) and the target ran on a CPU and how long they waited in the run queue for
one, next to the burst's time to first delta (p50). When four busy processes share two
cores, the target's CPU in that window is what delays everyone's first delta.

Each round also sends a burst whose provider holds every stream for 2 s after its first
delta (0.3 s with ``--quick``) and reports the target's CPU per request until the last
first delta arrived: the fixed cost of a request up to its first delta.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import statistics

import aiohttp

from agentgw.providers.wire import ProviderClient
from bench.client import StreamStats, Target, cpu_seconds, one_stream
from bench.stack import Stack


def schedstat(pid: int) -> tuple[int, int]:
    """(ns on a CPU, ns waiting in the run queue) summed over the process's threads."""
    ran = waited = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        with open(path) as fh:
            fields = fh.read().split()
        ran += int(fields[0])
        waited += int(fields[1])
    return ran, waited


async def one_burst(
    client: ProviderClient, target: Target, pids: dict[str, int], streams: int, window_s: float
) -> str:
    before = {name: schedstat(pid) for name, pid in pids.items()}
    tasks = [asyncio.create_task(one_stream(client, target, "n=200 gap_us=5000")) for _ in range(streams)]
    await asyncio.sleep(window_s)
    after = {name: schedstat(pid) for name, pid in pids.items()}
    results = await asyncio.gather(*tasks)
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"{target.name}: {errors[0]}")
    ttfd = statistics.median([r.ttfd_ms for r in results if r.ttfd_ms is not None])
    parts = [
        f"{name} ran {(after[name][0] - before[name][0]) / 1e6:5.1f} waited {(after[name][1] - before[name][1]) / 1e6:5.1f}"
        for name in pids
    ]
    return f"{target.name:<8} ttfd p50 {ttfd:6.1f} ms | " + " | ".join(parts) + " (ms)"


async def held_burst(client: ProviderClient, target: Target, streams: int, hold_s: float) -> str:
    """CPU per request until every stream has its first delta (the provider then holds)."""
    stats = [StreamStats() for _ in range(streams)]
    before = cpu_seconds(target.pid)
    control = f"n=2 hold_s={hold_s}"
    tasks = [asyncio.create_task(one_stream(client, target, control, stats=s)) for s in stats]
    # The stats are filled by the streams as they read; nothing to wait on but a short poll.
    while any(s.ttfd_ms is None and s.error is None for s in stats):  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    used = cpu_seconds(target.pid) - before
    results = await asyncio.gather(*tasks)
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"{target.name}: {errors[0]}")
    return f"{target.name:<8} CPU per request up to its first delta {used / streams * 1e6:6.1f} us"


async def run(streams: int, rounds: int, window_s: float, quick: bool) -> list[str]:
    lines: list[str] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        async with Stack(session, ("relay", "gateway"), quick=quick) as stack:
            pause = 0.1 if quick else 0.5  # the gateway's delayed question writes go first
            await asyncio.sleep(pause)
            for _ in range(rounds):
                for target in stack.targets.values():
                    pids = {"provider": stack.provider.pid, "client": os.getpid(), target.name: target.pid}
                    lines.append(await one_burst(stack.client, target, pids, streams, window_s))
                    await asyncio.sleep(pause)
                    lines.append(await held_burst(stack.client, target, streams, 0.3 if quick else 2.0))
                    await asyncio.sleep(pause)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst_cpu")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--window-ms", type=float, default=80)
    parser.add_argument("--quick", action="store_true", help="short warm-up (smoke test)")
    args = parser.parse_args()
    for line in asyncio.run(run(args.streams, args.rounds, args.window_ms / 1000, args.quick)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
