"""Turn a run's live events into chat-file lines (SPEC §7, format V3.1).

The engine feeds every emitted event to :meth:`RunRecorder.on_event` (text deltas to
:meth:`RunRecorder.on_text`), synchronously, on the hot path. They are only kept there (one
list append) and taken in batches of up to ``HELD_EVENTS``, or before anything else the
recorder is asked to do: a run's opening and first delta then go out without the work of
turning them into messages (~14 us a run, in the provider's read callback that sends the
first delta). Texts are joined and lines written only in :meth:`RunRecorder.flush_step`
(after each model turn's tool results) and :meth:`RunRecorder.finish`.

Message rules:

- an assistant message holds exactly one of ``content[]``, ``reasoning_content[]``,
  ``tool_calls[]`` (one call each: parallel calls are several messages);
- ``_msgId`` (``m_`` + 8 hex) is shared by every part of one model response; a new one
  starts at each model turn (``begin_stage``) and after a tool or action result;
- ``_toolId``/``_actionId``: action events, and tools named in ``memory.chat.action-tools``,
  are stored with ``_actionId``; every other tool with ``_toolId``;
- ``_usage`` is the model call's ``usage`` event on every message of that call, or the fixed
  empty structure when the call reported none (cancelled mid-stream);
- an interrupted run keeps what was produced: open blocks are stored as they stand;
- approval decisions (``tool.status``) are kept on the call as ``_toolStatus`` entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentgw.memory.format import empty_usage, new_id, now_ms, stored_usage, text_parts
from agentgw.memory.store import ChatNotFound, ChatStore, chat_name
from agentgw.settings import Settings
from agentgw.usage import UsageTotals

log = logging.getLogger(__name__)

# Fields of tool.start / action.start kept to replay tool.snapshot / action.snapshot.
_TOOL_INFO_KEYS = ("toolType", "toolKey", "toolApi", "toolParams", "toolTimeout", "description")
_STAGE_ALIASES = {"plain": "oneshot"}
_TERMINAL = ("run.complete", "run.cancel", "run.error")
HELD_EVENTS = 64  # events (and text deltas) kept before they are taken, at most


def _ts(event: dict[str, Any]) -> int:
    stamp = event.get("timestamp")
    return stamp if isinstance(stamp, int) else now_ms()


def _timing(started: int, ended: int) -> dict[str, int]:
    return {"startedAt": started, "endedAt": ended, "durationMs": max(0, ended - started)}


@dataclass(slots=True)
class _Block:
    """A reasoning/content block or a tool/action call being streamed."""

    message: dict[str, Any]
    parts: list[str] = field(default_factory=list)
    started: int = 0
    ended: int | None = None
    kind: str = "content"  # reasoning | content | tool | action


@dataclass(slots=True)
class _HeldText:
    """Text deltas of one block in a row, kept by :meth:`RunRecorder.on_text`."""

    kind: str
    block_id: str
    parts: list[str]


@dataclass(slots=True)
class _Step:
    stage: str
    task_id: str | None
    system: dict[str, Any] | None
    messages: list[dict[str, Any]]
    plan: dict[str, Any] | None
    sources: list[dict[str, Any]]


class RunRecorder:
    """Records one run of one chat.

    Usage: ``await start(query)``; per model turn ``begin_stage(...)``; ``on_event(e)`` for
    every emitted event; ``await flush_step()`` after each turn's tool results; at the end
    ``await finish(status)``. If the chat file disappears (the chat was deleted mid-run) the
    recorder stops writing and the run goes on.
    """

    __slots__ = (
        "_blocks",
        "_disabled",
        "_end",
        "_held",
        "_held_n",
        "_msg_id",
        "_pending",
        "_plan",
        "_plan_written",
        "_run_start",
        "_sealed",
        "_seq",
        "_sources",
        "_stage",
        "_stage_known",
        "_system",
        "_task_id",
        "_turn_messages",
        "_written_any",
        "_written_stage",
        "_written_system",
        "action_tools",
        "chat_id",
        "run_id",
        "store",
        "trim_file",
        "usage",
    )

    def __init__(self, store: ChatStore, chat_id: str, run_id: str, settings: Settings | None = None) -> None:
        self.store = store
        self.chat_id = chat_id
        self.run_id = run_id
        if settings is not None:
            self.action_tools: frozenset[str] = frozenset(settings.memory.chat.action_tools)
            self.trim_file: bool = settings.memory.chat.trim_file
        else:
            self.action_tools, self.trim_file = store.action_tools, store.trim_file
        self.usage = UsageTotals()  # this run's totals (from the usage events)
        self._disabled = False
        self._seq = 0
        self._stage = "oneshot"
        self._stage_known = False
        self._task_id: str | None = None
        self._system: dict[str, Any] | None = None
        self._written_any = False
        self._written_stage: str | None = None
        self._written_system: dict[str, Any] | None = None
        self._pending: list[dict[str, Any]] = []
        self._sealed: list[_Step] = []
        self._sources: list[dict[str, Any]] = []
        self._blocks: dict[tuple[str, Any], _Block] = {}
        self._msg_id: str | None = None
        self._turn_messages: list[dict[str, Any]] = []  # assistant messages of the current model call
        self._plan: dict[str, Any] | None = None
        self._plan_written: dict[str, Any] | None = None
        self._run_start: dict[str, Any] | None = None
        self._end: dict[str, Any] | None = None
        # What on_event / on_text got and _take_held has not taken yet, in order: event
        # dicts, and the text deltas of a block in a row; _held_n counts both.
        self._held: list[dict[str, Any] | _HeldText] = []
        self._held_n = 0

    # ---- engine API -------------------------------------------------------------------

    async def start(self, query: dict[str, Any], *, create: dict[str, Any] | None = None) -> None:
        """Store the run's ``query`` line (soon: see :meth:`ChatStore.start_run`); the user
        message opens the run's first step.

        ``query`` should be the ``request.query`` payload; missing ``chatId``, ``requestId``
        (the run id, §5) and ``role`` are filled in as the live event has them. ``create``
        (the arguments of :meth:`ChatStore.create_chat` but the id) creates the chat first.
        """
        line, message = self._query_line(query)
        if create is None and not await self.store.exists(self.chat_id):
            # The engine names a new chat (and its owner); without that, name it here.
            create = {
                "name": chat_name(message),
                "agent_key": str(line["query"].get("agentKey") or ""),
                "agent_name": "",
            }
        # Written soon, before anything else reads or writes the chat (ChatStore.start_run).
        await self.store.start_run(self.chat_id, line, create)

    def start_soon(self, query: dict[str, Any], *, create: dict[str, Any] | None) -> None:
        """:meth:`start` for a caller that knows whether the chat exists (``create`` is
        given for a new one) and a store that writes inline (``ChatStore.inline_writes``):
        nothing to wait for. The engine's start (``agentgw.engine.runs``)."""
        line, _message = self._query_line(query)
        self.store.start_run_soon(self.chat_id, line, create)

    def _query_line(self, query: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The run's ``query`` line, and its message (which opens the run's first step)."""
        self._take_held()
        stamp = now_ms()
        query = {**query, "chatId": self.chat_id}
        if not query.get("requestId"):
            query["requestId"] = self.run_id
        if not query.get("role"):
            query["role"] = "user"
        message = str(query.get("message") or "")
        role = query.get("role")
        self._pending.append(
            {
                "role": role if role in ("user", "system", "assistant") else "user",
                "content": text_parts(message),
                "ts": stamp,
            }
        )
        line = {
            "_type": "query",
            "chatId": self.chat_id,
            "runId": self.run_id,
            "updatedAt": stamp,
            "query": query,
        }
        return line, message

    def begin_stage(self, stage: str, system: dict[str, Any] | None, task_id: str | None = None) -> None:
        """A model turn begins: set the stage, system snapshot and task of what follows."""
        self._take_held()
        stage = _STAGE_ALIASES.get(stage, stage)
        # Before the first turn only the user message is pending: it joins the first stage.
        changed = stage != self._stage or task_id != self._task_id
        if self._stage_known and changed and self._has_news():
            self._seal()
        self._stage_known = True
        self._stage, self._task_id = stage, task_id
        if system is not None:
            self._system = system
        self._msg_id = None
        self._turn_messages = []

    def set_plan(self, plan: dict[str, Any]) -> None:
        """The run's plan changed (same effect as seeing its ``plan.update`` event)."""
        self._take_held()
        self._on_plan({"plan": plan})

    def add_user_message(self, text: str, ts: int | None = None) -> None:
        """Record a user message the engine adds itself (a PLAN_EXECUTE task prompt)."""
        self._take_held()
        self._pending.append({"role": "user", "content": text_parts(text), "ts": ts or now_ms()})

    def on_event(self, event: dict[str, Any]) -> None:
        """Take one emitted event: kept, and taken with the next batch (module notes).
        One the chat does not store anything of (``request.query``, ``chat.start``, ...)
        is not kept."""
        if event.get("type", "") not in _HANDLERS:
            return
        self._held.append(event)
        self._held_n += 1
        if self._held_n >= HELD_EVENTS:
            self._take_held()

    def on_text(self, kind: str, block_id: str, text: str) -> None:
        """Take one reasoning/content delta (the event log's hot path: no event dict).

        Kept with the deltas of its block that came right before it: a string added to a
        list, no container per delta (the young generation's count stays as it was).
        """
        held = self._held
        last = held[-1] if held else None
        if type(last) is _HeldText and last.block_id == block_id and last.kind == kind:
            last.parts.append(text)
        else:
            held.append(_HeldText(kind, block_id, [text]))
        self._held_n += 1
        if self._held_n >= HELD_EVENTS:
            self._take_held()

    def _take_held(self) -> None:
        """Turn the events kept by on_event / on_text into messages, in their order."""
        held = self._held
        if not held:
            return
        self._held = []
        self._held_n = 0
        for item in held:
            if type(item) is _HeldText:
                block = self._blocks.get((item.kind, item.block_id))
                if block is None:  # deltas without their start (the engine does not do this)
                    block = self._text_block({"timestamp": now_ms()}, item.kind, item.block_id)
                block.parts.extend(item.parts)
            else:
                assert isinstance(item, dict)
                handler, args = _HANDLERS[item["type"]]  # on_event kept only handled types
                handler(self, *args, item)

    async def flush_step(self) -> None:
        """Write the step(s) gathered since the last flush; nothing when there is nothing new."""
        lines = self._take_steps()
        if lines:
            await self._write(lines)

    def _take_steps(self) -> list[dict[str, Any]]:
        self._take_held()
        if self._has_news():
            self._seal()
        lines = [self._step_line(step) for step in self._sealed]
        self._sealed = []
        return lines

    async def finish(
        self, status: str = "completed", fields: dict[str, Any] | None = None, *, trim: bool = True
    ) -> None:
        """Store what is left, how the run ended, and the run's usage in the chat index.

        The engine calls this before it emits the terminal event: ``status`` is then that
        event's type and ``fields`` its fields. Otherwise the terminal event seen by
        :meth:`on_event` decides the end, and without one ``status`` does:
        ``completed``/``timeout``/``cancelled``/``failed``. The last steps and the end go
        to the file in one write. ``trim=False`` leaves ``memory.chat.trim-file`` to a later
        :meth:`trim` (the engine trims after the terminal event: a rewrite of the file
        should not delay it).
        """
        self._take_held()
        if fields is not None:
            self._on_terminal({**fields, "type": status})
        stamp = now_ms()
        for block in self._blocks.values():
            if block.ended is None:
                self._close_block(block, stamp)
        lines = self._take_steps()
        end = self._end or _end_from_status(status)
        line = self._step_line(_Step(self._stage, self._task_id, None, [], None, []))
        line["_end"] = end
        lines.append(line)
        await self._write(lines)
        if self._disabled:
            return
        try:
            await self.store.record_run_end(self.chat_id, self.usage, stamp)
        except ChatNotFound:
            log.info("chat %s was deleted during run %s; index not updated", self.chat_id, self.run_id)
            return
        if trim:
            await self.trim()

    async def trim(self) -> None:
        """Cut the chat file to its window when ``memory.chat.trim-file`` is on."""
        if self.trim_file and not self._disabled:
            try:
                await self.store.trim_to_window(self.chat_id)
            except ChatNotFound:
                log.info("chat %s was deleted before run %s was trimmed", self.chat_id, self.run_id)

    # ---- event handlers ---------------------------------------------------------------

    def _assistant(self, event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if self._msg_id is None:
            self._msg_id = new_id("m")
        message: dict[str, Any] = {"role": "assistant", **body, "ts": _ts(event), "_msgId": self._msg_id}
        task_id = event.get("taskId")
        if isinstance(task_id, str) and task_id != self._task_id:
            message["_taskId"] = task_id
        message["_usage"] = empty_usage()
        self._append_message(message)
        self._turn_messages.append(message)
        return message

    def _append_message(self, message: dict[str, Any]) -> None:
        if self._sources:
            message["_sources"] = self._sources
            self._sources = []
        self._pending.append(message)

    def _on_reasoning_start(self, event: dict[str, Any]) -> None:
        self._text_block(event, "reasoning", str(event.get("reasoningId") or ""))

    def _on_content_start(self, event: dict[str, Any]) -> None:
        self._text_block(event, "content", str(event.get("contentId") or ""))

    def _text_block(self, event: dict[str, Any], kind: str, live_id: str) -> _Block:
        if kind == "reasoning":
            message = self._assistant(event, {"reasoning_content": []})
            message["_reasoningId"] = new_id("r")
        else:
            message = self._assistant(event, {"content": []})
            message["_contentId"] = new_id("c")
        message["_liveId"] = live_id
        block = _Block(message, started=_ts(event), kind=kind)
        self._blocks[(kind, live_id)] = block
        return block

    def _on_delta(self, kind: str, id_key: str, event: dict[str, Any]) -> None:
        block = self._blocks.get((kind, event.get(id_key)))
        if block is None:
            # A delta without its start (the engine should not do this): open the block here.
            block_id = str(event.get(id_key) or "")
            if kind in ("reasoning", "content"):
                block = self._text_block(event, kind, block_id)
            else:
                block = self._call_block(event, kind, block_id, "")
        text = event.get("delta")
        if isinstance(text, str):
            block.parts.append(text)

    def _on_block_end(self, kind: str, id_key: str, event: dict[str, Any]) -> None:
        block = self._blocks.get((kind, event.get(id_key)))
        if block is not None and block.ended is None:
            self._close_block(block, _ts(event))

    def _close_block(self, block: _Block, stamp: int) -> None:
        block.ended = stamp
        text = "".join(block.parts)
        message = block.message
        if block.kind == "reasoning":
            message["reasoning_content"] = text_parts(text)
        elif block.kind == "content":
            message["content"] = text_parts(text)
        else:
            message["tool_calls"][0]["function"]["arguments"] = text
        message["_timing"] = _timing(block.started, stamp)

    def _call_block(self, event: dict[str, Any], kind: str, call_id: str, name: str) -> _Block:
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        message = self._assistant(event, {"tool_calls": [call]})
        is_action = kind == "action" or name in self.action_tools
        message["_actionId" if is_action else "_toolId"] = call_id
        info: dict[str, Any] = {"kind": kind}
        for key in _TOOL_INFO_KEYS:
            if key in event and event[key] is not None:
                info[key] = event[key]
        message["_toolInfo"] = info
        block = _Block(message, started=_ts(event), kind=kind)
        self._blocks[(kind, call_id)] = block
        return block

    def _on_tool_start(self, event: dict[str, Any]) -> None:
        self._call_block(event, "tool", str(event.get("toolId") or ""), str(event.get("toolName") or ""))

    def _on_action_start(self, event: dict[str, Any]) -> None:
        self._call_block(
            event, "action", str(event.get("actionId") or ""), str(event.get("actionName") or "")
        )

    def _on_result(self, kind: str, id_key: str, event: dict[str, Any]) -> None:
        call_id = str(event.get(id_key) or "")
        block = self._blocks.get((kind, call_id))
        stamp = _ts(event)
        if block is not None and block.ended is None:
            self._close_block(block, stamp)
        name = block.message["tool_calls"][0]["function"]["name"] if block is not None else ""
        result = event.get("result")
        text = result if isinstance(result, str) else ("" if result is None else str(result))
        message: dict[str, Any] = {
            "role": "tool",
            "name": name,
            "tool_call_id": call_id,
            "content": text_parts(text),
            "ts": stamp,
        }
        is_action = kind == "action" or name in self.action_tools
        message["_actionId" if is_action else "_toolId"] = call_id
        if block is not None:
            task_id = block.message.get("_taskId")
            if task_id is not None:
                message["_taskId"] = task_id
            message["_timing"] = _timing(block.ended or stamp, stamp)
        self._append_message(message)
        # What the model says after a result is a new response part: it gets a new _msgId.
        self._msg_id = None

    def _on_tool_status(self, event: dict[str, Any]) -> None:
        # Approval decisions (§10.4) are kept on the call they were about.
        block = self._blocks.get(("tool", event.get("toolId")))
        if block is None:
            return
        entry: dict[str, Any] = {"status": event.get("status"), "ts": _ts(event)}
        if event.get("detail") is not None:
            entry["detail"] = event["detail"]
        block.message.setdefault("_toolStatus", []).append(entry)

    def _on_plan(self, event: dict[str, Any]) -> None:
        plan = event.get("plan")
        if isinstance(plan, dict):
            tasks = plan.get("tasks")
            # Copied: the engine may keep mutating its plan object after emitting it.
            self._plan = {
                **plan,
                "planId": plan.get("planId") or event.get("planId"),
                "tasks": [dict(t) for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else [],
            }

    def _on_source(self, event: dict[str, Any]) -> None:
        self._sources.append(_payload(event))

    def _on_usage(self, event: dict[str, Any]) -> None:
        self.usage.add_call(event)
        usage = stored_usage(event)
        for message in self._turn_messages:
            message["_usage"] = dict(usage)

    def _on_run_start(self, event: dict[str, Any]) -> None:
        self._run_start = _payload(event)

    def _on_terminal(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "run.complete":
            self._end = {"type": kind, "finishReason": event.get("finishReason") or "end_turn"}
        elif kind == "run.error":
            error = event.get("error")
            self._end = {"type": kind, "error": error if isinstance(error, dict) else {"message": str(error)}}
        else:
            self._end = {"type": kind}

    # ---- steps ------------------------------------------------------------------------

    def _has_news(self) -> bool:
        return bool(self._pending) or bool(self._sources) or self._plan != self._last_plan()

    def _last_plan(self) -> dict[str, Any] | None:
        for step in reversed(self._sealed):
            if step.plan is not None:
                return step.plan
        return self._plan_written

    def _seal(self) -> None:
        plan = self._plan if self._plan != self._last_plan() else None
        self._sealed.append(
            _Step(self._stage, self._task_id, self._system, self._pending, plan, self._sources)
        )
        self._pending, self._sources = [], []

    def _step_line(self, step: _Step) -> dict[str, Any]:
        self._seq += 1
        line: dict[str, Any] = {
            "_type": "step",
            "chatId": self.chat_id,
            "runId": self.run_id,
            "_stage": step.stage,
            "_seq": self._seq,
            "updatedAt": now_ms(),
        }
        if step.task_id is not None:
            line["taskId"] = step.task_id
        if step.system is not None and (
            not self._written_any
            or (step.stage != self._written_stage and step.system != self._written_system)
        ):
            line["system"] = step.system
            self._written_system = step.system
        if not self._written_any and self._run_start is not None:
            line["_runStart"] = self._run_start
        if step.plan is not None:
            line["plan"] = step.plan
            self._plan_written = step.plan
        line["messages"] = _finished(step.messages, self._blocks.values())
        if step.sources:
            line["_sources"] = step.sources
        self._written_any = True
        self._written_stage = step.stage
        return line

    async def _write(self, lines: list[dict[str, Any]]) -> None:
        if self._disabled:
            return
        try:
            await self.store.append_lines(self.chat_id, lines, create=lines[0].get("_type") == "query")
        except ChatNotFound:
            self._disabled = True
            log.info("chat %s was deleted during run %s; recording stops", self.chat_id, self.run_id)


# event type → (handler, leading arguments); one table for every recorder (a per-instance
# dict of bound partials costs ~1 KB per live run).
_HANDLERS: dict[str, tuple[Callable[..., None], tuple[str, ...]]] = {
    "reasoning.start": (RunRecorder._on_reasoning_start, ()),
    "reasoning.delta": (RunRecorder._on_delta, ("reasoning", "reasoningId")),
    "reasoning.end": (RunRecorder._on_block_end, ("reasoning", "reasoningId")),
    "content.start": (RunRecorder._on_content_start, ()),
    "content.delta": (RunRecorder._on_delta, ("content", "contentId")),
    "content.end": (RunRecorder._on_block_end, ("content", "contentId")),
    "tool.start": (RunRecorder._on_tool_start, ()),
    "tool.args": (RunRecorder._on_delta, ("tool", "toolId")),
    "tool.end": (RunRecorder._on_block_end, ("tool", "toolId")),
    "tool.result": (RunRecorder._on_result, ("tool", "toolId")),
    "action.start": (RunRecorder._on_action_start, ()),
    "action.args": (RunRecorder._on_delta, ("action", "actionId")),
    "action.end": (RunRecorder._on_block_end, ("action", "actionId")),
    "action.result": (RunRecorder._on_result, ("action", "actionId")),
    "tool.status": (RunRecorder._on_tool_status, ()),
    "plan.create": (RunRecorder._on_plan, ()),
    "plan.update": (RunRecorder._on_plan, ()),
    "source.snapshot": (RunRecorder._on_source, ()),
    "usage": (RunRecorder._on_usage, ()),
    "run.start": (RunRecorder._on_run_start, ()),
    "run.complete": (RunRecorder._on_terminal, ()),
    "run.cancel": (RunRecorder._on_terminal, ()),
    "run.error": (RunRecorder._on_terminal, ()),
}


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("seq", "type", "timestamp")}


def _finished(messages: list[dict[str, Any]], blocks: Iterable[_Block]) -> list[dict[str, Any]]:
    """Messages as they stand now; a block still streaming is stored with its text so far."""
    open_blocks = {id(b.message): b for b in blocks if b.ended is None}
    out: list[dict[str, Any]] = []
    for message in messages:
        block = open_blocks.get(id(message))
        if block is None:
            out.append(message)
            continue
        text = "".join(block.parts)
        copy = dict(message)
        if block.kind == "reasoning":
            copy["reasoning_content"] = text_parts(text)
        elif block.kind == "content":
            copy["content"] = text_parts(text)
        else:
            call = dict(copy["tool_calls"][0])
            call["function"] = {**call["function"], "arguments": text}
            copy["tool_calls"] = [call]
        out.append(copy)
    return out


def _end_from_status(status: str) -> dict[str, Any]:
    status = status.lower().removeprefix("run.")
    if status in ("cancelled", "canceled", "cancel"):
        return {"type": "run.cancel"}
    if status in ("failed", "error"):
        return {
            "type": "run.error",
            "error": {"code": "run_failed", "message": "run failed", "retriable": False},
        }
    if status == "timeout":
        return {"type": "run.complete", "finishReason": "timeout"}
    return {"type": "run.complete", "finishReason": "end_turn"}
