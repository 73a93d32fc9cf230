"""``python -m bench.burst_scale``: time to first delta as a burst grows.

Bursts of each size in ``--sizes`` (streams starting at once, ``--deltas`` deltas 5 ms
apart, the shape of the 200 x 200 workload) go to the relay, the relay on the gateway's own
provider client (``relay_wire``) and the gateway in turn, ``--rounds`` times (after one
round that is not counted). For each size it prints the median over the rounds of each
burst's median time to first delta, and the gateway's distance to the relay.

A burst is CPU-bound: if every request costs its target C us before its first delta, the
median first delta waits for about the work of the whole burst, so two targets part by
about (burst size) x (their difference in C), more once the machine's two cores are full.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import aiohttp

from bench.client import one_stream
from bench.stack import NAMES, Stack


async def run(sizes: list[int], rounds: int, deltas: int, gap_us: int, quick: bool) -> list[str]:
    lines: list[str] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        async with Stack(session, NAMES, quick=quick) as stack:
            pause = 0.1 if quick else 0.3
            for size in sizes:
                ttfd: dict[str, list[float]] = {name: [] for name in stack.targets}
                for _ in range(rounds + 1):
                    for name, target in stack.targets.items():
                        control = f"n={deltas} gap_us={gap_us}"
                        results = await asyncio.gather(
                            *[one_stream(stack.client, target, control) for _ in range(size)]
                        )
                        errors = [r.error for r in results if r.error]
                        if errors:
                            raise RuntimeError(f"{name}: {len(errors)} streams failed, first: {errors[0]}")
                        ttfd[name].append(
                            statistics.median([r.ttfd_ms for r in results if r.ttfd_ms is not None])
                        )
                        await asyncio.sleep(pause)
                p50 = {name: statistics.median(values[1:]) for name, values in ttfd.items()}
                spread = [
                    round(g - r, 1) for g, r in zip(ttfd["gateway"][1:], ttfd["relay"][1:], strict=True)
                ]
                lines.append(
                    f"{size:4d} streams: TTFD p50 relay {p50['relay']:6.1f} | relay_wire {p50['relay_wire']:6.1f}"
                    f" | gateway {p50['gateway']:6.1f} ms | gateway - relay {p50['gateway'] - p50['relay']:+6.1f} ms"
                    f" (rounds: {' '.join(f'{d:+.1f}' for d in spread)})"
                )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst_scale")
    parser.add_argument("--sizes", default="25,50,100,200,400", help="burst sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--deltas", type=int, default=50)
    parser.add_argument("--gap-us", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="short warm-up (smoke test)")
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.rounds < 1:
        parser.error("--sizes needs at least one size >= 1 and --rounds must be >= 1")
    for line in asyncio.run(run(sizes, args.rounds, args.deltas, args.gap_us, args.quick)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
