"""The HTTP/1.1 client of provider streams: a body is handed over as it is received.

aiohttp's client (which serves everything else) passes a streamed body to a task through a
``StreamReader``: every provider chunk costs a buffer append, a future, a task wake-up and a
read call before the gateway sees it. Here the connection's protocol decodes the body in
``data_received`` and gives it to the stream's callback right there, so a provider delta is
parsed, turned into its event and written to the client in the callback that received it
(SPEC §4.1) — no task switch per delta.

Scope is what provider APIs need: ``POST`` with a body over ``http``/``https``; keep-alive
connections pooled per origin; chunked, ``Content-Length`` and close-delimited bodies;
``gzip``/``deflate`` bodies (adapters ask for ``identity``); a connect timeout. No proxies,
redirects or cookies: providers are called directly, and a redirect is reported as such.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from agentgw import __version__, eventloop

HEAD_LIMIT = 64 * 1024  # status line and headers
KEEPALIVE_S = 15.0  # an idle pooled connection is closed after this long
DRAIN_S = 2.0  # how long a released response may take to finish before its connection closes
READ_BUFFER = 32 * 1024  # the most one read takes in (see _Connection)
_USER_AGENT_LINE = f"User-Agent: agentgw/{__version__}\r\n"

OnData = Callable[[bytes], None]
OnEnd = Callable[[BaseException | None], None]
# Called with the response as soon as its head is in: the callbacks to stream its body to
# from there on (see Response.stream), or None to leave it to the caller of post().
StreamIf = Callable[["Response"], "tuple[OnData, OnEnd] | None"]


class WireError(Exception):
    """A transport failure of a provider call (mapped to a ProviderError by the caller)."""


class InvalidURL(WireError):
    pass


class ConnectError(WireError):
    """The connection could not be made (refused, DNS, TLS handshake…)."""


class ConnectTimeout(WireError):
    pass


class ClosedError(WireError):
    """The provider closed the connection before the response ended."""


class ProtocolError(WireError):
    """The provider's bytes are not a valid HTTP/1.1 response."""


# body framing modes
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


class Response:
    """One response. ``status`` and ``headers`` (lower-case names) are set once it is returned
    by :meth:`ProviderClient.post`; the body is then read with :meth:`read` (small bodies) or
    handed to a callback as it arrives with :meth:`stream`."""

    __slots__ = (
        "_buffer",
        "_buffered",
        "_conn",
        "_decoder",
        "_drain_timer",
        "_early",
        "_error",
        "_head",
        "_head_done",
        "_keep_alive",
        "_line",
        "_mode",
        "_on_data",
        "_on_end",
        "_on_fail",
        "_release_on_end",
        "_remaining",
        "_reusable",
        "_reused",
        "_waiter",
        "got_bytes",
        "headers",
        "reason",
        "status",
    )

    def __init__(self, conn: _Connection, *, reused: bool = False, wait_head: bool = True) -> None:
        self._conn = conn
        self._head = b""
        # What post() waits on; send() does not wait, so it has none (see _on_fail).
        self._head_done: asyncio.Future[None] | None = conn.loop.create_future() if wait_head else None
        self._mode = _HEAD
        self._remaining = 0
        self._line = b""  # an incomplete chunk-size or trailer line
        self._decoder: Any = None
        self._on_data: OnData | None = None
        self._on_end: OnEnd | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._reusable = False
        self._keep_alive = False
        self._release_on_end = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._early: StreamIf | None = None
        self._on_fail: OnEnd | None = None  # send(): told of a failure before the head is in
        self._reused = reused  # sent on a pooled connection
        self.got_bytes = False
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}

    # ---- what the consumer calls ------------------------------------------------------

    @property
    def done(self) -> bool:
        """The body ended (or failed)."""
        return self._mode == _DONE or self._error is not None

    @property
    def retriable(self) -> bool:
        """Nothing came on a pooled connection before it failed: the provider had closed it,
        nothing of the request was answered, and it may go once more on a new connection."""
        return self._reused and not self.got_bytes

    async def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (an error answer, a JSON reply)."""
        while self._buffered < limit and not self.done:
            self._waiter = self._conn.loop.create_future()
            await self._waiter
        if self._error is not None and not self._buffered:
            raise self._error
        data = b"".join(self._buffer)
        return data[:limit]

    def stream(self, on_data: OnData, on_end: OnEnd) -> None:
        """Hand the body to ``on_data`` from now on, as it is received; ``on_end(None)`` once it
        ended, ``on_end(error)`` if it failed. What arrived with the headers goes out first."""
        self._on_data, self._on_end = on_data, on_end
        if self._buffer:
            pending, self._buffer, self._buffered = self._buffer, [], 0
            for data in pending:
                if self._on_data is None:
                    return
                on_data(data)
        if self._on_data is not None and self.done:
            self._notify_end()

    def fail(self, exc: BaseException) -> None:
        """End the response with ``exc`` (an idle timeout) and close its connection."""
        self._fail(exc)

    def close(self) -> None:
        """Stop: no more callbacks, and the connection is closed (the provider sees us go)."""
        self._on_data = self._on_end = self._on_fail = self._early = None
        if not self.done:
            self._error = ClosedError("response closed by the client")
            self._mode = _DONE
        self._conn.close()

    def release(self) -> None:
        """Done with the response: its connection goes back to the pool once the body has
        ended (at once, or within ``DRAIN_S`` for the last bytes of one cut short)."""
        self._on_data = self._on_end = self._on_fail = self._early = None
        if self._error is not None:
            self._conn.close()
        elif self._mode == _DONE:
            self._conn.release(self._reusable)
        else:
            self._release_on_end = True
            self._drain_timer = self._conn.loop.call_later(DRAIN_S, self._conn.close)

    # ---- what the connection calls ----------------------------------------------------

    def received(self, data: bytes) -> None:
        self.got_bytes = True
        if self._mode == _HEAD:
            data = self._parse_head(data)
            if not data:
                return
        mode = self._mode
        if mode == _LENGTH:
            remaining = self._remaining
            if len(data) >= remaining:
                extra = len(data) > remaining
                self._deliver(data[:remaining] if extra else data)
                self._remaining = 0
                self._finish(reusable=not extra)
            else:
                self._remaining = remaining - len(data)
                self._deliver(data)
        elif mode == _UNTIL_CLOSE:
            self._deliver(data)
        elif mode != _DONE:
            self._chunked(data)
        else:
            self._reusable = False  # bytes after the end of the response: not to be trusted again

    def eof(self) -> None:
        if self._mode == _UNTIL_CLOSE:
            self._finish(reusable=False)
        elif self._mode != _DONE:
            self._fail(ClosedError("connection closed by the provider before the response ended"))

    def lost(self, exc: BaseException | None) -> None:
        if self._mode == _UNTIL_CLOSE and exc is None:
            self._finish(reusable=False)
        elif not self.done:
            reason = f": {exc}" if exc is not None else ""
            self._fail(ClosedError(f"connection closed by the provider before the response ended{reason}"))

    # ---- parsing ----------------------------------------------------------------------

    def _parse_head(self, data: bytes) -> bytes:
        head = self._head + data if self._head else data
        while True:
            end = head.find(b"\r\n\r\n")
            if end < 0:
                if len(head) > HEAD_LIMIT:
                    self._fail(ProtocolError(f"response head larger than {HEAD_LIMIT} bytes"))
                    return b""
                self._head = head
                return b""
            raw, head = head[:end], head[end + 4 :]
            if end > HEAD_LIMIT:
                self._fail(ProtocolError(f"response head larger than {HEAD_LIMIT} bytes"))
                return b""
            try:
                informational = self._apply_head(raw)
            except ProtocolError as exc:
                self._fail(exc)
                return b""
            if not informational:
                break
        self._head = b""
        eventloop.head_in(self._conn.loop, self._conn._fd)
        self._on_fail = None
        if self._head_done is not None and not self._head_done.done():
            self._head_done.set_result(None)
        early, self._early = self._early, None
        if early is not None:
            picked = early(self)
            if picked is not None:
                self._on_data, self._on_end = picked
                if self._mode == _DONE:  # a head without a body (204, Content-Length: 0)
                    self._notify_end()
        return head

    def _apply_head(self, raw: bytes) -> bool:
        """Parse one head; ``True`` for a 1xx response (another head follows)."""
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if (
            len(parts) < 2
            or not parts[0].startswith(b"HTTP/1.")
            or len(parts[1]) != 3
            or not parts[1].isdigit()
        ):
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:
            return True
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"malformed header line: {line[:80]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.status = status
        self.reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        self.headers = headers
        self._keep_alive = parts[0] == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("identity", ""):
            raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
        if status in (204, 304):
            self._finish(reusable=True)
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode = _CHUNK_SIZE
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
            if length < 0:
                raise ProtocolError(f"bad Content-Length {length}")
            self._remaining = length
            self._mode = _LENGTH
            if length == 0:
                self._finish(reusable=True)
        else:
            self._mode = _UNTIL_CLOSE
        return False

    def _chunked(self, data: bytes) -> None:
        """Decode chunked framing; the payload of all chunks in ``data`` is delivered at once
        (one read, one delivery: the frames of a read go out together, as one send)."""
        out: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size and self._mode != _DONE:
            mode = self._mode
            if mode == _CHUNK_DATA:
                take = min(self._remaining, size - pos)
                out.append(data[pos : pos + take] if take != size else data)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._mode = _CHUNK_END
                continue
            if mode == _CHUNK_END:
                # The CRLF after a chunk's data (it may arrive a byte at a time).
                need = b"\r\n"[len(self._line) :]
                got = data[pos : pos + len(need)]
                if need[: len(got)] != got:
                    self._flush(out)
                    self._fail(ProtocolError("chunk data not followed by CRLF"))
                    return
                pos += len(got)
                self._line += got
                if self._line == b"\r\n":
                    self._line = b""
                    self._mode = _CHUNK_SIZE
                continue
            # _CHUNK_SIZE or _TRAILER: a line
            end = data.find(b"\n", pos)
            if end < 0:
                self._line += data[pos:]
                if len(self._line) > 4096:
                    self._flush(out)
                    self._fail(ProtocolError("chunk-size line too long"))
                    return
                break
            line = (self._line + data[pos:end]) if self._line else data[pos:end]
            self._line = b""
            pos = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if mode == _TRAILER:
                if not line:
                    self._flush(out)
                    self._finish(reusable=pos == size)
                    return
                continue
            try:
                chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                chunk_size = -1
            if chunk_size < 0:
                self._flush(out)
                self._fail(ProtocolError(f"bad chunk size {line[:40]!r}"))
                return
            if chunk_size == 0:
                self._mode = _TRAILER
            else:
                self._remaining = chunk_size
                self._mode = _CHUNK_DATA
        self._flush(out)

    def _flush(self, out: list[bytes]) -> None:
        if out:
            self._deliver(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    # ---- delivery ---------------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._fail(ProtocolError(f"body does not decompress: {exc}"))
                return
            if not data:
                return
        on_data = self._on_data
        if on_data is not None:
            on_data(data)
        elif not self._release_on_end:
            self._buffer.append(data)
            self._buffered += len(data)
            self._wake()

    def _finish(self, reusable: bool) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            self._decoder = None
            if tail:
                self._deliver(tail)
        self._mode = _DONE
        self._reusable = reusable and self._keep_alive
        if self._head_done is not None and not self._head_done.done():
            self._head_done.set_result(None)
        self._wake()
        if self._release_on_end:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            self._conn.release(self._reusable)
        elif self._on_end is not None:
            self._notify_end()

    def _fail(self, exc: BaseException) -> None:
        if self._error is not None:
            return
        self._error = exc
        if self._head_done is not None and not self._head_done.done():
            self._head_done.set_exception(exc)
        self._wake()
        on_end = self._on_end or self._on_fail
        self._on_data = self._on_end = self._on_fail = None
        self._conn.close()
        if on_end is not None:
            on_end(exc)

    def _notify_end(self) -> None:
        on_end = self._on_end
        self._on_data = self._on_end = None
        if on_end is not None:
            on_end(self._error)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.BufferedProtocol):
    """One connection. Reads go into the client's shared buffer (``READ_BUFFER`` bytes): a
    read is handed on before the loop does anything else, so one buffer serves every
    connection, and no read is bigger than it — a provider far ahead of us is taken in
    pieces, with the loop's other work (other streams' deltas) between them. On the served
    gateway's loop its reads go before the callbacks already waiting (``agentgw.eventloop``)."""

    __slots__ = ("_fd", "client", "closed", "idle_since", "key", "loop", "response", "transport")

    def __init__(
        self, client: ProviderClient, key: tuple[str, str, int], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.client = client
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self._fd = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._fd = eventloop.mark_urgent(self.loop, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.client._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.client._read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:
            self.close()  # bytes nobody asked for: the connection is not to be trusted
            return
        try:
            resp.received(data)
        except Exception as exc:  # a consumer callback that failed: end the response with it
            resp.fail(exc)

    def eof_received(self) -> bool:
        if self.response is not None:
            self.response.eof()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        eventloop.unmark_urgent(self.loop, self._fd)  # the socket closes after this returns
        self._fd = -1
        self.closed = True
        resp = self.response
        if resp is not None:
            resp.lost(exc)
        self.client._forget(self)

    def release(self, reusable: bool) -> None:
        self.response = None
        if reusable and not self.closed and self.transport is not None and not self.transport.is_closing():
            self.client._pool(self)
        else:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.client._forget(self)


class ProviderClient:
    """Keep-alive connections to providers, and the requests made on them."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._read_view = memoryview(bytearray(READ_BUFFER))  # see _Connection
        self.closed = False

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout_s: float,
        stream_if: StreamIf | None = None,
    ) -> Response:
        """Send the request; return once the response's status and headers are in.

        ``stream_if`` is called from the connection's read callback the moment the head is
        in; the callbacks it returns get the body from that same callback on, as with
        :meth:`Response.stream`, without waiting for the caller's task to resume.
        """
        key, request = self._request(url, headers, body)
        for attempt in (1, 2):
            resp = await self._start(key, request, connect_timeout_s, wait_head=True)
            resp._early = stream_if
            assert resp._head_done is not None
            try:
                await resp._head_done
            except ClosedError:
                if resp.retriable and attempt == 1:
                    continue
                raise
            except BaseException:
                resp._conn.close()
                raise
            return resp
        raise AssertionError("unreachable")

    async def send(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout_s: float,
        on_head: StreamIf,
        on_fail: OnEnd,
    ) -> Response:
        """Send the request and return at once, without waiting for the answer.

        :meth:`post` without its wait (and the caller's task waking) for the head: the
        head goes to ``on_head`` from the read callback (as ``stream_if`` of :meth:`post`),
        and a failure before it to ``on_fail(error)``; if then :attr:`Response.retriable`,
        the request may be sent again. Waits only to connect, when no pooled connection is
        free. Set an idle timer: nothing here times out waiting for the head.
        """
        key, request = self._request(url, headers, body)
        resp = await self._start(key, request, connect_timeout_s, wait_head=False)
        resp._early = on_head
        resp._on_fail = on_fail
        return resp

    def _request(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[tuple[str, str, int], bytes]:
        if self.closed:
            raise WireError("the provider client is closed")
        key, start = _origin(url)
        return key, _request_bytes(start, headers, body)

    async def _start(
        self, key: tuple[str, str, int], request: bytes, connect_timeout_s: float, *, wait_head: bool
    ) -> Response:
        """Write ``request`` on a pooled or new connection; its response's callbacks are the
        caller's to set before it yields (nothing is read until then)."""
        conn, reused = self._take(key)
        if conn is None:
            conn = await self._connect(key, connect_timeout_s)
        resp = Response(conn, reused=reused, wait_head=wait_head)
        conn.response = resp
        assert conn.transport is not None
        conn.transport.write(request)
        eventloop.expect_head(conn.loop, conn._fd)  # its first read goes before the streams'
        return resp

    def _take(self, key: tuple[str, str, int]) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > KEEPALIVE_S:
                conn.close()
                continue
            return conn, True
        return None, False

    async def _connect(self, key: tuple[str, str, int], timeout_s: float) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(timeout_s):
                _transport, conn = await loop.create_connection(
                    lambda: _Connection(self, key, loop),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connect timed out after {timeout_s:g}s") from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._open.add(conn)
        return conn

    def _pool(self, conn: _Connection) -> None:
        if self.closed:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        if self._sweep_handle is None:
            self._sweep_handle = conn.loop.call_later(KEEPALIVE_S, self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for ``KEEPALIVE_S`` (one timer for the whole pool)."""
        self._sweep_handle = None
        now = time.monotonic()
        oldest: float | None = None
        for conn in [c for idle in self._idle.values() for c in idle]:
            if now - conn.idle_since >= KEEPALIVE_S:
                conn.close()
            elif oldest is None or conn.idle_since < oldest:
                oldest = conn.idle_since
        if oldest is not None:
            loop = asyncio.get_running_loop()
            self._sweep_handle = loop.call_later(oldest + KEEPALIVE_S - now, self._sweep)

    def _forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)


@functools.lru_cache(maxsize=256)
def _origin(url: str) -> tuple[tuple[str, str, int], str]:
    """``((scheme, host, port), request line and Host header)`` of a provider URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURL(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidURL(f"bad port in {url!r}") from exc
    host = parts.hostname
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in target for c in " \r\n"):
        raise InvalidURL(f"the path of {url!r} has a space or a line break")
    shown = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        shown = f"{shown}:{parts.port}"
    return (scheme, host, port), f"POST {target} HTTP/1.1\r\nHost: {shown}\r\n"


_SKIPPED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _request_bytes(start: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [start, f"Content-Length: {len(body)}\r\n"]
    agent = True
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _SKIPPED:
            continue
        if lowered == "user-agent":
            agent = False
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise InvalidURL(f"header {name!r} has a line break or a colon in its name or value")
        lines.append(f"{name}: {value}\r\n")
    if agent:
        lines.append(_USER_AGENT_LINE)
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1") + body
    except UnicodeEncodeError as exc:
        raise InvalidURL(f"a request header is not latin-1 text: {exc}") from None
