"""The one place vendor failures become :class:`agentgw.errors.ProviderError`.

Adapters wrap their whole call in :func:`map_provider_errors` (transport failures:
connect, timeout, disconnect) and call the small constructors below for what they
detect in the protocol itself (HTTP status, error chunks, malformed JSON, early close).
Codes, as they appear in ``run.error``:

=========================  =====================================================  =========
code                       cause                                                  retriable
=========================  =====================================================  =========
provider_connect_error     refused / unreachable / connect timeout / bad URL      yes
provider_http_error        HTTP status ≥ 400 (body excerpt kept)                  429, 408, 5xx
provider_timeout           no byte within ``idle_timeout_s``                      before a delta
provider_early_close       stream ended before a finish / ``[DONE]`` / stop       before a delta
provider_stream_error      an error reported inside a 200 stream                  overload, before a delta
provider_malformed_chunk   a chunk that is not the JSON the protocol promises     no
provider_config_error      the call cannot be made (no base-url, bad protocol)    no
=========================  =====================================================  =========

"Before a delta": once anything reached the client a retry would repeat it (SPEC §4.3).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from agentgw.errors import ProviderError
from agentgw.providers import wire
from agentgw.providers.base import ModelCall

EXCERPT_CHARS = 500
_WS = re.compile(r"\s+")
_RETRIABLE_STREAM_TYPES = frozenset({"overloaded_error", "rate_limit_error", "api_error", "server_error"})


class StreamState:
    """What an adapter has done so far; decides whether a failure may be retried."""

    __slots__ = ("emitted",)

    def __init__(self) -> None:
        self.emitted = False


def excerpt(raw: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line view of a body or chunk for error messages."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _error_message(payload: Any) -> tuple[str, str, Any]:
    """``(message, type, code)`` from the error objects OpenAI, Anthropic, Groq and OpenRouter send."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or ""
        return str(message), str(err.get("type") or ""), err.get("code") or err.get("status_code")
    if isinstance(err, str):
        return err, "", None
    return "", "", None


def _error(
    call: ModelCall,
    code: str,
    message: str,
    *,
    status: int | None = None,
    body: str = "",
    retriable: bool = False,
) -> ProviderError:
    key = call.api_key
    if key and len(key) >= 6:
        # Some providers echo the key (or part of it) in error bodies; the message goes to
        # the client in run.error and to the log, so the key never rides along.
        message, body = message.replace(key, "***"), body.replace(key, "***")
    return ProviderError(
        code,
        message,
        provider=call.provider_key,
        model=call.model_id,
        status=status,
        body=body,
        retriable=retriable,
    )


def config_error(call: ModelCall, message: str) -> ProviderError:
    """The call cannot be made at all (no base-url, unknown protocol)."""
    return _error(call, "provider_config_error", message)


def http_error(call: ModelCall, status: int, body: bytes) -> ProviderError:
    """An HTTP status ≥ 400; JSON error bodies (also those answering a stream request) are read."""
    message = ""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is not None:
        message, _, _ = _error_message(parsed)
    text = excerpt(orjson.dumps(parsed) if parsed is not None else body)
    retriable = status in (408, 429) or status >= 500
    return _error(
        call,
        "provider_http_error",
        message or "provider answered with an HTTP error",
        status=status,
        body=text,
        retriable=retriable,
    )


def redirect_error(call: ModelCall, status: int, location: str) -> ProviderError:
    """A 3xx answer: provider calls do not follow redirects (a POST must not be replayed
    somewhere else unseen); the message says where the provider points."""
    where = location or "(no Location header)"
    return _error(
        call,
        "provider_http_error",
        f"the provider redirected (HTTP {status}) to {where}; set the provider's base-url to the final URL",
        status=status,
        retriable=False,
    )


def stream_error(call: ModelCall, state: StreamState, payload: Any, raw: bytes) -> ProviderError:
    """An error object inside an HTTP 200 stream (OpenRouter chunk, Groq/Anthropic ``event: error``)."""
    message, kind, code = _error_message(payload)
    retriable = not state.emitted and (
        kind in _RETRIABLE_STREAM_TYPES or (isinstance(code, int) and (code == 429 or code >= 500))
    )
    label = " ".join(str(p) for p in (kind, code) if p)
    text = message or "error event in the stream"
    return _error(
        call,
        "provider_stream_error",
        f"provider reported an error mid-stream ({label}): {text}" if label else text,
        body=excerpt(raw),
        retriable=retriable,
    )


def malformed_chunk(call: ModelCall, raw: bytes, reason: str) -> ProviderError:
    """A chunk that is not the JSON the protocol promises; names an excerpt of it."""
    return _error(
        call,
        "provider_malformed_chunk",
        f"malformed stream chunk ({reason})",
        body=excerpt(raw, 200),
    )


def early_close(call: ModelCall, state: StreamState, what: str) -> ProviderError:
    """The body ended cleanly but before the protocol's end marker (``what``)."""
    return _error(
        call,
        "provider_early_close",
        f"stream closed before {what}",
        retriable=not state.emitted,
    )


def transport_error(call: ModelCall, state: StreamState, exc: BaseException) -> ProviderError | None:
    """The :class:`ProviderError` a transport exception stands for; ``None`` to let it pass.

    Cancellation passes: it is the consumer stopping, not the provider failing. The
    transport is :mod:`agentgw.providers.wire`; ``TimeoutError`` is the stream's idle
    watchdog.
    """
    if isinstance(exc, ProviderError) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, wire.ConnectTimeout):
        return _error(
            call,
            "provider_connect_error",
            f"connect timed out after {call.connect_timeout_s:g}s",
            retriable=True,
        )
    if isinstance(exc, wire.ConnectError):
        return _error(call, "provider_connect_error", str(exc), retriable=True)
    if isinstance(exc, wire.InvalidURL):
        return _error(call, "provider_connect_error", f"invalid provider URL: {exc}", retriable=False)
    if isinstance(exc, TimeoutError):
        return _error(
            call,
            "provider_timeout",
            f"no data from the provider for {call.idle_timeout_s:g}s",
            retriable=not state.emitted,
        )
    if isinstance(exc, wire.ClosedError | ConnectionResetError):
        return _error(
            call,
            "provider_early_close",
            f"connection closed by the provider mid-stream: {exc}",
            retriable=not state.emitted,
        )
    if isinstance(exc, wire.WireError | OSError):
        # Anything else the transport raises is a failure before or during the exchange.
        return _error(
            call,
            "provider_connect_error",
            f"transport error: {type(exc).__name__}: {exc}",
            retriable=not state.emitted,
        )
    return None


def map_provider_errors(call: ModelCall, state: StreamState) -> _TransportErrors:
    """``with map_provider_errors(call, state):`` turns transport exceptions into :class:`ProviderError`."""
    return _TransportErrors(call, state)


class _TransportErrors:
    """The context manager of :func:`map_provider_errors` (a class, not a generator: a
    stream holds it for its whole life, and this way no suspended generator comes with it)."""

    __slots__ = ("call", "state")

    def __init__(self, call: ModelCall, state: StreamState) -> None:
        self.call = call
        self.state = state

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            error = transport_error(self.call, self.state, exc)
            if error is not None:
                raise error from exc
