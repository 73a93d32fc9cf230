"""Upstream failures become readable ProviderErrors; streams are never buffered or left open.

Every case runs over real loopback HTTP against the scripted provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from agentgw.errors import ProviderError
from agentgw.providers import scripted as s
from agentgw.providers import stream_call
from agentgw.providers.base import ContentDelta, Finish, ModelCall, Protocol, ProviderEvent
from agentgw.providers.wire import ProviderClient


@pytest.fixture
async def server() -> AsyncIterator[s.ScriptedProvider]:
    async with s.ScriptedProvider(demo_delay_s=0) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


def make_call(base_url: str, protocol: Protocol = "OPENAI", **overrides: Any) -> ModelCall:
    fields: dict[str, Any] = {
        "protocol": protocol,
        "provider_key": "acme",
        "base_url": base_url,
        "api_key": "sk-secret",
        "model_id": "acme-1",
        "messages": [{"role": "user", "content": "hi"}],
    }
    fields.update(overrides)
    return ModelCall(**fields)


async def collect(client: ProviderClient, call: ModelCall) -> tuple[list[ProviderEvent], ProviderError]:
    events: list[ProviderEvent] = []
    with pytest.raises(ProviderError) as info:
        async for event in stream_call(client, call):
            events.append(event)
    return events, info.value


PROTOCOLS = ["OPENAI", "ANTHROPIC"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_is_retriable_connect_error(client) -> None:
    call = make_call(f"http://127.0.0.1:{free_port()}/v1")
    events, err = await collect(client, call)
    assert events == []
    assert err.code == "provider_connect_error"
    assert err.retriable is True
    assert "acme/acme-1" in str(err)


async def test_not_an_http_url_is_a_clear_error(client) -> None:
    _, err = await collect(client, make_call("builtin:demo"))
    assert err.code == "provider_connect_error"
    assert err.retriable is False


async def test_missing_base_url_fails_before_any_request(client) -> None:
    with pytest.raises(ProviderError) as info:
        stream_call(client, make_call(""))
    assert info.value.code == "provider_config_error"
    assert "base-url" in info.value.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("status", "retriable"), [(400, False), (401, False), (404, False), (429, True), (500, True), (503, True)]
)
async def test_http_status_errors(server, client, protocol, status, retriable) -> None:
    body = {"error": {"message": f"nope {status}", "type": "x"}}
    server.enqueue([s.HttpError(status, body)])
    events, err = await collect(client, make_call(server.base_url, protocol))
    assert events == []
    assert err.code == "provider_http_error"
    assert err.status == status
    assert err.retriable is retriable
    assert f"nope {status}" in err.message
    assert f"nope {status}" in err.body


async def test_plain_text_error_body_is_excerpted(server, client) -> None:
    server.enqueue([s.HttpError(502, "<html>\n  <body>Bad   gateway</body>\n</html>" + "x" * 2000)])
    _, err = await collect(client, make_call(server.base_url))
    assert err.status == 502 and err.retriable is True
    assert err.body.startswith("<html> <body>Bad gateway</body> </html>")
    assert len(err.body) <= 501


async def test_json_answer_with_status_200_is_not_a_stream(server, client) -> None:
    server.enqueue([s.Replay(b'{"error": {"message": "quota exhausted"}}', content_type="application/json")])
    _, err = await collect(client, make_call(server.base_url))
    assert err.code == "provider_stream_error"
    assert "quota exhausted" in err.message
    server.enqueue(
        [s.Replay(b'{"choices": [{"message": {"content": "hi"}}]}', content_type="application/json")]
    )
    _, err = await collect(client, make_call(server.base_url))
    assert err.code == "provider_malformed_chunk"
    assert "text/event-stream" in err.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_malformed_chunk_names_an_excerpt(server, client, protocol) -> None:
    server.enqueue([s.Text("ok"), s.MalformedChunk(b'{"choices": [{"delta": {"content": "bro')])
    events, err = await collect(client, make_call(server.base_url, protocol))
    assert events == [ContentDelta("ok")]
    assert err.code == "provider_malformed_chunk"
    assert '"bro' in err.body
    assert err.retriable is False


async def test_non_object_chunk_is_malformed(server, client) -> None:
    server.enqueue([s.Replay(b"data: [1, 2]\n\n")])
    _, err = await collect(client, make_call(server.base_url))
    assert err.code == "provider_malformed_chunk"
    assert "not a JSON object" in err.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_mid_stream_error(server, client, protocol) -> None:
    server.enqueue([s.Text("partial"), s.MidStreamError("model overloaded", 529)])
    events, err = await collect(client, make_call(server.base_url, protocol))
    assert events == [ContentDelta("partial")]
    assert err.code == "provider_stream_error"
    assert "model overloaded" in err.message
    assert err.retriable is False


async def test_overload_before_any_delta_is_retriable(server, client) -> None:
    server.enqueue([s.MidStreamError("busy")])
    _, err = await collect(client, make_call(server.base_url, "ANTHROPIC"))
    assert err.code == "provider_stream_error"
    assert err.retriable is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_early_close_after_a_delta(server, client, protocol) -> None:
    server.enqueue([s.Text("half an ans"), s.Close()])
    events, err = await collect(client, make_call(server.base_url, protocol))
    assert events == [ContentDelta("half an ans")]
    assert err.code == "provider_early_close"
    assert err.retriable is False


async def test_early_close_before_any_delta_is_retriable(server, client) -> None:
    server.enqueue([s.Close()])
    events, err = await collect(client, make_call(server.base_url))
    assert events == []
    assert err.code == "provider_early_close"
    assert err.retriable is True


async def test_dropped_connection_mid_body(server, client) -> None:
    server.enqueue([s.Text("abc"), s.Close(abort=True)])
    events, err = await collect(client, make_call(server.base_url))
    assert events == [ContentDelta("abc")]
    assert err.code == "provider_early_close"


async def test_openai_stream_ending_with_finish_but_no_done_is_complete(server, client) -> None:
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    server.enqueue([s.Replay(body)])
    events = [e async for e in stream_call(client, make_call(server.base_url))]
    assert events == [ContentDelta("x"), Finish("stop", "stop")]


async def test_done_without_finish_reason_infers_it(server, client) -> None:
    body = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n'
    server.enqueue([s.Replay(body)])
    events = [e async for e in stream_call(client, make_call(server.base_url))]
    assert events == [ContentDelta("x"), Finish("stop", None)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stall_after_a_delta_times_out(server, client, protocol) -> None:
    server.enqueue([s.Text("first"), s.Hang()])
    call = make_call(server.base_url, protocol, idle_timeout_s=0.3)
    events, err = await collect(client, call)
    assert events == [ContentDelta("first")]
    assert err.code == "provider_timeout"
    assert err.retriable is False
    assert "0.3s" in err.message
    # the stalled connection was closed by the client, not left hanging
    await asyncio.wait_for(server.client_closed.wait(), 5)


async def test_stall_before_headers_times_out_retriably(server, client) -> None:
    server.enqueue([s.Delay(2.0), s.Text("late")])
    _, err = await collect(client, make_call(server.base_url, idle_timeout_s=0.2))
    assert err.code == "provider_timeout"
    assert err.retriable is True


async def test_each_delta_is_yielded_before_the_next_is_sent(server, client) -> None:
    """The streaming law: the server only sends delta i+1 after the client holds delta i."""
    gates = [asyncio.Event() for _ in range(3)]
    steps: list[s.Step] = []
    for i, gate in enumerate(gates):
        steps += [s.Text(f"d{i}"), s.WaitFor(gate)]
    server.enqueue(steps)
    gen = stream_call(client, make_call(server.base_url, idle_timeout_s=5))
    async with contextlib.aclosing(gen):
        for i, gate in enumerate(gates):
            event = await asyncio.wait_for(anext(gen), 3)
            assert event == ContentDelta(f"d{i}")
            gate.set()
        assert isinstance(await asyncio.wait_for(anext(gen), 3), Finish)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_closing_the_generator_closes_the_connection(server, client, protocol) -> None:
    server.enqueue([s.Text("one"), s.Text("two"), s.Hang()])
    gen = stream_call(client, make_call(server.base_url, protocol))
    assert await anext(gen) == ContentDelta("one")
    await gen.aclose()
    await asyncio.wait_for(server.client_closed.wait(), 5)
    assert server.connections_closed_by_client == 1


async def test_cancelling_the_consumer_closes_the_connection(server, client) -> None:
    first = asyncio.Event()
    server.enqueue([s.Text("one"), s.Hang()])

    async def consume() -> None:
        async for _ in stream_call(client, make_call(server.base_url)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(server.client_closed.wait(), 5)
    assert server.connections_closed_by_client == 1


async def test_session_is_reusable_after_failures(server, client) -> None:
    server.enqueue([s.Text("x"), s.Close()])
    server.enqueue([s.HttpError(500)])
    server.enqueue([s.Text("fine")])
    await collect(client, make_call(server.base_url))
    await collect(client, make_call(server.base_url))
    events = [e async for e in stream_call(client, make_call(server.base_url))]
    assert events == [ContentDelta("fine"), Finish("stop", "stop")]
    server.assert_complete()


@pytest.mark.parametrize(
    "chunk",
    [
        b'{"choices": [1, 2]}',
        b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "oops"}]}}]}',
        b'{"choices": [{"delta": {"tool_calls": 5}}]}',
    ],
)
async def test_json_of_the_wrong_shape_is_a_malformed_chunk(server, client, chunk) -> None:
    server.enqueue([s.Replay(b"data: " + chunk + b"\n\n")])
    _, err = await collect(client, make_call(server.base_url))
    assert err.code == "provider_malformed_chunk"
    assert "unexpected shape" in err.message


async def test_anthropic_block_delta_without_delta_is_malformed(server, client) -> None:
    server.enqueue(
        [s.Replay(b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0}\n\n')]
    )
    _, err = await collect(client, make_call(server.base_url, "ANTHROPIC"))
    assert err.code == "provider_malformed_chunk"


async def test_plain_text_error_event(server, client) -> None:
    server.enqueue([s.Replay(b"event: error\ndata: upstream exploded\n\n")])
    _, err = await collect(client, make_call(server.base_url))
    assert err.code == "provider_stream_error"
    assert "upstream exploded" in err.message


@contextlib.asynccontextmanager
async def one_route_provider(handler: Any) -> AsyncIterator[str]:
    """A provider of one hand-written ``POST /v1/chat/completions`` handler; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_deltas_before_a_bad_frame_in_the_same_read_still_arrive(client) -> None:
    """A read that brings a good delta and then a broken frame: the delta goes out, then the
    malformed-chunk error (not retriable: a delta was seen)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        good = b'data: {"choices":[{"index":0,"delta":{"content":"first"}}]}\n\n'
        await resp.write(good + b"data: {not json\n\n")  # one write: one read on the other side
        await asyncio.sleep(0.2)
        return resp

    async with one_route_provider(handler) as base_url:
        events, err = await collect(client, make_call(base_url))
    assert events == [ContentDelta("first")]
    assert err.code == "provider_malformed_chunk" and err.retriable is False


async def test_a_redirect_is_reported_not_followed(client) -> None:
    """A moved endpoint: the POST is not replayed elsewhere; the error says where to point."""
    calls: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        raise web.HTTPTemporaryRedirect("https://api.example.invalid/v2/chat/completions")

    async with one_route_provider(handler) as base_url:
        events, err = await collect(client, make_call(base_url))
    assert events == [] and calls == ["/v1/chat/completions"]
    assert err.code == "provider_http_error" and err.retriable is False
    assert "redirected (HTTP 307) to https://api.example.invalid/v2/chat/completions" in err.message


async def test_a_stale_pooled_connection_is_retried_on_a_new_one(client) -> None:
    """The provider drops an idle keep-alive connection as the next call goes out on it:
    nothing was answered, so the call goes again on a new connection, unseen by the caller."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(
            b"%x\r\n%b\r\n" % (len(f), f)
            for f in (
                b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n',
                b"data: [DONE]\n\n",
            )
        )
        + b"0\r\n\r\n"
    )
    connections = 0

    async def read_request(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(v)
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
        await reader.readexactly(length)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
            if first:
                await read_request(reader)  # the pooled connection's second call: dropped
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        for _ in range(2):
            events = [e async for e in stream_call(client, make_call(base_url))]
            assert ContentDelta("hi") in events
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 2
