"""The streaming driver shared by the protocol adapters.

An adapter supplies the request (URL, headers, JSON body) and a *frame handler* that turns
one SSE frame into provider events; :func:`run_stream` does the rest, identically for every
protocol: POST, status and content-type checks, reading the body as it arrives, frame
splitting, handing each chunk's events on the moment they are parsed (SPEC §4.1), the
interaction log, failure mapping and closing the response.

Cancelling the task that awaits :func:`run_stream` closes the provider connection, so a
cancelled run stops being billed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from agentgw.errors import ProviderError
from agentgw.providers import errors
from agentgw.providers.base import Finish, ModelCall, ProviderEvent
from agentgw.providers.errors import StreamState, map_provider_errors
from agentgw.providers.log import CallLog, InteractionLog
from agentgw.providers.sse import SSEFrame, SSEParser
from agentgw.providers.wire import ClosedError, OnData, OnEnd, ProviderClient, Response

ERROR_BODY_LIMIT = 64 * 1024
SLICE_FRAMES = 64  # the frames of one read handed on (and sent) together, at most
JSON_BODY_LIMIT = 1024 * 1024
_VERSIONED = re.compile(r"/v\d+$")

_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "sensitive": "content_filter",
}


def normalise_finish(raw: str | None, saw_tool_call: bool) -> Finish:
    """Map a vendor finish/stop reason to stop | tool_calls | length | content_filter | other.

    ``raw=None`` (a stream that ended cleanly without naming a reason) reads as
    ``tool_calls`` when tool calls were streamed, else ``stop``.
    """
    if raw is None:
        return Finish("tool_calls" if saw_tool_call else "stop", None)
    return Finish(_FINISH.get(raw, "other"), raw)


def versioned_base(base_url: str) -> tuple[str, bool]:
    """``(base without trailing '/', whether it already ends in a /v<N> version segment)``.

    SPEC §11.6 names ``/v1``; any ``/v<N>`` is treated alike so bases such as Zhipu's
    ``…/api/paas/v4`` or Volcengine's ``…/api/v3`` work without a NEWAPI path.
    """
    base = base_url.rstrip("/")
    return base, bool(_VERSIONED.search(base))


def message_text(content: Any) -> str:
    """Message contents go out as strings; text parts of a list are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return orjson.dumps(content).decode()


def as_int(value: Any) -> int:
    """Token counts arrive as int, null or (rarely) float; anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


class FrameHandler(Protocol):
    """Protocol-specific part of a stream: one instance per call."""

    state: StreamState
    done: bool

    def frame(self, event: bytes | None, data: bytes) -> list[ProviderEvent]:
        """Events of one SSE frame; raises ProviderError for error frames and bad JSON."""
        ...

    def end(self) -> list[ProviderEvent]:
        """Events once the body ended (usage, finish); raises ``provider_early_close`` if incomplete."""
        ...


async def _check_response(call: ModelCall, handler: FrameHandler, resp: Response) -> None:
    if resp.status >= 400:
        raise errors.http_error(call, resp.status, await resp.read(ERROR_BODY_LIMIT))
    if resp.status >= 300:
        raise errors.redirect_error(call, resp.status, resp.headers.get("location", ""))
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        # A 200 JSON answer to a stream request: either an error object or a provider that
        # ignored ``stream: true``. Neither can be streamed; say which.
        body = await resp.read(JSON_BODY_LIMIT)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("error"):
            raise errors.stream_error(call, handler.state, parsed, body)
        raise errors.malformed_chunk(call, body, f"expected text/event-stream, got {ctype}")


# Handlers read chunks assuming the documented shapes; valid JSON of another shape (a list
# where an object belongs…) surfaces as one of these and is reported as a malformed chunk.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def _shape_error(call: ModelCall, data: bytes, exc: Exception) -> ProviderError:
    return errors.malformed_chunk(call, data, f"unexpected shape: {type(exc).__name__}: {exc}")


def _frame_events(
    call: ModelCall, handler: FrameHandler, event_name: bytes | None, data: bytes
) -> list[ProviderEvent]:
    try:
        return handler.frame(event_name, data)
    except _SHAPE_ERRORS as exc:
        raise _shape_error(call, data, exc) from exc


class _IdleWatchdog:
    """Fails the response with TimeoutError after ``idle_s`` without a chunk.

    One timer per stream, re-armed only when it fires early; a chunk just stamps ``last``.
    """

    __slots__ = ("handle", "idle_s", "last", "loop", "resp")

    def __init__(self, idle_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.idle_s = idle_s
        self.resp: Response | None = None
        self.last = 0.0
        self.handle: asyncio.TimerHandle | None = None

    def start(self, resp: Response) -> None:
        """Watch ``resp`` from now on (its request is sent: the head is waited for too)."""
        self.resp = resp
        self.last = self.loop.time()
        self.handle = self.loop.call_at(self.last + self.idle_s, self._check)

    def _check(self) -> None:
        due = self.last + self.idle_s
        if self.loop.time() < due:
            self.handle = self.loop.call_at(due, self._check)
            return
        if self.resp is not None:
            self.resp.fail(TimeoutError(f"no data for {self.idle_s:g}s"))

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


OnBatch = Callable[[list[ProviderEvent]], None]


async def run_stream(
    client: ProviderClient,
    call: ModelCall,
    url: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    handler: FrameHandler,
    log: InteractionLog | None,
    on_batch: OnBatch,
) -> None:
    """POST ``body`` to ``url`` and give the handler's events to ``on_batch`` as they arrive.

    ``on_batch`` gets one list per received chunk — the events of every frame the chunk
    completed, in order, never empty — and is called synchronously from the connection's
    read callback: nothing waits for a later chunk or for a task switch. The last call
    holds the events of the end (usage, finish). Returns when the stream is over; raises
    :class:`ProviderError` (or what ``on_batch`` raised). Cancelling the caller closes the
    connection, so a cancelled run stops being billed.
    """
    state = handler.state
    clog = log.open(call, url, headers, body) if log is not None else None
    resp: Response | None = None
    completed = False
    watchdog = _IdleWatchdog(call.idle_timeout_s)  # from the request on: the head, then every read
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    # Set once, from the read callbacks: the stream ended (None), failed (the error), or its
    # head is in and it is not a stream (_NOT_STREAMED: an error answer, a JSON reply).
    over: asyncio.Future[object] = loop.create_future()
    sse = SSEParser()
    feed = sse.feed
    frame = handler.frame
    loop_time = loop.time

    def stop(exc: BaseException | None) -> None:
        if not over.done():
            if exc is None:
                over.set_result(None)
            else:
                over.set_exception(exc)

    def on_data(chunk: bytes) -> None:
        # In the connection's data_received: parse, and hand the events on at once.
        if over.done() or task.cancelling():
            return  # the run is stopping: nothing more goes out
        watchdog.last = loop_time()
        try:
            frames = feed(chunk)
            if len(frames) == 1 and clog is None:
                # The common case, one frame per read, without the general path's calls.
                event_name, data = frames[0]
                try:
                    batch = frame(event_name, data)
                except _SHAPE_ERRORS as exc:
                    raise _shape_error(call, data, exc) from exc
                if batch:
                    state.emitted = True
                    on_batch(batch)
            else:
                # A big read (a provider far ahead of us) goes on in slices, so its
                # first delta does not wait for the parsing of all the rest.
                for start in range(0, len(frames), SLICE_FRAMES):
                    batch, failure = _batch(call, handler, frames[start : start + SLICE_FRAMES], clog)
                    if batch:
                        on_batch(batch)
                    if failure is not None:
                        raise failure
            if handler.done:
                stop(None)
        except Exception as exc:  # a bad frame, or the consumer's own failure
            if resp is not None:
                resp.close()
            stop(exc)

    def on_end(exc: BaseException | None) -> None:
        if exc is None and not over.done():
            try:
                batch, failure = _batch(call, handler, sse.flush(), clog)
                if batch:
                    on_batch(batch)
                if failure is not None:
                    raise failure
            except Exception as err:
                exc = err
        stop(exc)

    def on_head(response: Response) -> tuple[OnData, OnEnd] | None:
        # The head is in (the read callback): a stream goes on from here, the events of the
        # bytes that came with the head included, while this task sleeps on. Anything
        # else wakes it, for _check_response to read and report.
        watchdog.last = loop_time()
        if response.status >= 300 or response.headers.get("content-type", "").startswith("application/json"):
            if not over.done():
                over.set_result(_NOT_STREAMED)
            return None
        return on_data, on_end

    try:
        with map_provider_errors(call, state):
            payload = orjson.dumps(body)
            del body  # sent: the request is not held for the length of the stream
            for attempt in (1, 2):
                resp = await client.send(
                    url,
                    headers,
                    payload,
                    connect_timeout_s=call.connect_timeout_s,
                    on_head=on_head,
                    on_fail=stop,
                )
                watchdog.start(resp)  # the head, too, comes within the idle timeout
                try:
                    outcome = await over
                except ClosedError:
                    # A pooled connection the provider had closed: nothing of this request
                    # was answered, so it goes once more on a new connection.
                    if attempt == 1 and resp.retriable:
                        watchdog.cancel()
                        resp.close()
                        over = loop.create_future()
                        continue
                    raise
                break
            del payload, headers
            if outcome is _NOT_STREAMED:
                assert resp is not None
                await _check_response(call, handler, resp)  # raises: this is no stream
                over = loop.create_future()
                resp.stream(on_data, on_end)
                await over
            batch = handler.end()
            if clog is not None:
                for event in batch:
                    clog.event(event)
            on_batch(batch)
            completed = True
    except ProviderError as exc:
        if clog is not None:
            clog.error(exc)
        raise
    except asyncio.CancelledError as exc:
        if clog is not None:
            clog.closed(type(exc).__name__)
        raise
    finally:
        watchdog.cancel()
        if resp is not None:
            if completed:
                resp.release()
            else:
                # Not drained: close the connection rather than pool it, so the provider
                # sees the client go away and stops generating.
                resp.close()


_NOT_STREAMED = object()


def _batch(
    call: ModelCall, handler: FrameHandler, frames: list[SSEFrame], clog: CallLog | None
) -> tuple[list[ProviderEvent], ProviderError | None]:
    """The events of the frames of one chunk, and the error of a frame that failed.

    The events parsed before a failing frame still go out (they arrived first); the
    frames after it are not read.
    """
    state = handler.state
    failure: ProviderError | None = None
    if len(frames) == 1:
        event_name, data = frames[0]
        batch = _frame_events(call, handler, event_name, data)
    else:
        batch = []
        try:
            for event_name, data in frames:
                events = _frame_events(call, handler, event_name, data)
                if events:
                    # Set before the next frame is read: an error after a delta is not retried.
                    state.emitted = True
                    batch.extend(events)
        except ProviderError as exc:
            failure = exc
    if batch:
        state.emitted = True
        if clog is not None:
            for event in batch:
                clog.event(event)
    return batch, failure
