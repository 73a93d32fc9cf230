"""The benchmark harness itself works: a small run through the relay and the gateway.

No timing is asserted here (performance lives in ``make bench``); only that every delta
sent was delivered, none merged, and nothing failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.gateway import REPO


def bench_tool(module: str, *args: str) -> str:
    """Run ``python -m <module> <args>`` from the repository; its stdout, once it succeeded."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_quick_bench_delivers_every_delta(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    bench_tool("bench", "--quick", "--out", str(out))
    report = json.loads(out.read_text())
    run = report["results"]["1x50"]
    for name in ("relay", "relay_wire", "gateway"):
        assert run[name]["delivered_all_rounds"] == run[name]["sent_all_rounds"] == 50
        assert run[name]["merged_all_rounds"] == 0
        assert run[name]["errors_all_rounds"] == []
    sequential = report["results"]["sequential_ttfd"]
    for name in ("relay", "gateway"):
        assert sequential[name]["delivered"] == sequential[name]["sent"] == sequential["requests"]
        assert sequential[name]["errors"] == []
    react = report["results"]["react_5_tools"]
    assert react["terminal"] == "run.complete" and react["errors"] == []


def test_profile_writes_where_the_time_goes(tmp_path: Path) -> None:
    out = tmp_path / "profile.txt"
    bench_tool("bench.profile", "--streams", "20", "--bursts", "2", "--out", str(out))
    text = out.read_text()
    assert text.startswith("44 queries;")  # the 4 warm-up queries and 2 bursts of 20
    for phase in ("_prepare_memory", "run_stream", "handle_query"):
        assert f"  {phase} " in text
    assert "Ordered by: internal time" in text


def test_burst_cpu_reports_each_process(tmp_path: Path) -> None:
    stdout = bench_tool("bench.burst_cpu", "--quick", "--streams", "10", "--rounds", "1")
    lines = stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["relay", "relay", "gateway", "gateway"]
    for line, target in zip(lines[::2], ("relay", "gateway"), strict=True):
        for name in ("provider", "client", target):
            assert f"| {name} ran " in line, line
    for line in lines[1::2]:
        assert float(line.split()[-2]) > 0, line  # "CPU per request up to its first delta N us"


def test_loop_profile_splits_a_request_by_callback() -> None:
    stdout = bench_tool("bench.loop_profile", "--quick", "--streams", "10", "--bursts", "1", "--top", "4")
    blocks = stdout.strip().split("\n\n")
    assert [block.split(":")[0] for block in blocks] == ["relay", "gateway"]
    for block in blocks:
        head, *rows = block.splitlines()
        assert "(10 requests)" in head and "callbacks per request" in head, head
        assert 1 <= len(rows) <= 4
        assert all(row.split()[1] == "us" and float(row.split()[0]) >= 0 for row in rows), rows
    # The gateway's run is a task of its own, next to aiohttp's request handler.
    assert "task step: RunManager._execute" in blocks[1]
    assert "task step: RequestHandler._handle_request" in blocks[1]


def test_burst_scale_reports_each_size() -> None:
    stdout = bench_tool("bench.burst_scale", "--quick", "--sizes", "3,6", "--rounds", "1", "--deltas", "3")
    lines = stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [3, 6]
    for line in lines:
        for name in ("relay", "relay_wire", "gateway", "gateway - relay"):
            assert f"{name} " in line, line


def test_ab_compares_two_trees() -> None:
    stdout = bench_tool(
        "bench.ab",
        str(REPO),
        str(REPO),
        "--rounds",
        "2",
        "--streams",
        "5",
        "--deltas",
        "5",
        "--gap-us",
        "0",
        "--quick",
    )
    lines = stdout.splitlines()
    assert lines[0] == "5 streams x 5 deltas, 0 us apart; 2 rounds"
    assert [line.split()[0] for line in lines[1:4]] == ["relay", "A", "B"]
    assert lines[4].startswith("B - A round by round: median ")
    assert [line.split()[0] for line in lines[5:]] == ["A", "B"]
