"""The one normalised event protocol (SPEC §5, §11.3).

Every SSE event is a JSON object that starts with ``seq``, ``type``, ``timestamp`` and then
the payload fields of its type. Events are plain dicts on the hot path (one ``orjson.dumps``
per event and nothing else); this module is where their shapes are defined:
:data:`EVENT_TYPES` maps each type to its required and optional payload fields, and
:func:`event_json_schema` turns that table into the published JSON Schema (§10.12). Tests
validate every emitted event against it.
"""

from __future__ import annotations

import time
from typing import Any, Final, NamedTuple

import orjson


class Shape(NamedTuple):
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


_TOOL_META = (
    "taskId",
    "toolName",
    "toolType",
    "toolKey",
    "toolTimeout",
    "toolApi",
    "toolParams",
    "description",
)

EVENT_TYPES: Final[dict[str, Shape]] = {
    # request
    "request.query": Shape(
        ("requestId", "chatId", "role", "message"), ("agentKey", "references", "params", "scene", "stream")
    ),
    "request.upload": Shape(("requestId", "upload"), ("chatId",)),
    "request.submit": Shape(("requestId", "chatId", "runId", "toolId", "payload"), ("viewId",)),
    # chat
    "chat.start": Shape(("chatId",), ("chatName", "chatImageToken")),
    # plan
    "plan.create": Shape(("planId", "chatId", "plan")),
    "plan.update": Shape(("planId", "chatId", "plan")),
    # run
    "run.start": Shape(("runId", "chatId"), ("agentKey", "version")),
    "run.complete": Shape(("runId",), ("finishReason", "usage")),
    "run.cancel": Shape(("runId",), ("reason",)),
    "run.error": Shape(("runId", "error")),
    # task
    "task.start": Shape(("taskId", "runId"), ("taskName", "description")),
    "task.complete": Shape(("taskId",), ("runId",)),
    "task.cancel": Shape(("taskId",), ("runId",)),
    "task.fail": Shape(("taskId",), ("runId", "error")),
    # reasoning
    "reasoning.start": Shape(("reasoningId", "runId"), ("taskId",)),
    "reasoning.delta": Shape(("reasoningId", "delta")),
    "reasoning.end": Shape(("reasoningId",)),
    "reasoning.snapshot": Shape(("reasoningId", "text"), ("runId", "taskId")),
    # content
    "content.start": Shape(("contentId", "runId"), ("taskId",)),
    "content.delta": Shape(("contentId", "delta")),
    "content.end": Shape(("contentId",)),
    "content.snapshot": Shape(("contentId", "text"), ("runId", "taskId")),
    # tool
    "tool.start": Shape(("toolId", "runId"), _TOOL_META),
    "tool.args": Shape(("toolId", "delta"), ("chunkIndex",)),
    "tool.end": Shape(("toolId",)),
    "tool.result": Shape(("toolId", "result"), ("runId", "taskId", "status", "ok")),
    "tool.snapshot": Shape(("toolId",), (*_TOOL_META, "runId", "arguments", "status")),
    "tool.status": Shape(("toolId", "runId", "status"), ("taskId", "detail")),
    # action
    "action.start": Shape(("actionId", "runId"), ("taskId", "actionName", "description")),
    "action.args": Shape(("actionId", "delta")),
    "action.end": Shape(("actionId",)),
    "action.param": Shape(("actionId", "param")),
    "action.result": Shape(("actionId", "result"), ("runId", "taskId")),
    "action.snapshot": Shape(("actionId",), ("runId", "actionName", "taskId", "description", "arguments")),
    # source
    "source.snapshot": Shape(("sourceId",), ("runId", "taskId", "icon", "title", "url")),
    # usage (§10.5): after each model call
    "usage": Shape(
        ("runId", "inputTokens", "outputTokens", "points", "estimated"),
        ("taskId", "model", "reasoningTokens", "cachedTokens", "stage"),
    ),
}

TERMINAL_TYPES: Final = frozenset({"run.complete", "run.cancel", "run.error"})
HEARTBEAT: Final = b":heartbeat\n\n"


def now_ms() -> int:
    return int(time.time() * 1000)


def make_event(seq: int, type_: str, fields: dict[str, Any], timestamp: int | None = None) -> dict[str, Any]:
    """Build an event dict with ``seq``, ``type``, ``timestamp`` first; ``None`` fields are dropped."""
    event: dict[str, Any] = {
        "seq": seq,
        "type": type_,
        "timestamp": now_ms() if timestamp is None else timestamp,
    }
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event


def sse_frame(event: dict[str, Any]) -> bytes:
    """One SSE message: ``id: <seq>``, ``event: message``, one ``data:`` line of JSON."""
    return b"id: %d\nevent: message\ndata: %b\n\n" % (event["seq"], orjson.dumps(event))


def validate_event(event: dict[str, Any]) -> list[str]:
    """Problems of one event against :data:`EVENT_TYPES` (empty when it conforms)."""
    problems: list[str] = []
    keys = list(event)
    if keys[:3] != ["seq", "type", "timestamp"]:
        problems.append(f"event must start with seq, type, timestamp; got {keys[:3]}")
    shape = EVENT_TYPES.get(event.get("type", ""))
    if shape is None:
        return [*problems, f"unknown event type {event.get('type')!r}"]
    payload = set(keys[3:])
    missing = [f for f in shape.required if f not in payload]
    extra = sorted(payload - set(shape.required) - set(shape.optional) - {"rawEvent"})
    if missing:
        problems.append(f"{event['type']}: missing {missing}")
    if extra:
        problems.append(f"{event['type']}: unexpected {extra}")
    if not isinstance(event.get("seq"), int) or event["seq"] < 1:
        problems.append("seq must be a positive integer")
    return problems


def event_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every event type, served at ``/api/ap/schema/events``."""
    variants = []
    for type_, shape in EVENT_TYPES.items():
        props: dict[str, Any] = {
            "seq": {"type": "integer", "minimum": 1},
            "type": {"const": type_},
            "timestamp": {"type": "integer"},
            "rawEvent": {},
        }
        for name in (*shape.required, *shape.optional):
            props[name] = {}
        variants.append(
            {
                "title": type_,
                "type": "object",
                "required": ["seq", "type", "timestamp", *shape.required],
                "properties": props,
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "agentgw/events/v1",
        "title": "agentgw SSE events",
        "oneOf": variants,
    }
