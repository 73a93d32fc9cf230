"""Replay the last runs of a chat into the next run's model context (SPEC §7, §10.11).

Stored messages become OpenAI-style provider messages:

- the parts of one model response (one ``_msgId``) become one assistant message again —
  parallel tool calls stored one per message are merged back into ``tool_calls``;
- ``reasoning_content`` is never sent back (it stays in the file and the history);
- ``content[]`` parts are joined into strings;
- a tool call without its result (a cancelled run, an expired frontend tool) is dropped,
  and so is a result without its call: providers reject either.

Then the context is cut to the model's ``maxInputTokens`` minus a reserve for what the run
adds (system prompt, the new message, the answer): whole oldest runs go first, then the
oldest messages of the oldest run left; an assistant tool call always goes together with
its results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentgw.memory.format import parts_text
from agentgw.memory.store import StoredRun
from agentgw.usage import message_tokens

_Unit = list[dict[str, Any]]  # messages that are kept or dropped together


def _call(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    fn = raw.get("function")
    if not isinstance(fn, Mapping):
        fn = {}
    call_id = raw.get("id")
    if not isinstance(call_id, str) or not call_id:
        return None
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": str(fn.get("name") or ""), "arguments": str(fn.get("arguments") or "")},
    }


def run_messages(run: StoredRun) -> list[dict[str, Any]]:
    """One run's stored messages as provider messages (before pairing checks)."""
    stored = [m for step in run.steps for m in step.get("messages") or () if isinstance(m, Mapping)]
    out: list[dict[str, Any]] = []
    if run.query is not None and not any(m.get("role") == "user" for m in stored):
        # The user message lives in the query line only (older files, or a run that died early).
        query = run.query.get("query")
        if isinstance(query, Mapping) and query.get("message"):
            out.append({"role": "user", "content": str(query["message"])})
    group: object = None  # the _msgId of the assistant message at the end of ``out``
    for message in stored:
        role = message.get("role")
        if role == "assistant":
            text = parts_text(message.get("content")) if message.get("content") is not None else ""
            calls = [c for c in (_call(raw) for raw in message.get("tool_calls") or ()) if c is not None]
            if not text and not calls:
                continue  # reasoning only: never replayed
            msg_id = message.get("_msgId")
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and msg_id == group:
                last["content"] += text
                if calls:
                    last.setdefault("tool_calls", []).extend(calls)
                continue
            merged: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                merged["tool_calls"] = calls
            out.append(merged)
            group = msg_id
        elif role == "tool":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": str(message.get("tool_call_id") or ""),
                    "name": str(message.get("name") or ""),
                    "content": parts_text(message.get("content")),
                }
            )
            group = None
        elif role in ("user", "system"):
            out.append({"role": role, "content": parts_text(message.get("content"))})
            group = None
    return out


def _units(messages: list[dict[str, Any]]) -> list[_Unit]:
    """Group messages into units, keeping each tool call with its results, dropping orphans."""
    units: list[_Unit] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        if message["role"] == "tool":
            i += 1  # a result whose call is not right before it
            continue
        if message["role"] != "assistant" or not message.get("tool_calls"):
            units.append([message])
            i += 1
            continue
        j = i + 1
        results: list[dict[str, Any]] = []
        while j < len(messages) and messages[j]["role"] == "tool":
            results.append(messages[j])
            j += 1
        answered = {r["tool_call_id"] for r in results}
        calls = [c for c in message["tool_calls"] if c["id"] in answered]
        kept_ids = {c["id"] for c in calls}
        seen: set[str] = set()
        kept_results = []
        for result in results:
            if result["tool_call_id"] in kept_ids and result["tool_call_id"] not in seen:
                seen.add(result["tool_call_id"])
                kept_results.append(result)
        assistant = {k: v for k, v in message.items() if k != "tool_calls"}
        if calls:
            assistant["tool_calls"] = calls
            units.append([assistant, *kept_results])
        elif assistant["content"]:
            units.append([assistant])
        i = j
    return units


def _cost(unit: _Unit) -> int:
    return sum(message_tokens(m) for m in unit)


def default_reserve(model_max_input_tokens: int) -> int:
    """Tokens kept free for the system prompt, the new message and tools: a quarter."""
    return max(1, model_max_input_tokens // 4)


def build_context(
    runs: Sequence[StoredRun],
    model_max_input_tokens: int | None,
    *,
    reserve_tokens: int | None = None,
) -> list[dict[str, Any]]:
    """Provider messages replaying ``runs`` (oldest first), cut to the token budget.

    ``model_max_input_tokens`` ``None`` means no cut. The budget is that limit minus
    ``reserve_tokens`` (by default :func:`default_reserve`); the caller should pass what it
    adds itself when it knows it.
    """
    per_run = [_units(run_messages(run)) for run in runs]
    per_run = [units for units in per_run if units]
    if model_max_input_tokens is None:
        return [m for units in per_run for unit in units for m in unit]
    reserve = default_reserve(model_max_input_tokens) if reserve_tokens is None else max(0, reserve_tokens)
    budget = model_max_input_tokens - reserve
    costs = [[_cost(unit) for unit in units] for units in per_run]
    total = sum(sum(c) for c in costs)
    while total > budget and len(per_run) > 1:
        total -= sum(costs.pop(0))
        per_run.pop(0)
    if per_run:
        units, unit_costs = per_run[0], costs[0]
        while total > budget and units:
            total -= unit_costs.pop(0)
            units.pop(0)
    return [m for units in per_run for unit in units for m in unit]
