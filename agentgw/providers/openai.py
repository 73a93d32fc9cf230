"""OpenAI chat-completions streaming (``OPENAI`` and ``NEWAPI_OPENAI_COMPATIBLE``).

Request shape: SPEC §11.6. Reasoning knobs by provider family (decided from the base-url
host and the model id):

- DashScope / Qwen: ``enable_thinking: true|false`` (not sent to ``isReasoner`` models,
  which always think and may reject ``false``);
- Zhipu / Z.AI GLM: ``thinking: {"type": "enabled"|"disabled"}``;
- DeepSeek: nothing (reasoning is chosen by the model id, the API has no knob);
- everyone else: ``reasoning_effort: low|medium|high``, only when reasoning is enabled.

``isReasoner`` models are never sent ``temperature`` / ``top_p`` (reasoning models reject
or ignore them); on OpenAI's own API they get ``max_completion_tokens`` instead of
``max_tokens``, which o-series and gpt-5 models require.

Stream forms understood: ``delta.content``; ``delta.reasoning_content`` (DeepSeek, Qwen,
GLM); ``delta.reasoning`` and ``delta.reasoning_details`` (OpenRouter, Groq; the text is
taken once, signatures from the details); indexed ``delta.tool_calls`` with fragmented
arguments, parallel or interleaved, including servers that repeat id and name in every
fragment; usage from the ``choices: []`` chunk or the last choice chunk; error objects
inside a 200 stream (OpenRouter ``"error"``, Groq ``event: error``).
"""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

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

_EFFORTS = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
_DONE = b"[DONE]"
_ERROR_EVENT = b"error"


# ---- request ----------------------------------------------------------------------------


def chat_url(call: ModelCall) -> str:
    """base-url + ``/chat/completions`` when it ends in a version, else + ``/v1/chat/completions``.

    ``NEWAPI_OPENAI_COMPATIBLE`` appends ``new-api-path`` instead.
    """
    return _chat_url(call.base_url, call.protocol, call.new_api_path)


@functools.lru_cache(maxsize=256)
def _chat_url(base_url: str, protocol: str, new_api_path: str) -> str:
    base, versioned = versioned_base(base_url)
    if protocol == "NEWAPI_OPENAI_COMPATIBLE":
        return base + "/" + new_api_path.lstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if versioned else "/v1/chat/completions")


@functools.lru_cache(maxsize=256)
def _host(base_url: str) -> str:
    return (urlsplit(base_url).hostname or "").lower()


def provider_family(call: ModelCall) -> str:
    """``qwen`` | ``glm`` | ``deepseek`` | ``openai`` — decides the reasoning knob."""
    return _family(call.base_url, call.model_id)


@functools.lru_cache(maxsize=256)
def _family(base_url: str, model_id: str) -> str:
    host = _host(base_url)
    model = model_id.lower().rsplit("/", 1)[-1]
    if "dashscope" in host or model.startswith(("qwen", "qwq")):
        return "qwen"
    if host.endswith(("bigmodel.cn", "z.ai")) or model.startswith("glm"):
        return "glm"
    if "deepseek" in host or model.startswith("deepseek"):
        return "deepseek"
    return "openai"


def _tool_call(tc: dict[str, Any]) -> dict[str, Any]:
    fn = tc.get("function") or {}
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        args = orjson.dumps(args).decode()
    return {"id": tc.get("id"), "type": "function", "function": {"name": fn.get("name"), "arguments": args}}


def convert_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Engine messages → wire messages: internal ``_`` keys stripped, contents as strings."""
    out: list[dict[str, Any]] = []
    for message in messages:
        msg = {k: v for k, v in message.items() if not k.startswith("_")}
        msg["content"] = message_text(msg.get("content"))
        role = msg.get("role")
        if role == "assistant":
            if msg.get("tool_calls"):
                msg["tool_calls"] = [_tool_call(tc) for tc in msg["tool_calls"]]
            else:
                msg.pop("tool_calls", None)
            if not msg.get("reasoning_content"):
                msg.pop("reasoning_content", None)
        elif role == "tool":
            msg.setdefault("tool_call_id", "")
            msg.setdefault("name", "")
        out.append(msg)
    return out


def build_request(call: ModelCall) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(url, headers, body)`` of the streamed chat-completions request."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        # Compressed SSE is buffered by the compressor; ask for the bytes as they are made.
        "Accept-Encoding": "identity",
    }
    if call.api_key:
        headers["Authorization"] = f"Bearer {call.api_key}"
    family = provider_family(call)
    host = _host(call.base_url)
    body: dict[str, Any] = {
        "model": call.model_id,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": convert_messages(call.messages),
    }
    if call.is_reasoner and family == "openai" and "openai" in host:
        body["max_completion_tokens"] = call.max_tokens
    else:
        body["max_tokens"] = call.max_tokens
    if not call.is_reasoner:
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.top_p is not None:
            body["top_p"] = call.top_p
    if call.tools and call.tool_choice != "none":
        body["tools"] = call.tools
        if call.tool_choice is not None:
            body["tool_choice"] = call.tool_choice
        if call.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = call.parallel_tool_calls
    if family == "qwen":
        if not call.is_reasoner:
            body["enable_thinking"] = call.reasoning_enabled
    elif family == "glm":
        body["thinking"] = {"type": "enabled" if call.reasoning_enabled else "disabled"}
    elif family == "openai" and call.reasoning_enabled:
        body["reasoning_effort"] = _EFFORTS.get(call.reasoning_effort.upper(), "medium")
    return chat_url(call), headers, body


# ---- stream -----------------------------------------------------------------------------


def usage_from(u: dict[str, Any]) -> Usage:
    """OpenAI-style usage: prompt/completion tokens, cached and reasoning details, DeepSeek cache hits."""
    prompt_details = u.get("prompt_tokens_details") or {}
    completion_details = u.get("completion_tokens_details") or {}
    cached = as_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    return Usage(
        input_tokens=as_int(u.get("prompt_tokens")),
        output_tokens=as_int(u.get("completion_tokens")),
        reasoning_tokens=as_int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0,
        cached_tokens=cached or as_int(u.get("prompt_cache_hit_tokens")),
    )


class OpenAIFrames:
    """Frame handler of one chat-completions stream (see :class:`~agentgw.providers.stream.FrameHandler`)."""

    __slots__ = ("_call", "_ids", "_next_index", "_slots", "done", "finish", "state", "usage")

    def __init__(self, call: ModelCall) -> None:
        self._call = call
        self.state = StreamState()
        self.done = False
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        # upstream tool index → our 0-based index, and the id seen for it
        self._slots: dict[int, int] = {}
        self._ids: dict[int, str | None] = {}
        self._next_index = 0

    def frame(self, event: bytes | None, data: bytes) -> list[ProviderEvent]:
        if self.done:
            return []
        if data == _DONE:
            self.done = True
            return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if event == _ERROR_EVENT:  # an error event whose data is plain text
                raise errors.stream_error(
                    self._call, self.state, data.decode("utf-8", "replace"), data
                ) from exc
            raise errors.malformed_chunk(self._call, data, f"invalid JSON: {exc}") from exc
        if type(obj) is not dict:
            raise errors.malformed_chunk(self._call, data, "not a JSON object")
        if event == _ERROR_EVENT or obj.get("error"):
            raise errors.stream_error(self._call, self.state, obj, data)
        out: list[ProviderEvent] = []
        usage = obj.get("usage")
        choices = obj.get("choices")
        if choices:
            for choice in choices:
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if len(delta) == 1 and type(content) is str:
                        if content:  # the common shape, a bare content delta
                            out.append(ContentDelta(content))
                    else:
                        self._delta(delta, out)
                reason = choice.get("finish_reason")
                if reason:
                    self.finish = reason
                if not usage:
                    usage = choice.get("usage")
        if usage:
            self.usage = usage
        return out

    def _delta(self, delta: dict[str, Any], out: list[ProviderEvent]) -> None:
        text = delta.get("reasoning_content") or delta.get("reasoning")
        if text and type(text) is str:
            out.append(ReasoningDelta(text))
        else:
            text = None
        details = delta.get("reasoning_details")
        if details:
            for detail in details:
                if not isinstance(detail, dict):
                    continue
                if text is None:
                    piece = detail.get("text") or detail.get("summary")
                    if piece and type(piece) is str:
                        out.append(ReasoningDelta(piece))
                signature = detail.get("signature")
                if signature:
                    out.append(ReasoningSignature(signature))
        content = delta.get("content")
        if content:
            if type(content) is str:
                out.append(ContentDelta(content))
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "text" and part.get("text"):
                        out.append(ContentDelta(part["text"]))
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for position, tc in enumerate(tool_calls):
                self._tool(position, tc, out)

    def _tool(self, position: int, tc: dict[str, Any], out: list[ProviderEvent]) -> None:
        upstream = tc.get("index")
        if type(upstream) is not int:
            upstream = position
        fn = tc.get("function") or {}
        args = fn.get("arguments") or ""
        if type(args) is not str:
            args = orjson.dumps(args).decode()
        call_id = tc.get("id")
        slot = self._slots.get(upstream)
        known_id = self._ids.get(upstream)
        # A different id under a known index is a new call (some servers reuse index 0);
        # the same id repeated (llama.cpp) is the same call.
        if slot is None or (call_id and known_id and call_id != known_id):
            slot = self._next_index
            self._next_index += 1
            self._slots[upstream] = slot
            self._ids[upstream] = call_id
            out.append(ToolCallDelta(slot, call_id, fn.get("name"), args))
        elif args:
            out.append(ToolCallDelta(slot, None, None, args))

    def end(self) -> list[ProviderEvent]:
        if self.finish is None and not self.done:
            raise errors.early_close(self._call, self.state, "a finish_reason or [DONE]")
        out: list[ProviderEvent] = []
        if self.usage:
            out.append(usage_from(self.usage))
        out.append(normalise_finish(self.finish, self._next_index > 0))
        return out


def stream_openai(
    client: ProviderClient, call: ModelCall, on_batch: OnBatch, log: InteractionLog | None = None
) -> Coroutine[Any, Any, None]:
    """Stream one chat-completions call into ``on_batch``; see :func:`agentgw.providers.stream_into`."""
    url, headers, body = build_request(call)
    return run_stream(client, call, url, headers, body, OpenAIFrames(call), log, on_batch)
