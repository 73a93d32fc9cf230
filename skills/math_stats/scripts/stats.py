#!/usr/bin/env python3
"""Descriptive statistics of a list of numbers; prints one JSON object on stdout.

    stats.py --op summary|count|sum|min|max|mean|median|mode|stdev --values 1,2,3 [--precision P]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys

OPS = ("summary", "count", "sum", "min", "max", "mean", "median", "mode", "stdev")
MAX_VALUES = 100000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def parse_values(text: str) -> list[int | float]:
    values: list[int | float] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            number = float(item)
        except ValueError:
            raise ValueError(f"not a number: {item!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {item!r}")
        values.append(int(number) if number.is_integer() and "." not in item and "e" not in item.lower() else number)
        if len(values) > MAX_VALUES:
            raise ValueError(f"too many values (max {MAX_VALUES})")
    if not values:
        raise ValueError("--values holds no numbers")
    return values


def _tidy(value: float | int | None, precision: int | None) -> float | int | None:
    if value is None:
        return None
    if precision is not None:
        value = round(value, precision)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def stat(op: str, values: list[int | float]) -> float | int | None:
    if op == "count":
        return len(values)
    if op == "sum":
        return math.fsum(values) if any(isinstance(v, float) for v in values) else sum(values)
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    if op == "mean":
        return statistics.fmean(values)
    if op == "median":
        return statistics.median(values)
    if op == "mode":
        return statistics.mode(values)
    if op == "stdev":
        if len(values) < 2:
            raise ValueError("stdev needs at least two values")
        return statistics.stdev(values)
    raise ValueError(f"unknown op {op!r}; use one of {', '.join(OPS)}")


def main(argv: list[str]) -> int:
    parser = _Parser(prog="stats.py", add_help=False)
    parser.add_argument("--op", required=True)
    parser.add_argument("--values", required=True)
    parser.add_argument("--precision", type=int)
    try:
        ns = parser.parse_args(argv)
        op = ns.op.strip().lower()
        if op not in OPS:
            raise ValueError(f"unknown op {ns.op!r}; use one of {', '.join(OPS)}")
        if ns.precision is not None and not 0 <= ns.precision <= 15:
            raise ValueError("--precision must be between 0 and 15")
        values = parse_values(ns.values)
        result: object
        if op == "summary":
            result = {
                name: _tidy(stat(name, values) if name != "stdev" or len(values) > 1 else None, ns.precision)
                for name in OPS[1:]
            }
        else:
            result = _tidy(stat(op, values), ns.precision)
        out = {"ok": True, "op": op, "count": len(values), "result": result}
    except (ValueError, statistics.StatisticsError) as exc:
        print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
