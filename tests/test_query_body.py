"""A request body that arrives in pieces (a slow client, a big body) is read whole."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson

from agentgw.providers.scripted import ScriptedProvider, Text
from tests.conftest import GatewayFactory
from tests.gateway import parse_sse
from tests.test_sse_delivery import dechunk

ONESHOT = {
    "mode": "ONESHOT",
    "modelConfig": {"modelKey": "demo"},
    "plain": {"systemPrompt": "Answer briefly."},
}


async def test_a_body_sent_in_two_pieces_is_read_whole(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"one": ONESHOT})
    provider.enqueue([Text("ok")])
    message = "x" * 5000
    payload = orjson.dumps({"agentKey": "one", "message": message})
    parts = urlsplit(gw.url("/api/ap/query"))
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"POST /api/ap/query HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload[:100]
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the rest comes later, in its own segment
    writer.write(payload[100:])
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:300]
    events = parse_sse(dechunk(body))
    assert events[0]["type"] == "request.query" and events[0]["message"] == message
    assert events[-1]["type"] == "run.complete"


async def test_a_body_over_the_limit_in_pieces_is_refused(make_gateway: GatewayFactory) -> None:
    """Without a Content-Length (chunked upload), the limit still holds, and says so."""
    gw = await make_gateway({"one": ONESHOT})

    async def pieces():  # type: ignore[no-untyped-def]
        yield b'{"agentKey": "one", "message": "'
        for _ in range(20):
            yield b"y" * 65536
            await asyncio.sleep(0)
        yield b'"}'

    async with gw.session.post(gw.url("/api/ap/query"), data=pieces()) as resp:
        assert resp.status == 413
        assert "too large" in (await resp.json())["msg"]
