"""Run endpoints: ``POST /api/ap/query`` (SSE), ``/submit``, ``/cancel``, ``GET /api/ap/stream``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from agentgw import appkeys, ids
from agentgw.engine.runs import Run
from agentgw.engine.stream import EventLog
from agentgw.errors import RequestError
from agentgw.http.envelope import ok, read_json_object
from agentgw.memory.store import chat_name, parse_chat_id

logger = logging.getLogger("agentgw.http")

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
MAX_QUERY_BYTES = 1 << 20
HEARTBEAT_S = 15.0
_ON_BUSY = ("reject", "enqueue", "interrupt")


def _opt_type(body: dict[str, Any], name: str, types: type | tuple[type, ...], label: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, types):
        raise RequestError(400, f"{name} must be {label}, got {type(value).__name__}")
    return value


def parse_query(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a query body (§11.1); raises RequestError naming the bad field."""
    message = body.get("message")
    if message is None:
        raise RequestError(400, "message is required")
    if not isinstance(message, str):
        raise RequestError(400, f"message must be a string, got {type(message).__name__}")
    if not message.strip():
        raise RequestError(400, "message must not be blank")
    _opt_type(body, "requestId", str, "a string")
    _opt_type(body, "agentKey", str, "a string")
    _opt_type(body, "chatId", str, "a UUID string")
    role = _opt_type(body, "role", str, "a string") or "user"
    if role not in ("user", "system", "assistant"):
        raise RequestError(400, f"role must be user, system or assistant, got {role!r}")
    refs = _opt_type(body, "references", list, "an array")
    for i, ref in enumerate(refs or []):
        if not isinstance(ref, dict):
            raise RequestError(400, f"references[{i}] must be an object")
    _opt_type(body, "params", dict, "an object")
    scene = _opt_type(body, "scene", dict, "an object")
    if scene is not None:
        for key in ("url", "title"):
            if scene.get(key) is not None and not isinstance(scene[key], str):
                raise RequestError(400, f"scene.{key} must be a string")
    _opt_type(body, "stream", bool, "a boolean")
    return {
        "requestId": body.get("requestId"),
        "chatId": body.get("chatId"),
        "agentKey": body.get("agentKey"),
        "role": role,
        "message": message,
        "references": refs,
        "params": body.get("params"),
        "scene": scene,
        "stream": body.get("stream"),
    }


def principal_of(request: web.Request) -> str | None:
    return request.get(appkeys.PRINCIPAL)


class ResponseSink:
    """An SSE response the emitting run task can write to synchronously (§4.1).

    :meth:`write_nowait` puts one already-framed burst on the socket with a single
    ``transport.write`` (HTTP/1.1 chunk framing added here), so a caught-up follower costs
    no task switch per event; the first burst goes out with the response's headers, in the
    same send. It declines — and the follower's own task takes over with :meth:`write`,
    which waits for the peer — when the peer is gone, while the socket's send buffer is
    above its high-water mark, and before the headers are out when they cannot be sent
    from here (a compressing middleware, another aiohttp). Bytes sent this way are not
    counted in aiohttp's access-log body size.
    """

    __slots__ = ("_chunked", "_high", "_open", "_request", "_resp", "_transport")

    def __init__(self, request: web.Request, resp: web.StreamResponse) -> None:
        self._request = request
        self._resp = resp
        self._transport = request.transport
        # What prepare() chose: HTTP/1.1 streams without a length are chunked, 1.0 ones are not.
        self._chunked = resp.headers.get("Transfer-Encoding", "").lower() == "chunked"
        self._high = self._transport.get_write_buffer_limits()[1] if self._transport is not None else 0
        # Direct writes only once aiohttp has sent the headers, never under a compressing middleware.
        self._open = False

    def write_nowait(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() > self._high:
            return False
        if not self._open:
            return self._open_with(data)
        transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)
        return True

    def _open_with(self, data: bytes) -> bool:
        """Send the prepared headers and ``data`` in one send, as aiohttp's own first write
        does (its ``StreamWriter._send_headers_with_payload``); ``False`` where that is not
        there or the headers are gone already."""
        writer = self._request.writer
        send = getattr(writer, "_send_headers_with_payload", None)
        if send is None or self._resp.compression or not getattr(writer, "_headers_buf", None):
            return False
        send(data, False)
        self._open = True
        return True

    async def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size() > self._high:
                await self._request.writer.drain()
        await self._resp.write(data)
        self._open = not self._resp.compression


class _SSEResponse(web.StreamResponse):
    # The headers wait for the first frames and go out in the same send (one syscall and
    # one wake-up of the client fewer per request). aiohttp's own ``web.Response`` opts in
    # the same way; without the attribute (another aiohttp), headers simply go out at once.
    _send_headers_immediately = False


def _headers_if_idle(request: web.Request, log: EventLog) -> None:
    """A run with nothing to send yet (one waiting for its chat) sends its headers alone."""
    if not log.frames:
        with contextlib.suppress(ConnectionResetError):  # the client already went away
            request.writer.send_headers()


async def write_sse(
    request: web.Request, log: EventLog, after: int = 0, *, opening: bool = False
) -> web.StreamResponse:
    """Prepare the SSE response once, then stream the run's events; heartbeats while idle.

    ``opening``: the run's task runs next and emits its first events at once (it does not
    wait for its chat), and the headers go out with them.
    """
    resp = _SSEResponse(status=200, headers=SSE_HEADERS)
    await resp.prepare(request)
    if not log.frames and not opening:
        # A run that has nothing to say yet (one waiting for its chat): its headers alone,
        # once the run's task has had its turn (it might have something after all).
        asyncio.get_running_loop().call_soon(_headers_if_idle, request, log)
    try:
        last = await log.pump(ResponseSink(request, resp), after, HEARTBEAT_S)
    except ConnectionResetError:
        # The client went away (a closed tab): the run goes on, a disconnect is not a cancel,
        # and nothing is wrong with the request, so nothing is logged as an error.
        logger.debug("client disconnected from %s", request.path)
        return resp
    except asyncio.CancelledError:
        logger.debug("client disconnected from %s (handler cancelled)", request.path)
        raise
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof(last)  # the terminal event and the end of the stream: one send
    return resp


async def handle_query(request: web.Request) -> web.StreamResponse:
    # The setup is its own coroutine, so the request body and what was parsed from it are
    # not held for the length of the stream.
    run = await _start_query(request)
    return await write_sse(request, run.log, opening=not run.queued)


async def _start_query(request: web.Request) -> Run:
    app = request.app
    body = await read_json_object(request, MAX_QUERY_BYTES)
    query = parse_query(body)
    snapshot = app[appkeys.CATALOG].snapshot()
    key = (query["agentKey"] or "").strip()
    if key in ("", "auto", "default"):
        if not snapshot.agents:
            raise RequestError(400, "no agent is loaded; check the agents folder and GET /api/ap/agents")
        key = sorted(snapshot.agents)[0]
    agent = snapshot.agents.get(key)
    if agent is None:
        status = snapshot.statuses.get(key)
        if status is not None and status.errors:
            raise RequestError(400, f"agent {key} failed to load: {'; '.join(status.errors)}")
        raise RequestError(400, f"unknown agent: {key}")
    on_busy = request.query.get("onBusy", "reject")
    if on_busy not in _ON_BUSY:
        raise RequestError(400, f"onBusy must be one of {', '.join(_ON_BUSY)}, got {on_busy!r}")
    store = app[appkeys.STORE]
    principal = principal_of(request)
    new_chat = False
    if query["chatId"]:
        chat_id = parse_chat_id(query["chatId"])
        if await store.exists(chat_id):
            owner = await store.owner_of(chat_id)
        else:
            # Not stored yet, but perhaps being made: its first run stores it when it opens.
            live = app[appkeys.RUNS].run_of_chat(chat_id)
            owner = live.state.owner if live is not None else None
            new_chat = True
        if owner is not None and principal is not None and owner != principal:
            raise RequestError(403, f"chat {chat_id} belongs to another user")
    else:
        chat_id = ids.uuid4()
        new_chat = True
    return await app[appkeys.RUNS].start_run(
        agent=agent,
        snapshot=snapshot,
        query=query,
        chat_id=chat_id,
        new_chat=new_chat,
        chat_name=chat_name(query["message"]),
        owner=principal,
        on_busy=on_busy,  # type: ignore[arg-type]
    )


async def handle_stream(request: web.Request) -> web.StreamResponse:
    """Resume a run's stream: replays what the client missed, then tails it (§10.1)."""
    run_id = request.query.get("runId", "").strip()
    if not run_id:
        raise RequestError(400, "missing query parameter: runId")
    run = request.app[appkeys.RUNS].get(run_id)
    if run is None:
        raise RequestError(404, f"run not found: {run_id}")
    if run.state.owner is not None and principal_of(request) != run.state.owner:
        raise RequestError(403, f"run {run_id} belongs to another user")
    after_raw = request.query.get("after") or request.headers.get("Last-Event-ID") or "0"
    try:
        after = int(after_raw)
    except ValueError as exc:
        raise RequestError(400, f"after / Last-Event-ID must be an integer seq, got {after_raw!r}") from exc
    return await write_sse(request, run.log, after)


async def handle_submit(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    for name in ("runId", "toolId"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise RequestError(400, f"{name} is required and must be a non-blank string")
    if "params" not in body or body["params"] is None:
        raise RequestError(400, "params is required (any JSON value but null)")
    result = request.app[appkeys.RUNS].submit(
        body["runId"].strip(), body["toolId"].strip(), body["params"], principal_of(request)
    )
    return ok(result.as_dict())


async def handle_cancel(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    run_id = body.get("runId")
    if not isinstance(run_id, str) or not run_id.strip():
        raise RequestError(400, "runId is required and must be a non-blank string")
    return ok(request.app[appkeys.RUNS].cancel(run_id.strip(), principal_of(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/ap/query", handle_query)
    app.router.add_get("/api/ap/stream", handle_stream)
    app.router.add_post("/api/ap/submit", handle_submit)
    app.router.add_post("/api/ap/cancel", handle_cancel)
