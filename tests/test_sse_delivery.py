"""How events reach the socket: HTTP/1.1 chunks and HTTP/1.0, slow readers, two followers.

A caught-up follower is written to by the run task itself (no task switch per event); these
tests read the raw bytes off real sockets to show that the framing is right and that nothing
is lost, merged or reordered when a client stops reading for a while.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson

from agentgw import appkeys
from agentgw.providers.scripted import Delay, HttpError, Replay, ScriptedProvider, Signal, Text, WaitFor
from tests.conftest import GatewayFactory
from tests.gateway import iter_sse, parse_sse

ONESHOT = {
    "mode": "ONESHOT",
    "modelConfig": {"modelKey": "demo"},
    "plain": {"systemPrompt": "Answer briefly."},
}


def dechunk(body: bytes) -> bytes:
    """Decode an HTTP/1.1 chunked body, checking every chunk's length."""
    out = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n", body[:80]
            return bytes(out)
        chunk, crlf, body = body[:size], body[size : size + 2], body[size + 2 :]
        assert len(chunk) == size and crlf == b"\r\n"
        out += chunk


async def raw_query(
    url: str, body: dict[str, Any], version: str, *, rcvbuf: int | None = None, stall_s: float = 0.0
) -> tuple[bytes, bytes]:
    """POST over a plain socket; returns (head, body) as the bytes the server sent."""
    parts = urlsplit(url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((parts.hostname, parts.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    payload = orjson.dumps(body)
    writer.write(
        f"POST /api/ap/query HTTP/{version}\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    if stall_s:
        await asyncio.sleep(stall_s)  # a client that does not read for a while
    raw = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return head, rest


def assert_whole_stream(events: list[dict[str, Any]], text: str) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.complete"
    assert "".join(e["delta"] for e in events if e["type"] == "content.delta") == text


async def test_http11_response_is_chunked_per_burst(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    provider.enqueue([Text("one two three four", chunks=4)])
    head, body = await raw_query(gw.url("/api/ap/query"), {"agentKey": "one", "message": "hi"}, "1.1")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    events = parse_sse(dechunk(body))
    assert_whole_stream(events, "one two three four")
    assert sum(e["type"] == "content.delta" for e in events) == 4


async def test_http10_response_is_plain_bytes_until_close(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    provider.enqueue([Text("old client", chunks=2), Delay(0.05), Text(" still served", chunks=2)])
    head, body = await raw_query(gw.url("/api/ap/query"), {"agentKey": "one", "message": "hi"}, "1.0")
    assert head.startswith(b"HTTP/1.0 200") and b"chunked" not in head
    assert body.startswith(b"id: 1\nevent: message\ndata: ")
    assert_whole_stream(parse_sse(body), "old client still served")


async def test_slow_reader_loses_nothing(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    """Megabytes of deltas to a client that stops reading: the socket fills, the run goes on,
    and once the client reads again every event arrives once, in order."""
    gw = await make_gateway({"one": ONESHOT})
    pieces = [f"{i:05d}" + "x" * 995 for i in range(3000)]  # ~3 MB of content
    provider.enqueue([Text(pieces)])
    head, body = await raw_query(
        gw.url("/api/ap/query"), {"agentKey": "one", "message": "hi"}, "1.1", rcvbuf=4096, stall_s=0.5
    )
    assert head.startswith(b"HTTP/1.1 200")
    events = parse_sse(dechunk(body))
    assert_whole_stream(events, "".join(pieces))
    assert sum(e["type"] == "content.delta" for e in events) == len(pieces)


async def test_second_follower_joins_mid_run(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    halfway = asyncio.Event()
    provider.enqueue([Text("early ", chunks=2), Signal(halfway), Delay(0.2), Text("and late", chunks=3)])
    first: list[dict[str, Any]] = []
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "one", "message": "hi"}) as resp:
        stream = iter_sse(resp)
        async for event in stream:
            first.append(event)
            if event["type"] == "run.start":
                break
        await asyncio.wait_for(halfway.wait(), 5)
        run_id = first[0]["requestId"]
        async with gw.session.get(gw.url("/api/ap/stream"), params={"runId": run_id, "after": "2"}) as other:
            second = parse_sse(await other.read())
        first += [event async for event in stream]
    assert_whole_stream(first, "early and late")
    assert second == first[2:]


async def test_queued_run_sends_its_headers_before_it_starts(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """Headers normally ride with the first frames; a run waiting for its chat has none yet,
    and its client must not wait for the status line until the chat is free."""
    gw = await make_gateway({"one": ONESHOT})
    reached, release = asyncio.Event(), asyncio.Event()
    provider.enqueue([Text("first "), Signal(reached), WaitFor(release), Text("done")])
    provider.enqueue([Text("second")])
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "one", "message": "one"}) as first:
        stream = iter_sse(first)
        chat_id = (await anext(stream))["chatId"]
        await asyncio.wait_for(reached.wait(), 5)
        assert gw.app[appkeys.RUNS].working()  # streaming (its provider is mid-answer)
        body = {"agentKey": "one", "message": "two", "chatId": chat_id}
        second = await asyncio.wait_for(
            gw.session.post(gw.url("/api/ap/query"), json=body, params={"onBusy": "enqueue"}), 5
        )
        # The status line is here while the first run still holds the chat.
        assert second.status == 200 and not release.is_set()
        release.set()
        rest = [event async for event in stream]
        queued = parse_sse(await second.read())
        second.release()
    assert rest[-1]["type"] == "run.complete"
    assert await gw.app[appkeys.RUNS].wait_idle(5) and not gw.app[appkeys.RUNS].working()
    assert queued[0]["type"] == "request.query" and queued[-1]["type"] == "run.complete"
    assert "".join(e["delta"] for e in queued if e["type"] == "content.delta") == "second"


async def test_model_calls_reuse_one_provider_connection(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """Keep-alive through the engine: the stream ends at [DONE], the connection goes back to
    the pool once the response's last bytes are in, and the next query reuses it."""
    gw = await make_gateway({"one": ONESHOT})
    client = gw.app[appkeys.RUNS].providers
    for i in range(4):
        provider.enqueue([Text(f"answer {i}", chunks=3)])
        events = await gw.query({"agentKey": "one", "message": f"q{i}"})
        assert events[-1]["type"] == "run.complete"
        await asyncio.sleep(0.05)  # the chunked terminator may trail [DONE]
    assert len(provider.requests) == 4
    assert len(client._open) == 1  # one TCP connection served all four calls


def http_chunks(body: bytes) -> list[bytes]:
    """The HTTP/1.1 chunks of a chunked body, in order (each one send of the gateway)."""
    out = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out.append(body[:size])
        body = body[size + 2 :]


async def test_a_big_read_goes_out_in_slices(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """A provider far ahead of us: 300 deltas arrive in one read. Each still becomes its own
    event, and they go out in sends of at most 64, so the first is not held for the rest."""
    gw = await make_gateway({"one": ONESHOT})
    frames = b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"d%d "}}]}\n\n' % i for i in range(300)
    )
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    provider.enqueue([Replay(frames + finish)])
    head, body = await raw_query(gw.url("/api/ap/query"), {"agentKey": "one", "message": "hi"}, "1.1")
    assert head.startswith(b"HTTP/1.1 200")
    per_send = [chunk.count(b'"type":"content.delta"') for chunk in http_chunks(body)]
    assert sum(per_send) == 300 and max(per_send) <= 64 and per_send.count(64) >= 4
    events = parse_sse(dechunk(body))
    assert_whole_stream(events, "".join(f"d{i} " for i in range(300)))


async def test_opening_goes_out_while_the_provider_is_silent(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """A run's opening waits for its provider's first answer, but not for long: with a
    provider that has not said a word, the headers and the opening events are here, and
    the chat is stored, before the provider answers at all."""
    gw = await make_gateway({"one": ONESHOT})
    release = asyncio.Event()
    provider.enqueue([WaitFor(release), Text("late answer", chunks=2)])
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "one", "message": "hi"}) as resp:
        assert resp.status == 200
        stream = iter_sse(resp)
        opening = [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]
        assert [e["type"] for e in opening] == ["request.query", "chat.start", "run.start"]
        assert not release.is_set() and len(provider.requests) == 1  # the call went out first
        status, chats = await gw.get("/api/ap/chats")
        assert status == 200 and [c["chatId"] for c in chats["data"]] == [opening[0]["chatId"]]
        release.set()
        rest = [event async for event in stream]
    events = opening + rest
    assert_whole_stream(events, "late answer")
    assert [e["type"] for e in rest][:2] == ["content.start", "content.delta"]


async def test_opening_rides_with_the_first_delta(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """A provider that answers at once: the headers, the opening events and the first delta
    reach the client in one send (one HTTP chunk, right after the head)."""
    gw = await make_gateway({"one": ONESHOT})
    gw.app[appkeys.RUNS].opening_wait_s = 30.0  # only the first delta lets the opening go
    provider.enqueue([Text("quick"), Delay(0.3), Text(" answer")])
    head, body = await raw_query(gw.url("/api/ap/query"), {"agentKey": "one", "message": "hi"}, "1.1")
    assert head.startswith(b"HTTP/1.1 200")
    first = parse_sse(http_chunks(body)[0])
    assert [e["type"] for e in first] == [
        "request.query",
        "chat.start",
        "run.start",
        "content.start",
        "content.delta",
    ]
    assert_whole_stream(parse_sse(dechunk(body)), "quick answer")


async def test_a_run_that_fails_before_a_word_still_opens_and_is_stored(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """The held opening of a run whose provider fails at once goes out before its run.error,
    and the chat holds the run's question and its end."""
    gw = await make_gateway({"one": ONESHOT})
    provider.enqueue([HttpError(500, "upstream broke")])
    events = await gw.query({"agentKey": "one", "message": "hi"})
    assert [e["type"] for e in events] == ["request.query", "chat.start", "run.start", "run.error"]
    status, chat = await gw.get("/api/ap/chat", chatId=events[0]["chatId"])
    assert status == 200
    kinds = [e["type"] for e in chat["data"]["events"]]
    assert kinds[0] == "request.query" and "run.error" in kinds


async def test_held_openings_of_several_silent_runs_all_go_out(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    """One timer serves every held opening: three runs whose provider says nothing yet each
    get their opening, in their own stream."""
    gw = await make_gateway({"one": ONESHOT})
    release = asyncio.Event()
    for i in range(3):
        provider.enqueue([WaitFor(release), Text(f"answer {i}")])
    responses = [
        await gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "one", "message": f"q{i}"})
        for i in range(3)
    ]
    try:
        streams = [iter_sse(resp) for resp in responses]
        for stream in streams:
            opening = [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]
            assert [e["type"] for e in opening] == ["request.query", "chat.start", "run.start"]
        assert not release.is_set()
        release.set()
        for stream in streams:
            rest = [event async for event in stream]
            assert rest[-1]["type"] == "run.complete"
    finally:
        for resp in responses:
            resp.release()
