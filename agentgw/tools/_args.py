"""Argument readers shared by the built-ins.

Models send arguments of the wrong type, blank strings and absurd sizes; every reader
raises :class:`ToolError` naming the field, so the model can fix its call.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from agentgw.errors import ToolError

BAD_ARGUMENT = "invalid_argument"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def bad(field: str, reason: str) -> ToolError:
    """A ToolError for one argument: ``<field>: <reason>``."""
    return ToolError(f"{field}: {reason}", BAD_ARGUMENT)


def opt_str(
    args: dict[str, Any], name: str, *, max_len: int = 1000, default: str | None = None
) -> str | None:
    """A string argument, stripped; missing, null or blank gives ``default``."""
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad(name, f"must be a string, got {type_name(value)}")
    text = str(value).strip()
    if not text:
        return default
    if len(text) > max_len:
        raise bad(name, f"is too long ({len(text)} characters, max {max_len})")
    return text


def req_str(args: dict[str, Any], name: str, *, max_len: int = 1000) -> str:
    """A required, non-blank string argument."""
    value = opt_str(args, name, max_len=max_len)
    if value is None:
        raise bad(name, "is required" if args.get(name) is None else "must not be blank")
    return value


def opt_int(
    args: dict[str, Any], name: str, *, default: int | None, minimum: int, maximum: int
) -> int | None:
    """An integer argument in ``[minimum, maximum]``; integral floats and digit strings are accepted."""
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: int
    if isinstance(value, bool):
        raise bad(name, "must be an integer, got boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        number = int(value)
    else:
        raise bad(name, f"must be an integer, got {type_name(value)}")
    if not minimum <= number <= maximum:
        raise bad(name, f"must be between {minimum} and {maximum}, got {number}")
    return number


def opt_date(args: dict[str, Any], name: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date argument."""
    text = opt_str(args, name, max_len=40)
    if text is None:
        return None
    if not _DATE.match(text):
        raise bad(name, f"must be a date YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise bad(name, f"is not a valid date: {text!r}") from None


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
