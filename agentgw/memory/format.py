"""Chat file format V3.1 (SPEC §7, §11.8): ids, message parts, and reading old field names.

Line kinds (``_type``):

- ``query`` — ``{chatId, runId, updatedAt, query}``: the user's full request.
- ``step`` — ``{chatId, runId, _stage, _seq, updatedAt, messages, taskId?, system?, plan?}``.

agentgw adds a few underscore fields the upstream format does not have; readers that do
not know them can ignore them:

- on a step: ``_runStart`` (the ``run.start`` payload, on the run's first step) and
  ``_end`` (on the run's last step, which has no messages: how the run ended —
  ``{"type": "run.complete", "finishReason"}``, ``{"type": "run.cancel"}`` or
  ``{"type": "run.error", "error"}``); ``_sources`` (web-search sources left at step end);
- on a message: ``ts`` (also on assistant messages), ``_liveId`` (the SSE id
  ``{runId}_r_{n}`` / ``{runId}_c_{n}`` of a reasoning/content block), ``_taskId`` (when
  it differs from the step's), ``_toolInfo`` (what ``tool.start``/``action.start`` carried
  besides ids and name: toolType, toolKey, toolApi, toolParams, toolTimeout, description,
  and ``kind`` tool|action), ``_sources`` (``source.snapshot`` payloads emitted just before
  this message), ``_toolStatus`` (on a tool call: ``[{status, ts, detail?}]`` from
  ``tool.status`` events — approval requested, approved, rejected, expired, executed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agentgw import ids

STAGES = ("oneshot", "react", "plan", "execute", "summary")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    """``r_`` / ``c_`` / ``m_`` + 8 hex, as the file format requires."""
    return f"{prefix}_{ids.token_hex(4)}"


def empty_usage() -> dict[str, Any]:
    """The fixed ``_usage`` of a message whose model call reported nothing (never nulls)."""
    return {
        "inputTokens": 0,
        "outputTokens": 0,
        "reasoningTokens": 0,
        "cachedTokens": 0,
        "points": 0,
        "estimated": False,
        "model": "",
    }


_USAGE_KEYS = tuple(empty_usage())


def stored_usage(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``_usage`` stored for a ``usage`` event: the fixed keys, defaults where absent."""
    out = empty_usage()
    for key in _USAGE_KEYS:
        value = event.get(key)
        if value is not None:
            out[key] = value
    return out


def text_parts(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def parts_text(content: Any) -> str:
    """Join stored ``content[]`` parts (or a plain string) into one string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return "".join(out)
    return ""


def normalize_plan(plan: Any) -> dict[str, Any] | None:
    """A stored plan as ``{planId, tasks}``; V3's inner ``plan`` array is read as ``tasks``."""
    if not isinstance(plan, Mapping):
        return None
    out = dict(plan)
    if "tasks" not in out and isinstance(out.get("plan"), list):
        out["tasks"] = out.pop("plan")
    if not isinstance(out.get("tasks"), list):
        out["tasks"] = []
    return out


def normalize_message(message: dict[str, Any]) -> dict[str, Any]:
    """V3 kept ``_toolId``/``_actionId`` inside ``tool_calls[0]``; V3.1 keeps them outside."""
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls and "_toolId" not in message and "_actionId" not in message:
        first = calls[0]
        if isinstance(first, Mapping):
            for key in ("_toolId", "_actionId"):
                if isinstance(first.get(key), str):
                    message[key] = first[key]
    return message


def normalize_line(line: dict[str, Any]) -> dict[str, Any]:
    """Bring a line read from disk to the V3.1 names, in place (and return it)."""
    if line.get("_type") == "step":
        if "plan" not in line and "planSnapshot" in line:
            line["plan"] = line.pop("planSnapshot")
        if "plan" in line:
            plan = normalize_plan(line["plan"])
            if plan is None:
                line.pop("plan")
            else:
                line["plan"] = plan
        messages = line.get("messages")
        if not isinstance(messages, list):
            line["messages"] = []
        else:
            line["messages"] = [normalize_message(m) for m in messages if isinstance(m, dict)]
    return line


def message_tool_id(message: Mapping[str, Any]) -> str | None:
    """The tool or action id a stored assistant tool-call / tool message refers to."""
    for key in ("_toolId", "_actionId", "tool_call_id"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls and isinstance(calls[0], Mapping):
        value = calls[0].get("id")
        if isinstance(value, str):
            return value
    return None
