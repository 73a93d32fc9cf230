#!/usr/bin/env python3
"""Render a small SVG "screenshot" card and print a JSON description of it.

    render_svg.py --title T [--line L]... [--theme light|dark] [--width W] [--height H] [--include-svg]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from xml.sax.saxutils import escape

THEMES = {
    "light": {"background": "#ffffff", "foreground": "#1f2328", "accent": "#0969da"},
    "dark": {"background": "#0d1117", "foreground": "#e6edf3", "accent": "#58a6ff"},
}
MAX_LINES = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def render(title: str, lines: list[str], theme: str, width: int, height: int) -> str:
    colors = THEMES[theme]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="100%" height="100%" fill="{colors["background"]}"/>',
        f'<rect width="100%" height="6" fill="{colors["accent"]}"/>',
        f'<text x="16" y="36" font-family="sans-serif" font-size="20" font-weight="bold" '
        f'fill="{colors["foreground"]}">{escape(title)}</text>',
    ]
    for index, line in enumerate(lines):
        y = 66 + index * 22
        parts.append(
            f'<text x="16" y="{y}" font-family="monospace" font-size="14" '
            f'fill="{colors["foreground"]}">{escape(line)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def main(argv: list[str]) -> int:
    parser = _Parser(prog="render_svg.py", add_help=False)
    parser.add_argument("--title", required=True)
    parser.add_argument("--line", action="append", default=[])
    parser.add_argument("--theme", default="light")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--include-svg", action="store_true")
    try:
        ns = parser.parse_args(argv)
        theme = ns.theme.strip().lower()
        if theme not in THEMES:
            raise ValueError(f"unknown theme {ns.theme!r}; use light or dark")
        for name in ("width", "height"):
            if not 64 <= getattr(ns, name) <= 4096:
                raise ValueError(f"--{name} must be between 64 and 4096")
        if not ns.title.strip():
            raise ValueError("--title is blank")
        if len(ns.line) > MAX_LINES:
            raise ValueError(f"at most {MAX_LINES} --line values")
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return 1
    svg = render(ns.title, ns.line, theme, ns.width, ns.height)
    data = svg.encode("utf-8")
    description = (
        f"A {ns.width}x{ns.height} {theme} card titled {ns.title!r}"
        + (f" with {len(ns.line)} line(s) of text: " + "; ".join(ns.line) if ns.line else " with no body text")
        + "."
    )
    out = {
        "ok": True,
        "format": "svg",
        "width": ns.width,
        "height": ns.height,
        "theme": theme,
        "title": ns.title,
        "lines": ns.line,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": description,
    }
    if ns.include_svg:
        out["svg"] = svg
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
