"""The one small interface every provider adapter implements.

The engine builds a :class:`ModelCall` (protocol-neutral: OpenAI-style messages and
tool schemas) and iterates :func:`agentgw.providers.stream_call`, which yields
:data:`ProviderEvent` values — one per upstream delta, as soon as it is parsed
(SPEC §4.1). Failures are raised as :class:`agentgw.errors.ProviderError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["OPENAI", "ANTHROPIC", "NEWAPI_OPENAI_COMPATIBLE"]
ToolChoice = Literal["none", "auto", "required"]


@dataclass(slots=True)
class ModelCall:
    """One streamed model request, independent of the wire protocol."""

    protocol: Protocol
    provider_key: str
    base_url: str
    api_key: str
    model_id: str
    # OpenAI chat-completions style messages: system/user/assistant(+tool_calls)/tool.
    # An assistant message may carry "reasoning_content" (echoed only when the model needs it)
    # and "_thinking_signature" (Anthropic thinking blocks).
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{"type":"function","function":{...}}]
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    top_p: float | None = None
    reasoning_enabled: bool = False
    reasoning_effort: str = "MEDIUM"  # LOW | MEDIUM | HIGH
    is_reasoner: bool = False
    new_api_path: str = "/v1/chat/completions"
    idle_timeout_s: float = 60.0  # max silence between chunks (budget.model.timeoutMs)
    connect_timeout_s: float = 10.0
    trace: str = ""  # run id / stage, for the interaction log
    stage: str = ""  # stage name (plain/react/plan/execute/summary), for the interaction log


# ---- events an adapter yields -------------------------------------------------------------


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ReasoningSignature:
    """Anthropic thinking signature (and OpenRouter reasoning_details signatures)."""

    signature: str


@dataclass(slots=True)
class ContentDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of one tool call, routed by ``index``.

    The first fragment of a call carries ``id`` and ``name``; later fragments may repeat them
    (some servers do) — it is still one call. ``arguments`` is the raw JSON fragment ("" allowed).
    """

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False


@dataclass(slots=True)
class Finish:
    """The model turn ended. ``reason`` normalised: stop | tool_calls | length | content_filter | other."""

    reason: str
    raw_reason: str | None = None


ProviderEvent = ReasoningDelta | ReasoningSignature | ContentDelta | ToolCallDelta | Usage | Finish
