"""Provider adapters: one streaming call per model turn, whatever the wire protocol.

The engine builds a :class:`~agentgw.providers.base.ModelCall` and awaits
:func:`stream_into`, which hands it the events grouped by the chunk that brought them;
:func:`stream_call` gives the same events one by one as an async iterator. Contract of the
event sequence:

- one event per upstream delta, handed on the moment its frame is parsed (no merging, no
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

Cancel the awaiting task, or close the iterator (``contextlib.aclosing``), when you stop
early; either closes the provider connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

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
from agentgw.providers.stream import OnBatch
from agentgw.providers.wire import ProviderClient

__all__ = [
    "ContentDelta",
    "Finish",
    "InteractionLog",
    "ModelCall",
    "ProviderClient",
    "ProviderEvent",
    "ReasoningDelta",
    "ReasoningSignature",
    "ToolCallDelta",
    "Usage",
    "stream_call",
    "stream_into",
]


def stream_into(
    client: ProviderClient, call: ModelCall, on_batch: OnBatch, *, log: InteractionLog | None = None
) -> Coroutine[Any, Any, None]:
    """Stream one model call into ``on_batch`` (the engine's form); dispatches on ``call.protocol``.

    ``on_batch`` gets the events of each received chunk, in order, synchronously from the
    read callback that received it (see :func:`agentgw.providers.stream.run_stream`); the
    coroutine returns when the stream is over. Raises
    :class:`~agentgw.errors.ProviderError` (``provider_config_error``) at once for a call
    that cannot be made.
    """
    if not call.base_url:
        raise errors.config_error(call, "the provider has no base-url")
    if call.protocol == "ANTHROPIC":
        return stream_anthropic(client, call, on_batch, log)
    if call.protocol in ("OPENAI", "NEWAPI_OPENAI_COMPATIBLE"):
        return stream_openai(client, call, on_batch, log)
    raise errors.config_error(call, f"unsupported protocol {call.protocol!r}")


def stream_call(
    client: ProviderClient, call: ModelCall, *, log: InteractionLog | None = None
) -> AsyncGenerator[ProviderEvent, None]:
    """:func:`stream_into` as an async iterator of single events (tools, tests).

    The stream runs in a task of its own; closing the iterator cancels it, which closes the
    provider connection. Raises ``provider_config_error`` at once, as :func:`stream_into`.
    """
    queue: asyncio.Queue[list[ProviderEvent] | None] = asyncio.Queue()
    return _drain(stream_into(client, call, queue.put_nowait, log=log), queue)


async def _drain(
    stream: Coroutine[Any, Any, None], queue: asyncio.Queue[list[ProviderEvent] | None]
) -> AsyncGenerator[ProviderEvent, None]:
    task = asyncio.ensure_future(stream)
    task.add_done_callback(lambda _task: queue.put_nowait(None))  # after every batch it gave
    try:
        while (batch := await queue.get()) is not None:
            for event in batch:
                yield event
        task.result()  # the stream's error, after the events that came before it
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
