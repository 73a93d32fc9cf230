"""Chat history as compacted events (SPEC §5 "History", §11.3 "History replay per run").

Two functions keep one rule — *the events of ``GET /api/ap/chat`` equal the live events
compacted* — from both ends:

- :func:`history_events` builds the events from the chat file;
- :func:`compact_live_events` compacts a list of live SSE events the same way.

The compaction, per run: ``request.query``; ``chat.start {chatId, chatName}`` on the first
run only; ``run.start``; one ``plan.update`` with the run's latest plan (when the run had
one) right after ``run.start``; then, in order of their first event, ``reasoning.snapshot``
/ ``content.snapshot`` (start + deltas + end merged), ``tool.snapshot`` / ``action.snapshot``
(start + args + end merged; ``arguments`` is the raw argument text), ``tool.result`` /
``action.result`` and ``source.snapshot`` as they were; then the run's end as it happened:
``run.complete {runId, finishReason}`` (``end_turn`` unless it was e.g. ``timeout``),
``run.cancel {runId}`` or ``run.error {runId, error}``. A run stored without an end (a
crash, or a file written by the upstream gateway) reads as ``run.complete end_turn``.
Dropped: ``plan.create``, ``task.*``, ``usage``, ``request.submit``/``upload``, heartbeats,
``run.complete.usage``, ``chat.start.chatImageToken`` and any event type not listed here.

Ids are the live ones (``{runId}_r_{n}``, ``{runId}_c_{n}``, tool and action ids), which
the file keeps in ``_liveId`` next to its own ``r_``/``c_`` ids; files without ``_liveId``
use the file ids. ``seq`` starts at 1 per response. Timestamps: history takes the stored
``ts`` (``updatedAt`` for run-level events), live compaction the time of a block's first
event; both are then made strictly increasing. They are the one field the two sides may
disagree on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from agentgw.memory.format import normalize_line, parts_text
from agentgw.memory.store import StoredRun, chat_name, group_runs

QUERY_KEYS = ("requestId", "chatId", "role", "message", "agentKey", "references", "params", "scene", "stream")
TOOL_SNAPSHOT_KEYS = ("toolType", "toolKey", "toolApi", "toolParams", "toolTimeout", "description")
_TERMINAL = ("run.complete", "run.cancel", "run.error")
_UNRESOLVED_AGENT = ("", "auto", "default")


def _pick(source: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: source[k] for k in keys if source.get(k) is not None}


def _number(events: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Give each event ``seq`` from 1 and a strictly increasing ``timestamp``."""
    out: list[dict[str, Any]] = []
    last = 0
    for seq, (stamp, body) in enumerate(events, start=1):
        last = stamp if stamp > last else last + 1
        out.append({"seq": seq, "type": body.pop("type"), "timestamp": last, **body})
    return out


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# ---- from the chat file -------------------------------------------------------------------


def _run_end(run: StoredRun) -> dict[str, Any]:
    for step in reversed(run.steps):
        end = step.get("_end")
        if isinstance(end, Mapping):
            kind = end.get("type")
            if kind == "run.cancel":
                return {"type": kind, "runId": run.run_id}
            if kind == "run.error":
                return {"type": kind, "runId": run.run_id, "error": end.get("error") or {}}
            return {
                "type": "run.complete",
                "runId": run.run_id,
                "finishReason": end.get("finishReason") or "end_turn",
            }
    return {"type": "run.complete", "runId": run.run_id, "finishReason": "end_turn"}


def _message_events(
    message: Mapping[str, Any], task_id: Any, call_kinds: dict[str, str], fallback_ts: int
) -> list[tuple[int, dict[str, Any]]]:
    stamp = _int(message.get("ts"), fallback_ts)
    out: list[tuple[int, dict[str, Any]]] = []
    for source in message.get("_sources") or ():
        if isinstance(source, Mapping):
            out.append((stamp, {"type": "source.snapshot", **source}))
    task = message.get("_taskId", task_id)
    task_part = {"taskId": task} if isinstance(task, str) else {}
    role = message.get("role")
    if role == "assistant":
        if "reasoning_content" in message:
            rid = message.get("_liveId") or message.get("_reasoningId")
            text = parts_text(message.get("reasoning_content"))
            out.append((stamp, {"type": "reasoning.snapshot", "reasoningId": rid, "text": text, **task_part}))
        if "content" in message and message.get("content") is not None:
            cid = message.get("_liveId") or message.get("_contentId")
            text = parts_text(message.get("content"))
            out.append((stamp, {"type": "content.snapshot", "contentId": cid, "text": text, **task_part}))
        info = message.get("_toolInfo")
        info = info if isinstance(info, Mapping) else {}
        for call in message.get("tool_calls") or ():
            if not isinstance(call, Mapping):
                continue
            fn = call.get("function")
            if not isinstance(fn, Mapping):
                fn = {}
            call_id = call.get("id") or message.get("_toolId") or message.get("_actionId")
            kind = info.get("kind") or ("action" if "_actionId" in message else "tool")
            call_kinds[str(call_id)] = kind
            name, args = fn.get("name"), fn.get("arguments") or ""
            if kind == "action":
                body = {"type": "action.snapshot", "actionId": call_id, "actionName": name, **task_part}
                body.update(_pick(info, ("description",)))
            else:
                body = {"type": "tool.snapshot", "toolId": call_id, "toolName": name, **task_part}
                body.update(_pick(info, TOOL_SNAPSHOT_KEYS))
            body["arguments"] = args
            out.append((stamp, body))
    elif role == "tool":
        call_id = str(message.get("tool_call_id") or message.get("_toolId") or message.get("_actionId") or "")
        kind = call_kinds.get(call_id) or ("action" if "_actionId" in message else "tool")
        result = parts_text(message.get("content"))
        if kind == "action":
            out.append((stamp, {"type": "action.result", "actionId": call_id, "result": result}))
        else:
            out.append((stamp, {"type": "tool.result", "toolId": call_id, "result": result}))
    return out


def _run_events(
    run: StoredRun, chat_id: str, name: str | None, first: bool
) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    first_step_ts = _int(run.steps[0].get("updatedAt"), 0) if run.steps else 0
    base = _int(run.query.get("updatedAt"), first_step_ts) if run.query else first_step_ts
    run_start: dict[str, Any] = {"runId": run.run_id, "chatId": chat_id}
    plan: Mapping[str, Any] | None = None
    for step in run.steps:
        if isinstance(step.get("_runStart"), Mapping):
            run_start = dict(step["_runStart"])
        if isinstance(step.get("plan"), Mapping):
            plan = step["plan"]
    if run.query is not None:
        query = run.query.get("query")
        body = {"type": "request.query", **_pick(query if isinstance(query, Mapping) else {}, QUERY_KEYS)}
        # The live event names the agent that ran, not "auto"/"default"/nothing as asked.
        if str(body.get("agentKey") or "").strip() in _UNRESOLVED_AGENT and run_start.get("agentKey"):
            body["agentKey"] = run_start["agentKey"]
        out.append((base, body))
    if first:
        out.append((base, {"type": "chat.start", "chatId": chat_id, "chatName": name or ""}))
    out.append((base, {"type": "run.start", **run_start}))
    if plan is not None:
        body = {"type": "plan.update", "planId": plan.get("planId"), "chatId": chat_id, "plan": dict(plan)}
        out.append((base, body))
    call_kinds: dict[str, str] = {}
    last = base
    for step in run.steps:
        step_ts = _int(step.get("updatedAt"), last)
        task_id = step.get("taskId")
        for message in step.get("messages") or ():
            if isinstance(message, Mapping):
                out.extend(_message_events(message, task_id, call_kinds, step_ts))
        for source in step.get("_sources") or ():
            if isinstance(source, Mapping):
                out.append((step_ts, {"type": "source.snapshot", **source}))
        last = step_ts
    out.append((last, _run_end(run)))
    return out


def history_events(lines: list[dict[str, Any]], *, name: str | None = None) -> list[dict[str, Any]]:
    """The compacted events of a whole chat file (``GET /api/ap/chat``).

    ``name`` is the chat name for ``chat.start``; by default it is derived from the first
    query's message, as it was when the chat was created.
    """
    runs = group_runs([normalize_line(line) for line in lines])
    chat_id = ""
    for line in lines:
        if isinstance(line.get("chatId"), str):
            chat_id = line["chatId"]
            break
    if name is None:
        first_query = next((r.query for r in runs if r.query is not None), None)
        query = first_query.get("query") if first_query else None
        name = chat_name(str(query.get("message") or "")) if isinstance(query, Mapping) else ""
    events: list[tuple[int, dict[str, Any]]] = []
    for index, run in enumerate(runs):
        events.extend(_run_events(run, chat_id, name, index == 0))
    return _number(events)


def chat_references(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The union of the runs' query references, de-duplicated by ``id`` (first one kept)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for line in lines:
        if line.get("_type") != "query" or not isinstance(line.get("query"), Mapping):
            continue
        for ref in line["query"].get("references") or ():
            if not isinstance(ref, Mapping):
                continue
            ref_id = ref.get("id")
            key = (
                f"id:{ref_id}"
                if ref_id is not None
                else orjson.dumps(ref, option=orjson.OPT_SORT_KEYS).decode()
            )
            if key not in seen:
                seen.add(key)
                out.append(dict(ref))
    return out


def raw_messages(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every stored message, oldest first, each with the ``runId`` it belongs to."""
    out: list[dict[str, Any]] = []
    for line in lines:
        if line.get("_type") != "step":
            continue
        for message in line.get("messages") or ():
            if isinstance(message, Mapping):
                out.append({**message, "runId": line.get("runId")})
    return out


# ---- from live events ---------------------------------------------------------------------


class _LiveCompactor:
    def __init__(self) -> None:
        self.out: list[tuple[int, dict[str, Any]] | None] = []
        self.parts: dict[tuple[str, str], tuple[dict[str, Any], list[str], str]] = {}
        self.plan_slot: int | None = None
        self.plan: dict[str, Any] | None = None

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        stamp = _int(event.get("timestamp"), 0)
        group, _, action = kind.partition(".")
        task = {"taskId": event["taskId"]} if isinstance(event.get("taskId"), str) else {}
        if kind == "request.query":
            self._emit(stamp, {"type": kind, **_pick(event, QUERY_KEYS)})
        elif kind == "chat.start":
            self._emit(
                stamp, {"type": kind, "chatId": event.get("chatId"), "chatName": event.get("chatName") or ""}
            )
        elif kind == "run.start":
            self._close_run()
            self._emit(
                stamp,
                {"type": kind, **{k: v for k, v in event.items() if k not in ("seq", "type", "timestamp")}},
            )
            self.plan_slot = len(self.out)
            self.out.append(None)
        elif kind in ("plan.create", "plan.update"):
            plan = event.get("plan")
            self.plan = {
                "type": "plan.update",
                "planId": event.get("planId"),
                "chatId": event.get("chatId"),
                "plan": plan,
            }
        elif group in ("reasoning", "content") and action == "start":
            id_key = f"{group}Id"
            body = {"type": f"{group}.snapshot", id_key: event.get(id_key), "text": "", **task}
            self._open(group, str(event.get(id_key)), stamp, body, "text")
        elif kind == "tool.start":
            body = {
                "type": "tool.snapshot",
                "toolId": event.get("toolId"),
                "toolName": event.get("toolName"),
                **task,
            }
            body.update(_pick(event, TOOL_SNAPSHOT_KEYS))
            self._open("tool", str(event.get("toolId")), stamp, body, "arguments")
        elif kind == "action.start":
            body = {
                "type": "action.snapshot",
                "actionId": event.get("actionId"),
                "actionName": event.get("actionName"),
                **task,
            }
            body.update(_pick(event, ("description",)))
            self._open("action", str(event.get("actionId")), stamp, body, "arguments")
        elif action in ("delta", "args") and group in ("reasoning", "content", "tool", "action"):
            entry = self.parts.get((group, str(event.get(f"{group}Id"))))
            if entry is not None and isinstance(event.get("delta"), str):
                entry[1].append(event["delta"])
        elif kind == "tool.result":
            self._emit(stamp, {"type": kind, "toolId": event.get("toolId"), "result": event.get("result")})
        elif kind == "action.result":
            self._emit(
                stamp, {"type": kind, "actionId": event.get("actionId"), "result": event.get("result")}
            )
        elif kind == "source.snapshot":
            self._emit(
                stamp,
                {"type": kind, **{k: v for k, v in event.items() if k not in ("seq", "type", "timestamp")}},
            )
        elif kind in _TERMINAL:
            body = {"type": kind, "runId": event.get("runId")}
            if kind == "run.complete":
                body["finishReason"] = event.get("finishReason") or "end_turn"
            elif kind == "run.error":
                body["error"] = event.get("error") or {}
            self._close_run()
            self._emit(stamp, body)

    def _emit(self, stamp: int, body: dict[str, Any]) -> None:
        self.out.append((stamp, body))

    def _open(self, group: str, block_id: str, stamp: int, body: dict[str, Any], text_key: str) -> None:
        self.parts[(group, block_id)] = (body, [], text_key)
        self._emit(stamp, body)

    def _close_run(self) -> None:
        if self.plan_slot is not None:
            if self.plan is not None:
                stamp = self.out[self.plan_slot - 1]
                self.out[self.plan_slot] = (stamp[0] if stamp else 0, self.plan)
            self.plan_slot = None
        self.plan = None

    def result(self) -> list[dict[str, Any]]:
        self._close_run()
        for body, pieces, text_key in self.parts.values():
            body[text_key] = "".join(pieces)
        return _number([item for item in self.out if item is not None])


def compact_live_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compact live SSE events (one run or several, in order) by the history rule above."""
    compactor = _LiveCompactor()
    for event in events:
        compactor.add(event)
    return compactor.result()
