"""Provider adapters: one streaming call per model turn, whatever the wire protocol.

The engine builds a :class:`~agentgw.providers.base.ModelCall` and iterates
:func:`stream_batches` (the events grouped by the chunk that brought them);
:func:`stream_call` yields the same events one by one. Contract of the event sequence:

- one event per upstream delta, yielded the moment its frame is parsed (no merging, no
  buffering: SPEC §4.1); empty text deltas are dropped, whitespace-only ones kept;
- :class:`~agentgw.providers.base.ToolCallDelta` carries ``id``/``name`` on the first
  fragment of a call only (later fragments ``None``), with a 0-based index per call;
- then, once the stream ended cleanly: at most one
  :class:`~agentgw.providers.base.Usage` (absent when the provider sent none: the engine
  estimates), and exactly one :class:`~agentgw.providers.base.Finish`, always last.
  Both wait for the end because providers send usage — and sometimes an error — after the
  finish reason;
- any failure raises :class:`~agentgw.errors.ProviderError` (codes in
  :mod:`agentgw.providers.errors`); ``retriable`` is only ever true before a delta.

Close the generator when you stop early (``contextlib.aclosing``); that, or cancelling the
consuming task, closes the provider connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import aiohttp

from agentgw.providers import errors
from agentgw.providers.anthropic import stream_anthropic
from agentgw.providers.base import (
    ContentDelta,
    Finish,
    ModelCall,
    ProviderEvent,
    ReasoningDelta,
    ReasoningSignature,
    ToolCallDelta,
    Usage,
)
from agentgw.providers.log import InteractionLog
from agentgw.providers.openai import stream_openai

__all__ = [
    "ContentDelta",
    "Finish",
    "InteractionLog",
    "ModelCall",
    "ProviderEvent",
    "ReasoningDelta",
    "ReasoningSignature",
    "ToolCallDelta",
    "Usage",
    "stream_batches",
    "stream_call",
]


def stream_batches(
    session: aiohttp.ClientSession, call: ModelCall, *, log: InteractionLog | None = None
) -> AsyncGenerator[list[ProviderEvent], None]:
    """Stream one model call as lists of events, one list per received chunk (the engine's form).

    The events are those of :func:`stream_call`, in the same order and as soon; a list holds
    what one read from the provider completed, so the engine can send it in one write.
    Raises :class:`~agentgw.errors.ProviderError` (``provider_config_error``) at once for a
    call that cannot be made.
    """
    if not call.base_url:
        raise errors.config_error(call, "the provider has no base-url")
    if call.protocol == "ANTHROPIC":
        return stream_anthropic(session, call, log)
    if call.protocol in ("OPENAI", "NEWAPI_OPENAI_COMPATIBLE"):
        return stream_openai(session, call, log)
    raise errors.config_error(call, f"unsupported protocol {call.protocol!r}")


def stream_call(
    session: aiohttp.ClientSession, call: ModelCall, *, log: InteractionLog | None = None
) -> AsyncGenerator[ProviderEvent, None]:
    """Stream one model call, one event at a time; dispatches on ``call.protocol``.

    Raises :class:`~agentgw.errors.ProviderError` (``provider_config_error``) at once for a
    call that cannot be made. Closing it closes the provider connection.
    """
    return _events(stream_batches(session, call, log=log))


async def _events(
    batches: AsyncGenerator[list[ProviderEvent], None],
) -> AsyncGenerator[ProviderEvent, None]:
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for event in batch:
                yield event
