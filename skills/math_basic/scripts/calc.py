#!/usr/bin/env python3
"""Exact arithmetic on two numbers; prints one JSON object on stdout.

    calc.py --op add|sub|mul|div|pow|mod --a N --b N [--precision P]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from decimal import Decimal, InvalidOperation

OPS = ("add", "sub", "mul", "div", "pow", "mod")


class _Parser(argparse.ArgumentParser):
    # argparse prints usage and exits 2; the caller wants JSON on stdout instead.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _number(text: str, name: str) -> int | float:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"--{name} is not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"--{name} must be a finite number: {text!r}")
    if value == value.to_integral_value() and "e" not in text.lower() and "." not in text:
        return int(value)
    return float(value)


def _tidy(value: int | float) -> int | float:
    # 50.0 reads better as 50 for the model and the user.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def compute(op: str, a: int | float, b: int | float) -> int | float:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        if b == 0:
            raise ValueError("division by zero")
        return a / b
    if op == "mod":
        if b == 0:
            raise ValueError("modulo by zero")
        return a % b
    if op == "pow":
        if a == 0 and b < 0:
            raise ValueError("zero cannot be raised to a negative power")
        if isinstance(a, int) and isinstance(b, int) and b >= 0:
            if b > 10000 or (abs(a) > 1 and b * math.log10(abs(a)) > 4000):
                raise ValueError("result too large")
            return a**b
        result = float(a) ** float(b)
        if isinstance(result, complex):
            raise ValueError("result is not a real number")
        return result
    raise ValueError(f"unknown op {op!r}; use one of {', '.join(OPS)}")


def main(argv: list[str]) -> int:
    parser = _Parser(prog="calc.py", add_help=False)
    parser.add_argument("--op", required=True)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--precision", type=int)
    try:
        ns = parser.parse_args(argv)
        op = ns.op.strip().lower()
        if op not in OPS:
            raise ValueError(f"unknown op {ns.op!r}; use one of {', '.join(OPS)}")
        if ns.precision is not None and not 0 <= ns.precision <= 15:
            raise ValueError("--precision must be between 0 and 15")
        a, b = _number(ns.a, "a"), _number(ns.b, "b")
        try:
            result = compute(op, a, b)
        except OverflowError:
            raise ValueError("result too large") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise ValueError("result too large")
        if ns.precision is not None:
            result = round(result, ns.precision)
        out = {"ok": True, "op": op, "a": a, "b": b, "result": _tidy(result)}
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
