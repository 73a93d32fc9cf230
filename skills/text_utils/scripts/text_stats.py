#!/usr/bin/env python3
"""Characters, words and lines of a text; prints one JSON object on stdout.

    text_stats.py --text "…" [--normalize-whitespace]
"""

from __future__ import annotations

import argparse
import json
import re
import sys

# CJK ideographs, kana and hangul have no spaces between words: count each as a word.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def normalize(text: str) -> str:
    lines = (re.sub(r"[ \t\f\v\u00a0\u3000]+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def measure(text: str) -> dict[str, int]:
    return {
        "chars": len(text),
        "words": len(_WORD.findall(text)),
        "lines": len(text.splitlines()),
    }


def main(argv: list[str]) -> int:
    parser = _Parser(prog="text_stats.py", add_help=False)
    parser.add_argument("--text", required=True)
    parser.add_argument("--normalize-whitespace", action="store_true")
    try:
        ns = parser.parse_args(argv)
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return 1
    text = normalize(ns.text) if ns.normalize_whitespace else ns.text
    out = {"ok": True, **measure(text), "normalized": bool(ns.normalize_whitespace), "text": text}
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
