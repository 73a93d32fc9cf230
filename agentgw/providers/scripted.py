"""The scripted provider: a real HTTP server speaking the OpenAI and Anthropic stream formats.

It is both the tests' fake LLM and the ``demo`` provider ``make run`` uses without a key.
Tests queue *scripts* — lists of steps — and the server answers each incoming request
with the next one (FIFO), rendered in the wire format of the path that was called:

- ``POST …/chat/completions`` (and any other path): OpenAI chat-completions SSE;
- ``POST …/messages``: Anthropic Messages SSE.

With no script queued it falls back to the demo responder (:mod:`agentgw.providers.demo`),
which decides from the request what a plausible model would do.

::

    server = ScriptedProvider()
    await server.start()                      # 127.0.0.1, ephemeral port
    server.enqueue([Reasoning("Let me see", chunks=3), Text("Hi there", chunks=2), Usage(12, 5)])
    ... point a ModelCall at server.base_url (ends in /v1) ...
    server.assert_complete()                  # every queued script was used
    await server.stop()

``server.requests`` records what the gateway sent; ``server.client_closed`` is set (and
``connections_closed_by_client`` counted) when a client goes away mid-response — what a
cancel test waits for.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "Call",
    "Close",
    "Delay",
    "Finish",
    "Hang",
    "HttpError",
    "MalformedChunk",
    "MidStreamError",
    "ParallelToolCalls",
    "Reasoning",
    "RecordedRequest",
    "Replay",
    "Script",
    "ScriptedProvider",
    "Signal",
    "Step",
    "Text",
    "ToolCall",
    "Usage",
    "WaitFor",
]

Wire = Literal["openai", "anthropic"]


# ---- steps ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Reasoning text, split into ``chunks`` deltas (or sent as the given pieces)."""

    text: str | Sequence[str]
    chunks: int = 1
    signature: str | None = None  # Anthropic thinking signature (one is made up when None)


@dataclass(frozen=True, slots=True)
class Text:
    """Answer text, split into ``chunks`` deltas (or sent as the given pieces)."""

    text: str | Sequence[str]
    chunks: int = 1


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call; its JSON arguments are sent in ``fragments`` pieces after the opening delta."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    fragments: int = 1


@dataclass(frozen=True, slots=True)
class ParallelToolCalls:
    """Several calls in one turn; OpenAI fragments are interleaved round-robin when ``interleave``."""

    calls: Sequence[ToolCall]
    interleave: bool = True


@dataclass(frozen=True, slots=True)
class Usage:
    input: int
    output: int
    reasoning: int = 0
    cached: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """End the turn: ``stop`` | ``tool_calls`` | ``length`` | ``content_filter`` (mapped per wire)."""

    reason: str = "stop"


@dataclass(frozen=True, slots=True)
class HttpError:
    """Answer with this status and body instead of a stream (must come before any delta)."""

    status: int
    body: Any = None  # dict/list → JSON; str/bytes as is; None → a typical error object


@dataclass(frozen=True, slots=True)
class MidStreamError:
    """An error reported inside the 200 stream (OpenRouter-style chunk / Anthropic ``event: error``)."""

    message: str = "upstream overloaded"
    code: int | str = 500


@dataclass(frozen=True, slots=True)
class MalformedChunk:
    raw: bytes = b'{"choices": [{"delta": {"content": "bro'


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float


@dataclass(frozen=True, slots=True)
class Hang:
    """Send nothing more but keep the connection open (until the client leaves or the server stops)."""


@dataclass(frozen=True, slots=True)
class Close:
    """End the response early: a clean end of body, or with ``abort`` a dropped connection."""

    abort: bool = False


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Pause until the test sets ``event`` (e.g. after the client received the previous delta)."""

    event: asyncio.Event


@dataclass(frozen=True, slots=True)
class Signal:
    """Set ``event`` when the script reaches this point (everything before it was written)."""

    event: asyncio.Event


@dataclass(frozen=True, slots=True)
class Call:
    """Run a test hook (sync or async) at this point of the script."""

    fn: Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Replay:
    """Send recorded bytes verbatim (fixture replay), optionally in writes of the given sizes."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    write_sizes: Sequence[int] = ()


Step = (
    Reasoning
    | Text
    | ToolCall
    | ParallelToolCalls
    | Usage
    | Finish
    | HttpError
    | MidStreamError
    | MalformedChunk
    | Delay
    | Hang
    | Close
    | WaitFor
    | Signal
    | Call
    | Replay
)


@dataclass(slots=True)
class Script:
    """The answer to one request; ``delay_s`` is slept after every delta (demo pacing)."""

    steps: list[Step]
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive, as HTTP headers are
    body: Any
    raw: bytes


def pieces(text: str | Sequence[str], chunks: int) -> list[str]:
    """``text`` cut into ``chunks`` near-equal non-empty pieces (a sequence is taken as given)."""
    if not isinstance(text, str):
        return list(text)
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _arguments(call: ToolCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return orjson.dumps(call.arguments).decode()


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


# ---- wire renderers ---------------------------------------------------------------------

_OPENAI_FINISH = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "length": "length",
    "content_filter": "content_filter",
}
_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


class _OpenAIRenderer:
    """Steps → chat.completion.chunk frames."""

    def __init__(self, model: str, steps: Sequence[Step]) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.model = model
        self.created = int(time.time())
        self.tools = 0
        self.finished = False
        self.started = False

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        obj = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return _sse(obj)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": None}])

    def start(self) -> list[bytes]:
        self.started = True
        return [self._delta({"role": "assistant", "content": ""})]

    def render(self, step: Step) -> list[bytes]:
        match step:
            case Reasoning(text=text, chunks=chunks):
                return [self._delta({"reasoning_content": p}) for p in pieces(text, chunks)]
            case Text(text=text, chunks=chunks):
                return [self._delta({"content": p}) for p in pieces(text, chunks)]
            case ToolCall():
                return self._tool_frames([step], interleave=False)
            case ParallelToolCalls(calls=calls, interleave=interleave):
                return self._tool_frames(list(calls), interleave)
            case Usage(input=inp, output=out, reasoning=reasoning, cached=cached):
                usage = {
                    "prompt_tokens": inp,
                    "completion_tokens": out,
                    "total_tokens": inp + out,
                    "prompt_tokens_details": {"cached_tokens": cached},
                    "completion_tokens_details": {"reasoning_tokens": reasoning},
                }
                return [self._chunk([], usage=usage)]
            case Finish(reason=reason):
                self.finished = True
                wire = _OPENAI_FINISH.get(reason, reason)
                return [self._chunk([{"index": 0, "delta": {}, "finish_reason": wire}])]
            case MidStreamError(message=message, code=code):
                return [self._chunk([], error={"code": code, "message": message})]
            case MalformedChunk(raw=raw):
                return [b"data: " + raw + b"\n\n"]
        return []

    def _tool_frames(self, calls: list[ToolCall], interleave: bool) -> list[bytes]:
        streams: list[list[bytes]] = []
        for call in calls:
            index = self.tools
            self.tools += 1
            call_id = call.id or "call_" + uuid.uuid4().hex[:24]
            opening = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames = [self._delta({"tool_calls": [opening]})]
            for fragment in pieces(_arguments(call), call.fragments):
                frames.append(
                    self._delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
                )
            streams.append(frames)
        if not interleave:
            return [f for frames in streams for f in frames]
        out: list[bytes] = []
        longest = max((len(s) for s in streams), default=0)
        for i in range(longest):
            out.extend(s[i] for s in streams if i < len(s))
        return out

    def end(self) -> list[bytes]:
        frames = [] if self.finished else self.render(Finish("tool_calls" if self.tools else "stop"))
        return [*frames, b"data: [DONE]\n\n"]


class _AnthropicRenderer:
    """Steps → Messages stream events (message_start … message_stop)."""

    def __init__(self, model: str, steps: Sequence[Step]) -> None:
        self.model = model
        self.block = 0
        self.tools = 0
        self.finished = False
        self.started = False
        usage = next((s for s in steps if isinstance(s, Usage)), None)
        self.usage = usage or Usage(0, 0)

    def start(self) -> list[bytes]:
        self.started = True
        u = self.usage
        message: dict[str, Any] = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": u.input - u.cached,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": u.cached,
                "output_tokens": 1,
            },
        }
        return [_sse({"type": "message_start", "message": message}, "message_start")]

    def _block(self, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
        index = self.block
        self.block += 1
        frames = [
            _sse(
                {"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"
            )
        ]
        for delta in deltas:
            frames.append(
                _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
            )
        frames.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        return frames

    def _tool(self, call: ToolCall) -> list[bytes]:
        self.tools += 1
        block = {
            "type": "tool_use",
            "id": call.id or "toolu_" + uuid.uuid4().hex[:24],
            "name": call.name,
            "input": {},
        }
        deltas = [{"type": "input_json_delta", "partial_json": ""}]
        deltas += [
            {"type": "input_json_delta", "partial_json": p} for p in pieces(_arguments(call), call.fragments)
        ]
        return self._block(block, deltas)

    def render(self, step: Step) -> list[bytes]:
        match step:
            case Reasoning(text=text, chunks=chunks, signature=signature):
                deltas: list[dict[str, Any]] = [
                    {"type": "thinking_delta", "thinking": p} for p in pieces(text, chunks)
                ]
                deltas.append(
                    {"type": "signature_delta", "signature": signature or "sig-" + uuid.uuid4().hex}
                )
                return self._block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
            case Text(text=text, chunks=chunks):
                return self._block(
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": p} for p in pieces(text, chunks)],
                )
            case ToolCall():
                return self._tool(step)
            case ParallelToolCalls(calls=calls):
                return [f for call in calls for f in self._tool(call)]
            case Finish(reason=reason):
                self.finished = True
                delta = {
                    "type": "message_delta",
                    "delta": {"stop_reason": _ANTHROPIC_STOP.get(reason, reason), "stop_sequence": None},
                    "usage": {"output_tokens": self.usage.output},
                }
                return [_sse(delta, "message_delta"), _sse({"type": "message_stop"}, "message_stop")]
            case MidStreamError(message=message):
                error = {"type": "error", "error": {"type": "overloaded_error", "message": message}}
                return [_sse(error, "error")]
            case MalformedChunk(raw=raw):
                return [b"event: content_block_delta\ndata: " + raw + b"\n\n"]
        return []  # Usage rides on message_start / message_delta

    def end(self) -> list[bytes]:
        return [] if self.finished else self.render(Finish("tool_calls" if self.tools else "stop"))


# ---- the server -------------------------------------------------------------------------


class ScriptedProvider:
    """A loopback LLM provider driven by scripts, with the demo responder as fallback."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        demo_delay_s: float = 0.025,
        slow_delay_s: float = 0.1,
    ) -> None:
        self.host = host
        self.port = port
        self.demo_delay_s = demo_delay_s
        self.slow_delay_s = slow_delay_s
        self.requests: list[RecordedRequest] = []
        self.connections_closed_by_client = 0
        self.demo_responses = 0
        self._queue: deque[Script] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None

    # -- lifecycle --

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels its handler, which is how
        # the server notices a cancelled stream even while it is idle (Hang, WaitFor).
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` — use as a provider ``base-url``."""
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting --

    def enqueue(self, script: Script | Sequence[Step], *, delay_s: float = 0.0) -> None:
        """Queue the answer to one future request (FIFO)."""
        self._queue.append(script if isinstance(script, Script) else Script(list(script), delay_s))

    @property
    def pending(self) -> int:
        """Scripts queued and not yet requested."""
        return len(self._queue)

    def assert_complete(self) -> None:
        """Fail when queued scripts were never requested."""
        if self._queue:
            raise AssertionError(f"{len(self._queue)} scripted response(s) were never requested")

    @property
    def client_closed(self) -> asyncio.Event:
        """Set when a client closed its connection before its response ended."""
        if self._closed is None:
            raise RuntimeError("ScriptedProvider.start() was not awaited")
        return self._closed

    def _note_client_closed(self) -> None:
        self.connections_closed_by_client += 1
        if self._closed is not None:
            self._closed.set()

    # -- serving --

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(
            RecordedRequest(request.method, request.path, CIMultiDict(request.headers), body, raw)
        )
        if not isinstance(body, dict):
            return web.json_response({"error": {"message": "request body must be a JSON object"}}, status=400)
        wire: Wire = "anthropic" if request.path.rstrip("/").endswith("/messages") else "openai"
        if self._queue:
            script = self._queue.popleft()
        else:
            from agentgw.providers.demo import respond  # the demo is only loaded when used

            self.demo_responses += 1
            script = respond(body, wire, delay_s=self.demo_delay_s, slow_delay_s=self.slow_delay_s)
        state = _Response(request)
        try:
            return await self._play(request, state, script, wire, str(body.get("model") or "scripted"))
        except asyncio.CancelledError:
            if self._stopping is not None and not self._stopping.is_set():
                self._note_client_closed()
            raise
        except ConnectionResetError:
            self._note_client_closed()
            return state.resp or web.Response(status=499)

    async def _play(
        self, request: web.Request, state: _Response, script: Script, wire: Wire, model: str
    ) -> web.StreamResponse:
        renderer = (
            _AnthropicRenderer(model, script.steps)
            if wire == "anthropic"
            else _OpenAIRenderer(model, script.steps)
        )
        delay = script.delay_s
        for step in script.steps:
            match step:
                case HttpError(status=status, body=err_body):
                    if state.resp is not None:
                        raise RuntimeError("HttpError must come before any streamed step")
                    return _error_response(status, err_body, wire)
                case Replay():
                    return await _replay(request, step)
                case Delay(seconds=seconds):
                    await asyncio.sleep(seconds)
                case WaitFor(event=event):
                    await event.wait()
                case Signal(event=event):
                    event.set()
                case Call(fn=fn):
                    result = fn()
                    if result is not None:
                        await result
                case Hang():
                    await state.ensure(renderer)
                    assert self._stopping is not None
                    await self._stopping.wait()
                    return state.ensure_resp()
                case Close(abort=abort):
                    await state.ensure(renderer)
                    if abort and request.transport is not None:
                        request.transport.abort()
                    else:
                        await state.ensure_resp().write_eof()
                    return state.ensure_resp()
                case _:
                    await state.ensure(renderer)
                    for frame in renderer.render(step):
                        await state.write(frame)
                        if delay:
                            await asyncio.sleep(delay)
        await state.ensure(renderer)
        *frames, last = renderer.end() or [b""]
        for frame in frames:
            await state.write(frame)
        resp = state.ensure_resp()
        # The last frame goes out with the end of the body, so a client that stops reading
        # at [DONE] / message_stop never races the server's final write.
        await resp.write_eof(last)
        return resp


class _Response:
    """The streamed response of one request, prepared lazily at the first frame."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.resp: web.StreamResponse | None = None

    async def ensure(self, renderer: _OpenAIRenderer | _AnthropicRenderer) -> None:
        if self.resp is None:
            self.resp = web.StreamResponse(
                status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await self.resp.prepare(self.request)
        if not renderer.started:
            for frame in renderer.start():
                await self.resp.write(frame)

    def ensure_resp(self) -> web.StreamResponse:
        assert self.resp is not None
        return self.resp

    async def write(self, frame: bytes) -> None:
        assert self.resp is not None
        await self.resp.write(frame)


def _error_response(status: int, body: Any, wire: Wire) -> web.Response:
    if body is None:
        if wire == "anthropic":
            body = {"type": "error", "error": {"type": "api_error", "message": f"scripted HTTP {status}"}}
        else:
            body = {"error": {"message": f"scripted HTTP {status}", "type": "server_error", "code": status}}
    if isinstance(body, dict | list):
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    data = body.encode() if isinstance(body, str) else bytes(body)
    return web.Response(status=status, body=data, content_type="text/plain")


async def _replay(request: web.Request, step: Replay) -> web.StreamResponse:
    ctype = step.content_type
    resp = web.StreamResponse(status=step.status, headers={"Content-Type": ctype})
    await resp.prepare(request)
    body = step.body
    if not step.write_sizes:
        await resp.write(body)
    else:
        pos, i = 0, 0
        while pos < len(body):
            size = max(1, step.write_sizes[i % len(step.write_sizes)])
            await resp.write(body[pos : pos + size])
            # Yield so each write leaves as its own segment instead of coalescing in a buffer.
            await asyncio.sleep(0)
            pos += size
            i += 1
    await resp.write_eof()
    return resp
