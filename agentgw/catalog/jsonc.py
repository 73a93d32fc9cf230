"""JSON with comments, as agent authors write it (SPEC §3.1).

Accepted on top of JSON:

- ``// line``, ``/* block */`` and ``# line`` comments outside strings;
- a ``\"\"\"…\"\"\"`` multi-line string, only as the value of a key whose name matches
  ``[A-Za-z0-9_]*systemPrompt`` (case-insensitive). CRLF becomes LF, one leading and one
  trailing newline are removed, indentation is kept as written (no dedent).

The text is rewritten into plain JSON and parsed with orjson. Comments are replaced by
spaces and a multi-line string is followed by as many newlines as it spanned, so line
numbers in parse errors still point at the author's file.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_TRIPLE = '"""'
# One token per match: triple quote, a JSON string, a comment, or a run of anything else.
_TOKEN = re.compile(
    r'(?P<triple>""")'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<line>//[^\n]*|\#[^\n]*)"
    r"|(?P<block>/\*.*?(?:\*/|\Z))"
    r'|(?P<other>[^"/#]+|/|")',
    re.DOTALL,
)
_KEY_BEFORE = re.compile(r'"([^"\\]*)"\s*:\s*$')
_PROMPT_KEY = re.compile(r"^[A-Za-z0-9_]*systemprompt$", re.IGNORECASE)


class JsoncError(ValueError):
    """The text is not valid JSON-with-comments; carries a 1-based line and column."""

    def __init__(self, message: str, line: int, column: int, key: str | None = None) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.message = message
        self.line = line
        self.column = column
        self.key = key


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _blank(chunk: str) -> str:
    """A comment becomes spaces, keeping its newlines so later line numbers stay right."""
    return re.sub(r"[^\n]", " ", chunk)


def to_json(text: str) -> str:
    """Rewrite JSON-with-comments into plain JSON text (raises :class:`JsoncError`)."""
    if "/" not in text and "#" not in text and _TRIPLE not in text:
        return text
    out: list[str] = []
    pos = 0
    size = len(text)
    while pos < size:
        match = _TOKEN.match(text, pos)
        assert match is not None  # the "other" alternative matches any single character
        kind = match.lastgroup
        if kind == "triple":
            key_match = _KEY_BEFORE.search("".join(out[-8:]))
            key = key_match.group(1) if key_match else None
            line, col = _line_col(text, pos)
            if key is None or not _PROMPT_KEY.match(key):
                where = f"key `{key}`" if key else "this position"
                raise JsoncError(
                    f'a """ multi-line string is only allowed as the value of a *systemPrompt key, not at {where}',
                    line,
                    col,
                    key,
                )
            end = text.find(_TRIPLE, match.end())
            if end < 0:
                raise JsoncError(f'unterminated """ string for key `{key}`', line, col, key)
            body = text[match.end() : end]
            out.append(orjson.dumps(normalize_multiline(body)).decode())
            # Keep the line count: the JSON string is one line, the source spanned several.
            out.append("\n" * body.count("\n"))
            pos = end + len(_TRIPLE)
            continue
        chunk = match.group(0)
        if kind in ("line", "block"):
            if kind == "block" and not chunk.endswith("*/"):
                raise JsoncError("unterminated /* comment", *_line_col(text, pos))
            out.append(_blank(chunk))
        else:
            out.append(chunk)
        pos = match.end()
    return "".join(out)


def normalize_multiline(body: str) -> str:
    """CRLF → LF, drop one leading and one trailing newline, keep indentation."""
    body = body.replace("\r\n", "\n")
    if body.startswith("\n"):
        body = body[1:]
    if body.endswith("\n"):
        body = body[:-1]
    return body


def loads(text: str) -> Any:
    """Parse JSON-with-comments; errors are :class:`JsoncError` with line and column."""
    plain = to_json(text)
    try:
        return orjson.loads(plain)
    except orjson.JSONDecodeError as exc:
        raise JsoncError(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from exc
