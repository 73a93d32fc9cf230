"""Tool argument templates (SPEC §4.5).

A string value that is exactly ``{{tool_name.field}}`` — at any depth of the arguments —
is replaced by that field of the latest result of ``tool_name`` in this run, keeping its
JSON type. ``field`` may be a dotted path (``a.b.c``; a number indexes an array), and
``{{tool_name.field+Nd}}`` / ``-Nd`` shifts a ``YYYY-MM-DD`` date by N days. A string
that merely contains a template is left alone. An unresolvable template raises
:class:`ToolError` naming it, which the model sees as the tool's result.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson

from agentgw.errors import ToolError

TEMPLATE_ERROR = "template_unresolved"
# The path is lazy so a trailing "-3d" reads as date arithmetic, not as part of a field name.
_TEMPLATE = re.compile(
    r"^\{\{\s*(?P<tool>[A-Za-z0-9_\-]+)\.(?P<path>[A-Za-z0-9_\-]+?(?:\.[A-Za-z0-9_\-]+?)*?)"
    r"\s*(?:(?P<sign>[+-])\s*(?P<days>\d{1,6})\s*[dD])?\s*\}\}$"
)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_MISSING = object()


def _fail(template: str, reason: str) -> ToolError:
    return ToolError(f"cannot resolve template {template}: {reason}", TEMPLATE_ERROR)


def _as_structure(template: str, tool: str, result: Any) -> Any:
    if isinstance(result, str | bytes):
        try:
            return orjson.loads(result)
        except orjson.JSONDecodeError:
            raise _fail(template, f"the result of {tool} is not JSON") from None
    return result


def _walk(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _shift(template: str, value: Any, sign: str, days: str) -> str:
    match = _DATE_PREFIX.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(template, f"date arithmetic needs a YYYY-MM-DD value, got {value!r}")
    try:
        base = dt.date.fromisoformat(match.group(1))
        delta = dt.timedelta(days=int(days))
        return (base + delta if sign == "+" else base - delta).isoformat()
    except (ValueError, OverflowError) as exc:
        raise _fail(template, f"invalid date arithmetic on {value!r}: {exc}") from None


def _resolve_one(text: str, latest_results: dict[str, Any]) -> Any:
    match = _TEMPLATE.match(text.strip())
    if match is None:
        return text
    text = text.strip()
    tool, path = match.group("tool"), match.group("path")
    if tool not in latest_results:
        raise _fail(text, f"no result of tool {tool} in this run yet")
    value = _walk(_as_structure(text, tool, latest_results[tool]), path)
    if value is _MISSING:
        raise _fail(text, f"the latest result of {tool} has no field {path}")
    if match.group("sign"):
        return _shift(text, value, match.group("sign"), match.group("days"))
    return value


def has_templates(args: Any) -> bool:
    """Whether any string value of ``args`` looks like a template (cheap pre-check)."""
    if isinstance(args, str):
        return args.lstrip().startswith("{{")
    if isinstance(args, dict):
        return any(has_templates(v) for v in args.values())
    if isinstance(args, list):
        return any(has_templates(v) for v in args)
    return False


def resolve_templates(args: Any, latest_results: dict[str, Any]) -> Any:
    """Return ``args`` with every whole-string template replaced (see the module docstring).

    ``latest_results`` maps a tool name to its latest result in this run: a dict/list, or
    the JSON text the model saw. ``args`` itself is not modified.
    """
    if isinstance(args, str):
        return _resolve_one(args, latest_results) if args.lstrip().startswith("{{") else args
    if isinstance(args, dict):
        return {key: resolve_templates(value, latest_results) for key, value in args.items()}
    if isinstance(args, list):
        return [resolve_templates(value, latest_results) for value in args]
    return args
