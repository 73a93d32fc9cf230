"""``python -m bench.ab TREE_A TREE_B``: two versions of the gateway, side by side.

A change on the hot path moves a burst's first delta by a millisecond or two, and separate
``make bench`` runs differ by more than that. This tool runs, in one go, the fake provider,
the relay, and one gateway from each of two source trees (each a checkout of this
repository: ``git worktree add /tmp/before HEAD~1``), pinned as ``make bench`` pins them,
and sends them the same streams in interleaved rounds (the order alternates from round to
round). It prints, per target, the median over the rounds of each round's median time to
first delta and CPU per delta, and the round-by-round difference of B from A, whose median
is the figure to read.

The workload is ``--streams`` streams of ``--deltas`` deltas ``--gap-us`` apart, all at
once (by default the 200 x 200 one); ``--no-relay`` leaves the relay out.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path

import aiohttp

from agentgw.providers.wire import ProviderClient
from bench.__main__ import (
    ROOT,
    Proc,
    free_port,
    pin_cpus,
    spawn,
    start_provider,
    wait_ready,
    warm_up,
    write_workspace,
)
from bench.client import Target, run_streams

SETTLE_S = 0.3


async def _gateway(tree: Path, cwd: Path) -> tuple[Proc, int]:
    port = free_port()
    args = ["-m", "agentgw", "serve", "--port", str(port), "--host", "127.0.0.1"]
    return await spawn(f"gateway {tree}", args, cwd, False, root=tree), port


async def run(
    trees: dict[str, Path], rounds: int, work: tuple[int, int, int], relay: bool, quick: bool
) -> str:
    pin_cpus(True)
    procs: list[Proc] = []
    workspaces: list[Path] = []
    client = ProviderClient()
    try:
        async with aiohttp.ClientSession() as session:
            provider_port = free_port()
            provider_url = f"http://127.0.0.1:{provider_port}/v1"
            procs.append(await start_provider(provider_port))
            targets: dict[str, Target] = {}
            if relay:
                port = free_port()
                args = [
                    "-m",
                    "bench.relay",
                    "--port",
                    str(port),
                    "--upstream",
                    f"{provider_url}/chat/completions",
                ]
                relay_proc = await spawn("relay", args, ROOT, True)
                procs.append(relay_proc)
                targets["relay"] = Target(
                    "relay", f"http://127.0.0.1:{port}/relay", relay_proc.pid, gateway=False
                )
            for name, tree in trees.items():
                workspace = Path(tempfile.mkdtemp(prefix=f"agentgw-ab-{name}-"))
                workspaces.append(workspace)
                write_workspace(workspace, provider_url)
                proc, port = await _gateway(tree, workspace)
                procs.append(proc)
                base = f"http://127.0.0.1:{port}"
                await wait_ready(session, base)
                targets[name] = Target("gateway", f"{base}/api/ap/query", proc.pid, gateway=True)
            for target in targets.values():
                await warm_up(client, target, quick)
            await asyncio.sleep(0.5)
            ttfd: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, list[float]] = {name: [] for name in targets}
            for i in range(rounds):
                order = list(targets.items())
                for name, target in order if i % 2 == 0 else reversed(order):
                    result = await run_streams(client, target, *work, SETTLE_S)
                    if result.errors or result.delivered != result.sent or result.merged:
                        raise RuntimeError(f"{name}: {result.errors[:2]}, {result.delivered}/{result.sent}")
                    ttfd[name].append(result.ttfd_p50_ms)
                    cpu[name].append(result.cpu_us_per_delta)
    finally:
        await client.close()
        for proc in reversed(procs):
            await proc.stop()
        for workspace in workspaces:
            shutil.rmtree(workspace, ignore_errors=True)
    lines = [f"{work[0]} streams x {work[1]} deltas, {work[2]} us apart; {rounds} rounds"]
    for name in targets:
        shown = ", ".join(f"{x:.1f}" for x in ttfd[name])
        lines.append(
            f"{name:6} first delta p50 {statistics.median(ttfd[name]):6.2f} ms   "
            f"cpu/delta {statistics.median(cpu[name]):6.2f} us   rounds: {shown}"
        )
    diff = [b - a for a, b in zip(ttfd["A"], ttfd["B"], strict=True)]
    lines.append(
        f"B - A round by round: median {statistics.median(diff):+.2f} ms ({', '.join(f'{d:+.1f}' for d in diff)})"
    )
    if relay:
        for name in trees:
            gaps = [g - r for g, r in zip(ttfd[name], ttfd["relay"], strict=True)]
            lines.append(f"{name} - relay round by round: median {statistics.median(gaps):+.2f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("tree_a", type=Path, help="a checkout of this repository (the baseline)")
    parser.add_argument("tree_b", type=Path, help="another checkout (the change)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--deltas", type=int, default=200)
    parser.add_argument("--gap-us", type=int, default=5000)
    parser.add_argument("--no-relay", action="store_true")
    parser.add_argument("--quick", action="store_true", help="short warm-up (smoke test)")
    args = parser.parse_args()
    trees = {"A": args.tree_a.resolve(), "B": args.tree_b.resolve()}
    for tree in trees.values():
        if not (tree / "agentgw" / "__main__.py").is_file():
            parser.error(f"{tree} is not a checkout of agentgw (no agentgw/__main__.py)")
    work = (args.streams, args.deltas, args.gap_us)
    print(asyncio.run(run(trees, args.rounds, work, not args.no_relay, args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
