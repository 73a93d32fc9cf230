"""The provider HTTP client (agentgw.providers.wire) against raw loopback servers.

Each server here writes exact bytes, so framing, splits at every byte, keep-alive, stale
pooled connections, compression, bad responses and TLS are all exercised on real sockets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agentgw.providers import wire
from agentgw.providers.wire import ProviderClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A loopback TCP server running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def url(self, path: str = "/v1/chat/completions", scheme: str = "http") -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{scheme}://127.0.0.1:{port}{path}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return head + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def collect(client: ProviderClient, url: str) -> tuple[wire.Response, bytes, BaseException | None]:
    """POST, then stream the body through the callbacks; returns what arrived and how it ended."""
    resp = await client.post(url, {"Content-Type": "application/json"}, b"{}", connect_timeout_s=5)
    got: list[bytes] = []
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    resp.stream(got.append, lambda exc: ended.set_result(exc))
    error = await asyncio.wait_for(ended, 5)
    return resp, b"".join(got), error


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


async def test_chunked_body_split_at_every_byte(client: ProviderClient) -> None:
    payload = [b'data: {"a":1}\n\n', b'data: {"b":"\xe4\xb8\xad"}\n\n', b"data: [DONE]\n\n"]
    raw = SSE_HEAD + chunked(*payload)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        for i in range(len(raw)):  # one byte per write, each flushed
            writer.write(raw[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)

    async with RawServer(handler) as server:
        resp, body, error = await collect(client, server.url())
    assert error is None and resp.status == 200 and resp.headers["content-type"] == "text/event-stream"
    assert body == b"".join(payload)


async def test_the_chunks_of_one_read_are_delivered_together(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(chunked(b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"))  # one segment

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5)
        got: list[bytes] = []
        ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        resp.stream(got.append, ended.set_result)
        assert await asyncio.wait_for(ended, 5) is None
    assert got == [b"data: 1\n\ndata: 2\n\ndata: 3\n\n"]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_big_body_is_taken_in_reads_of_at_most_the_buffer(scheme: str, tmp_path: Path) -> None:
    # A provider far ahead of us (here ~1 MB in one write) is read a buffer at a time, so
    # the loop gets to other connections between the pieces; nothing is lost or reordered.
    frames = [b'data: {"n":%d,"pad":"%b"}\n\n' % (i, b"x" * 200) for i in range(4000)]
    body = b"".join(frames)
    server_ctx, client_ctx = _self_signed(tmp_path) if scheme == "https" else (None, None)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + chunked(body))  # one chunk, one write
        await writer.drain()

    async with RawServer(handler, ssl_context=server_ctx) as server:
        async with ProviderClient(ssl_context=client_ctx) as c:
            resp = await c.post(server.url(scheme=scheme), {}, b"{}", connect_timeout_s=5)
            got: list[bytes] = []
            ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
            resp.stream(got.append, ended.set_result)
            assert await asyncio.wait_for(ended, 5) is None
    assert b"".join(got) == body
    assert len(got) >= len(body) // wire.READ_BUFFER
    assert max(len(piece) for piece in got) <= wire.READ_BUFFER


async def test_stream_if_takes_the_body_from_the_read_callback_that_brought_the_head(
    client: ProviderClient,
) -> None:
    # The stream starts in the callback that parsed the head: what came with the head is
    # handed on before post() returns (no wake-up of the caller's task in between).
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        first = chunked(b"data: 1\n\n")[: -len(b"0\r\n\r\n")]  # no end of body yet
        writer.write(SSE_HEAD + first)  # head and first frame together
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(chunked(b"data: 2\n\n"))

    got: list[bytes] = []
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    seen: list[int] = []

    def stream_if(resp: wire.Response) -> tuple[wire.OnData, wire.OnEnd] | None:
        seen.append(resp.status)
        return got.append, ended.set_result

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5, stream_if=stream_if)
        assert seen == [200] and got == [b"data: 1\n\n"]
        assert await asyncio.wait_for(ended, 5) is None
        resp.release()
    assert got == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_stream_if_declining_leaves_the_body_to_read(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        body = b'{"error": {"message": "no"}}'
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        await writer.drain()

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5, stream_if=lambda r: None)
        assert resp.status == 429
        assert await resp.read(1000) == b'{"error": {"message": "no"}}'


async def test_request_bytes(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with RawServer(handler) as server:
        url = server.url("/v1/messages?beta=true")
        resp = await client.post(
            url, {"Authorization": "Bearer k", "X-Trace": "1"}, b'{"x":1}', connect_timeout_s=5
        )
        assert resp.status == 204 and resp.done
    request = server.requests[0]
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    port = url.split(":")[2].split("/")[0]
    assert lines[0] == "POST /v1/messages?beta=true HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines and "Content-Length: 7" in lines
    assert "Authorization: Bearer k" in lines and "X-Trace: 1" in lines
    assert any(line.startswith("User-Agent: agentgw/") for line in lines)
    assert body == b'{"x":1}'


async def test_content_length_and_close_delimited_bodies(client: ProviderClient) -> None:
    bodies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",  # no length: the body ends with the connection
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(bodies[server.connections - 1])
        await writer.drain()

    async with RawServer(handler) as server:
        _, first, error1 = await collect(client, server.url())
        _, second, error2 = await collect(client, server.url())
    assert (first, error1) == (b"hello world", None)
    assert (second, error2) == (b"until the end", None)


async def test_keep_alive_reuses_one_connection(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(SSE_HEAD + chunked(b"data: x\n\n"))
            await writer.drain()

    async with RawServer(handler) as server:
        for _ in range(3):
            resp, body, error = await collect(client, server.url())
            assert (body, error) == (b"data: x\n\n", None)
            resp.release()
    assert server.connections == 1 and len(server.requests) == 3


async def test_a_stale_pooled_connection_is_replaced_transparently(client: ProviderClient) -> None:
    """The provider drops an idle keep-alive connection just as the next request goes out on it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first_connection = server.connections == 1
        await server.read_request(reader)
        writer.write(SSE_HEAD + chunked(b"data: x\n\n"))
        await writer.drain()
        if first_connection:
            await server.read_request(reader)  # the reused connection's request: dropped unanswered

    async with RawServer(handler) as server:
        resp, _, _ = await collect(client, server.url())
        resp.release()
        resp, body, error = await collect(client, server.url())
    assert (body, error) == (b"data: x\n\n", None)
    assert server.connections == 2 and len(server.requests) == 3


async def _send(
    client: ProviderClient, url: str
) -> tuple[wire.Response, asyncio.Future[tuple[int, bytes, BaseException | None]]]:
    """send(): the head, the body and the end reach callbacks; the future gets what came."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[tuple[int, bytes, BaseException | None]] = loop.create_future()
    got: list[bytes] = []
    status = 0

    def on_end(exc: BaseException | None) -> None:
        if not outcome.done():
            outcome.set_result((status, b"".join(got), exc))

    def on_head(resp: wire.Response) -> tuple[wire.OnData, wire.OnEnd]:
        nonlocal status
        status = resp.status
        return got.append, on_end

    resp = await client.send(
        url, {"Content-Type": "application/json"}, b"{}", connect_timeout_s=5, on_head=on_head, on_fail=on_end
    )
    return resp, outcome


async def test_send_returns_before_the_answer_and_streams_from_the_read_callback(
    client: ProviderClient,
) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await release.wait()  # nothing is answered until send() has returned
        writer.write(SSE_HEAD + chunked(b"data: a\n\n", b"data: b\n\n"))
        await writer.drain()

    async with RawServer(handler) as server:
        resp, outcome = await _send(client, server.url())
        assert resp.status == 0 and not outcome.done()
        release.set()
        assert await asyncio.wait_for(outcome, 5) == (200, b"data: a\n\ndata: b\n\n", None)
        resp.release()


async def test_send_on_a_stale_pooled_connection_fails_retriably(client: ProviderClient) -> None:
    """send() does not retry by itself: it reports the failure, and that it may be retried."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + chunked(b"data: x\n\n"))
        await writer.drain()
        await server.read_request(reader)  # the pooled connection's next request: dropped

    async with RawServer(handler) as server:
        resp, _, _ = await collect(client, server.url())
        resp.release()
        stale, outcome = await _send(client, server.url())
        status, body, error = await asyncio.wait_for(outcome, 5)
        assert (status, body) == (0, b"")
        assert isinstance(error, wire.ClosedError) and stale.retriable
        fresh, outcome = await _send(client, server.url())
        status, body, error = await asyncio.wait_for(outcome, 5)
        assert (status, error) == (200, None) and not fresh.retriable
        fresh.release()


async def test_a_streamed_head_without_a_body_ends_the_stream(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as server:
        resp, outcome = await _send(client, server.url())
        assert await asyncio.wait_for(outcome, 5) == (200, b"", None)
        resp.release()


async def test_connection_close_is_not_pooled(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()  # keep the socket open: only the header says "close"

    async with RawServer(handler) as server:
        for _ in range(2):
            resp, body, _ = await collect(client, server.url())
            assert body == b"ok"
            resp.release()
    assert server.connections == 2


async def test_gzip_body_is_decoded(client: ProviderClient) -> None:
    packed = gzip.compress(b"data: compressed\n\n" * 50)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head + chunked(packed[:10], packed[10:]))

    async with RawServer(handler) as server:
        _, body, error = await collect(client, server.url())
    assert error is None and body == b"data: compressed\n\n" * 50


async def test_informational_response_is_skipped(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes")

    async with RawServer(handler) as server:
        resp, body, _ = await collect(client, server.url())
    assert resp.status == 200 and body == b"yes"


async def test_small_bodies_are_read_whole(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        body = b'{"error": {"message": "bad key"}}'
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(body))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(body)

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5)
        assert (resp.status, resp.reason) == (401, "Unauthorized")
        assert await resp.read(1000) == b'{"error": {"message": "bad key"}}'
        assert await resp.read(5) == b'{"err'


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SSH-2.0-OpenSSH_9\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "larger than"),
        (b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n", "unsupported Content-Encoding"),
    ],
)
async def test_bad_heads_are_protocol_errors(client: ProviderClient, reply: bytes, message: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(0.5)

    async with RawServer(handler) as server:
        with pytest.raises(wire.ProtocolError, match=message):
            await client.post(server.url(), {}, b"{}", connect_timeout_s=5)


async def test_bad_chunking_fails_after_what_came_before(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + b"9\r\ndata: ok\n\r\nzz\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)

    async with RawServer(handler) as server:
        _, body, error = await collect(client, server.url())
    assert body == b"data: ok\n"
    assert isinstance(error, wire.ProtocolError) and "bad chunk size" in str(error)


async def test_close_mid_body_is_a_closed_error(client: ProviderClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + b"20\r\ndata: only part")
        await writer.drain()

    async with RawServer(handler) as server:
        _, body, error = await collect(client, server.url())
    assert body == b"data: only part"
    assert isinstance(error, wire.ClosedError)


async def test_refused_and_invalid_urls(client: ProviderClient) -> None:
    async with RawServer(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url()
    with pytest.raises(wire.ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
        await client.post(url, {}, b"{}", connect_timeout_s=5)
    with pytest.raises(wire.InvalidURL, match="not an http"):
        await client.post("builtin:demo", {}, b"{}", connect_timeout_s=5)
    with pytest.raises(wire.InvalidURL, match="line break"):
        await client.post("http://127.0.0.1:9/x", {"X-Evil": "a\r\nHost: b"}, b"", connect_timeout_s=5)


async def test_released_response_cut_short_is_drained_back_into_the_pool(client: ProviderClient) -> None:
    release_rest = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(SSE_HEAD + b"9\r\ndata: 1\n\n\r\n")
            await writer.drain()
            await release_rest.wait()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5)
        first = asyncio.Event()
        resp.stream(lambda _data: first.set(), lambda exc: None)
        await asyncio.wait_for(first.wait(), 5)
        resp.release()  # the consumer has what it needs ([DONE]); the terminator is still due
        release_rest.set()
        await asyncio.sleep(0.05)
        resp, body, error = await collect(client, server.url())
        assert error is None and body == b"data: 1\n\n"
    assert server.connections == 1


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    return server_ctx, client_ctx


async def test_tls_with_a_trusted_and_an_untrusted_certificate(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + chunked(b"data: secure\n\n"))
        await writer.drain()

    async with RawServer(handler, ssl_context=server_ctx) as server:
        async with ProviderClient(ssl_context=client_ctx) as trusting:
            _, body, error = await collect(trusting, server.url(scheme="https"))
        assert (body, error) == (b"data: secure\n\n", None)
        async with ProviderClient() as default:  # the system trust store does not know it
            with pytest.raises(wire.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await default.post(server.url(scheme="https"), {}, b"{}", connect_timeout_s=5)


async def test_idle_connections_are_closed_after_the_keepalive(
    client: ProviderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst leaves many pooled connections; they must not hold file descriptors forever."""
    monkeypatch.setattr(wire, "KEEPALIVE_S", 0.2)
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(SSE_HEAD + chunked(b"data: x\n\n"))
        await writer.drain()
        await reader.read()  # until the client closes the idle connection
        closed.set()

    async with RawServer(handler) as server:
        resp, body, _ = await collect(client, server.url())
        resp.release()
        assert body == b"data: x\n\n"
        await asyncio.wait_for(closed.wait(), 5)


async def test_a_drained_response_with_connection_close_is_not_pooled(client: ProviderClient) -> None:
    release_rest = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head + b"9\r\ndata: 1\n\n\r\n")
        await writer.drain()
        await release_rest.wait()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # the socket stays open: only the header says "close"

    async with RawServer(handler) as server:
        resp = await client.post(server.url(), {}, b"{}", connect_timeout_s=5)
        first = asyncio.Event()
        resp.stream(lambda _data: first.set(), lambda exc: None)
        await asyncio.wait_for(first.wait(), 5)
        resp.release()
        release_rest.set()
        await asyncio.sleep(0.05)
        _, body, error = await collect(client, server.url())
        assert error is None and body == b"data: 1\n\n"
    assert server.connections == 2


@pytest.mark.parametrize("seed", range(20))
async def test_chunked_decoding_of_random_chunks_and_splits(seed: int) -> None:
    """Any chunk sizes (with extensions and a trailer), received in any split: the body is
    delivered whole and in order, and the response ends once."""
    rng = random.Random(seed)
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    pos = 0
    while pos < len(body):
        size = rng.randrange(1, 300)
        piece = body[pos : pos + size]
        ext = b";name=value" if rng.random() < 0.2 else b""
        raw += b"%x%b\r\n%b\r\n" % (len(piece), ext, piece)
        pos += size
    raw += b"0\r\nX-Trailer: yes\r\n\r\n"
    client = ProviderClient()
    conn = wire._Connection(client, ("http", "x", 80), asyncio.get_running_loop())
    resp = wire.Response(conn)
    conn.response = resp
    got: list[bytes] = []
    ends: list[BaseException | None] = []
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(len(raw) - 1, rng.randrange(1, 60))))
    streaming = False
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        conn.data_received(raw[start:end])
        if not streaming and resp.status:
            resp.stream(got.append, ends.append)
            streaming = True
    assert resp.status == 200 and b"".join(got) == body
    assert ends == [None]
