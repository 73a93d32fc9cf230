"""Anthropic Messages streaming (``ANTHROPIC``).

Request mapping from the engine's OpenAI-style messages:

- ``system`` messages → the top-level ``system`` string (joined by a blank line);
- assistant ``tool_calls`` → ``tool_use`` blocks (arguments parsed to an object);
  assistant ``reasoning_content`` + ``_thinking_signature`` → a leading ``thinking`` block,
  which Anthropic requires back on tool-use turns while thinking is on (only sent then);
- ``tool`` messages → ``tool_result`` blocks in one user message (consecutive results and
  a following user text are merged into that message, as the API wants them together);
- tools → ``{name, description, input_schema}``; tool_choice none/auto/required →
  ``{"type": "none"|"auto"|"any"}``; ``parallel_tool_calls: false`` →
  ``disable_parallel_tool_use``;
- reasoning on → ``thinking: {type: enabled, budget_tokens}`` (LOW 1024, MEDIUM 4096,
  HIGH 16384) with ``max_tokens`` raised above the budget and no ``temperature``/``top_p``
  (both are rejected with thinking). Thinking is not sent on a forced-tool turn
  (``tool_choice`` required), a combination the API refuses.

Usage: ``input_tokens`` reported here is the whole prompt (``input_tokens`` plus cache
reads and cache writes, as OpenAI counts it); ``cached_tokens`` is the cache reads.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import orjson

from agentgw.providers import errors
from agentgw.providers.base import (
    ContentDelta,
    ModelCall,
    ProviderEvent,
    ReasoningDelta,
    ReasoningSignature,
    ToolCallDelta,
    Usage,
)
from agentgw.providers.errors import StreamState
from agentgw.providers.log import InteractionLog
from agentgw.providers.stream import (
    OnBatch,
    as_int,
    message_text,
    normalise_finish,
    run_stream,
    versioned_base,
)
from agentgw.providers.wire import ProviderClient

ANTHROPIC_VERSION = "2023-06-01"
THINKING_BUDGETS = {"LOW": 1024, "MEDIUM": 4096, "HIGH": 16384}
_CHOICES = {"none": "none", "auto": "auto", "required": "any"}


# ---- request ----------------------------------------------------------------------------


def messages_url(call: ModelCall) -> str:
    """base-url + ``/v1/messages``, or + ``/messages`` when the base already ends in a version."""
    base, versioned = versioned_base(call.base_url)
    if base.endswith("/messages"):
        return base
    return base + ("/messages" if versioned else "/v1/messages")


def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments.strip():
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            # The model produced invalid JSON earlier; keep the text so nothing is lost.
            return {"_raw_arguments": arguments}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {}


def _assistant_blocks(msg: dict[str, Any], thinking: bool) -> list[dict[str, Any]] | str | None:
    blocks: list[dict[str, Any]] = []
    signature = msg.get("_thinking_signature")
    reasoning = msg.get("reasoning_content")
    if thinking and signature and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": signature})
    text = message_text(msg.get("content"))
    tool_calls = msg.get("tool_calls") or []
    if not blocks and not tool_calls:
        return text or None
    if text:
        blocks.append({"type": "text", "text": text})
    for tc in tool_calls:
        fn = tc.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": tc.get("id") or "",
                "name": fn.get("name") or "",
                "input": _tool_input(fn.get("arguments")),
            }
        )
    return blocks


def convert_messages(
    messages: list[dict[str, Any]], thinking: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """``(system, messages)`` in Anthropic form (see the module docstring).

    Signed thinking blocks are echoed only when this request has thinking on; without it
    the API has no use for them.
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def user_blocks() -> list[dict[str, Any]]:
        # The open user turn as a block list, so tool results and text can share it.
        if out and out[-1]["role"] == "user":
            last = out[-1]
            if isinstance(last["content"], str):
                last["content"] = [{"type": "text", "text": last["content"]}] if last["content"] else []
            blocks: list[dict[str, Any]] = last["content"]
            return blocks
        out.append({"role": "user", "content": []})
        fresh: list[dict[str, Any]] = out[-1]["content"]
        return fresh

    for msg in messages:
        role = msg.get("role")
        if role == "system":
            text = message_text(msg.get("content"))
            if text:
                system.append(text)
        elif role == "tool":
            user_blocks().append(
                {
                    "type": "tool_result",
                    "tool_use_id": msg.get("tool_call_id") or "",
                    "content": message_text(msg.get("content")),
                }
            )
        elif role == "assistant":
            content = _assistant_blocks(msg, thinking)
            if content is not None:  # an empty assistant turn is rejected by the API
                out.append({"role": "assistant", "content": content})
        else:
            text = message_text(msg.get("content"))
            if out and out[-1]["role"] == "user":
                if text:
                    user_blocks().append({"type": "text", "text": text})
            else:
                out.append({"role": "user", "content": text})
    return "\n\n".join(system), out


def convert_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        fn = tool.get("function", tool)
        out.append(
            {
                "name": fn.get("name", ""),
                "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return out


def build_request(call: ModelCall) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(url, headers, body)`` of the streamed Messages request."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    if call.api_key:
        headers["x-api-key"] = call.api_key
    thinking = call.reasoning_enabled and call.tool_choice != "required"
    system, messages = convert_messages(call.messages, thinking)
    body: dict[str, Any] = {"model": call.model_id, "max_tokens": call.max_tokens, "stream": True}
    if system:
        body["system"] = system
    body["messages"] = messages
    if not thinking and not call.is_reasoner:
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.top_p is not None:
            body["top_p"] = call.top_p
    if call.tools:
        body["tools"] = convert_tools(call.tools)
        choice: dict[str, Any] = {"type": _CHOICES.get(call.tool_choice or "auto", "auto")}
        if call.parallel_tool_calls is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = choice
    if thinking:
        budget = THINKING_BUDGETS.get(call.reasoning_effort.upper(), THINKING_BUDGETS["MEDIUM"])
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if call.max_tokens <= budget:
            body["max_tokens"] = budget + call.max_tokens
    return messages_url(call), headers, body


# ---- stream -----------------------------------------------------------------------------


class AnthropicFrames:
    """Frame handler of one Messages stream (see :class:`~agentgw.providers.stream.FrameHandler`)."""

    __slots__ = ("_call", "_tools", "done", "finish", "state", "usage")

    def __init__(self, call: ModelCall) -> None:
        self._call = call
        self.state = StreamState()
        self.done = False
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self._tools: dict[Any, int] = {}  # content block index → our 0-based tool index

    def frame(self, event: bytes | None, data: bytes) -> list[ProviderEvent]:
        if self.done:
            return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise errors.malformed_chunk(self._call, data, f"invalid JSON: {exc}") from exc
        if type(obj) is not dict:
            raise errors.malformed_chunk(self._call, data, "not a JSON object")
        kind = obj.get("type")
        match kind:
            case "content_block_delta":
                return self._block_delta(obj, data)
            case "content_block_start":
                return self._block_start(obj)
            case "message_start":
                message = obj.get("message") or {}
                self._usage(message.get("usage"))
            case "message_delta":
                reason = (obj.get("delta") or {}).get("stop_reason")
                if reason:
                    self.finish = reason
                self._usage(obj.get("usage"))
            case "message_stop":
                self.done = True
            case "error":
                raise errors.stream_error(self._call, self.state, obj, data)
            case _:
                if event == b"error":
                    raise errors.stream_error(self._call, self.state, obj, data)
                # ping, content_block_stop and future event types carry nothing to emit.
        return []

    def _block_delta(self, obj: dict[str, Any], data: bytes) -> list[ProviderEvent]:
        delta = obj.get("delta")
        if type(delta) is not dict:
            raise errors.malformed_chunk(self._call, data, "content_block_delta without a delta")
        match delta.get("type"):
            case "text_delta":
                text = delta.get("text")
                return [ContentDelta(text)] if text else []
            case "thinking_delta":
                text = delta.get("thinking")
                return [ReasoningDelta(text)] if text else []
            case "input_json_delta":
                fragment = delta.get("partial_json")
                slot = self._tools.get(obj.get("index"))
                if not fragment or slot is None:
                    return []
                return [ToolCallDelta(slot, None, None, fragment)]
            case "signature_delta":
                signature = delta.get("signature")
                return [ReasoningSignature(signature)] if signature else []
        return []  # citations_delta and future kinds

    def _block_start(self, obj: dict[str, Any]) -> list[ProviderEvent]:
        block = obj.get("content_block") or {}
        match block.get("type"):
            case "tool_use":
                slot = len(self._tools)
                self._tools[obj.get("index")] = slot
                given = block.get("input")
                # Input normally streams as input_json_delta; a proxy may send it whole here.
                args = orjson.dumps(given).decode() if given else ""
                return [ToolCallDelta(slot, block.get("id"), block.get("name"), args)]
            case "text":
                text = block.get("text")
                return [ContentDelta(text)] if text else []
            case "thinking":
                text = block.get("thinking")
                return [ReasoningDelta(text)] if text else []
        return []

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key, value in usage.items():
                if value is not None:
                    self.usage[key] = value

    def end(self) -> list[ProviderEvent]:
        if not self.done:
            raise errors.early_close(self._call, self.state, "message_stop")
        out: list[ProviderEvent] = []
        u = self.usage
        if u:
            cache_read = as_int(u.get("cache_read_input_tokens"))
            out.append(
                Usage(
                    input_tokens=as_int(u.get("input_tokens"))
                    + cache_read
                    + as_int(u.get("cache_creation_input_tokens")),
                    output_tokens=as_int(u.get("output_tokens")),
                    cached_tokens=cache_read,
                )
            )
        out.append(normalise_finish(self.finish, bool(self._tools)))
        return out


def stream_anthropic(
    client: ProviderClient, call: ModelCall, on_batch: OnBatch, log: InteractionLog | None = None
) -> Coroutine[Any, Any, None]:
    """Stream one Messages call into ``on_batch``; see :func:`agentgw.providers.stream_into`."""
    url, headers, body = build_request(call)
    return run_stream(client, call, url, headers, body, AnthropicFrames(call), log, on_batch)
