"""Chat API over real HTTP: a minimal application with the chat store and the chat routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentgw.appkeys import PRINCIPAL, STORE
from agentgw.http import chat_routes
from agentgw.memory.history import compact_live_events
from agentgw.memory.recorder import RunRecorder
from agentgw.memory.store import ChatStore, chat_name
from agentgw.settings import Settings
from tests.test_memory_recorder import LiveRun, make_settings, strip_ts, system_of


@web.middleware
async def principal_from_header(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # Stands in for the auth layer, which puts the JWT subject on the request.
    who = request.headers.get("X-Principal")
    if who:
        request[PRINCIPAL] = who
    return await handler(request)


class Api:
    def __init__(
        self, base: str, session: aiohttp.ClientSession, store: ChatStore, settings: Settings
    ) -> None:
        self.base, self.session, self.store, self.settings = base, session, store, settings

    async def call(self, method: str, path: str, *, who: str | None = None, **params: str) -> tuple[int, Any]:
        headers = {"X-Principal": who} if who else {}
        async with self.session.request(method, self.base + path, params=params, headers=headers) as resp:
            body = await resp.json()
            assert body["code"] == (0 if resp.status == 200 else resp.status)
            return resp.status, body


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path)
    app = web.Application(middlewares=[principal_from_header])
    store = ChatStore(settings)
    app[STORE] = store
    chat_routes.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(str(server.make_url("")), session, store, settings)
    finally:
        await server.close()


async def record_chat(
    api: Api, *, owner: str | None = None, message: str = "hello"
) -> tuple[str, list[dict[str, Any]]]:
    chat_id = str(uuid.uuid4())
    await api.store.create_chat(chat_id, chat_name(message), "demo", "Demo agent", owner)
    rec = RunRecorder(api.store, chat_id, "run1", api.settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin(
        message, first=True, references=[{"id": "r1", "name": "a.png"}, {"id": "r2", "name": "b"}]
    )
    rec.begin_stage("oneshot", system_of("S"), None)
    live.text("reasoning", "hmm")
    live.text("content", "hi back")
    live.usage(10, 2)
    live.emit("run.complete", runId="run1")
    await rec.flush_step()
    await rec.finish("completed")
    rec = RunRecorder(api.store, chat_id, "run2", api.settings)
    second = LiveRun(rec, chat_id, "run2")
    await second.begin(
        "again", first=False, references=[{"id": "r2", "name": "b"}, {"id": "r3", "name": "c"}]
    )
    rec.begin_stage("oneshot", system_of("S"), None)
    second.text("content", "again back")
    second.emit("run.complete", runId="run2")
    await rec.flush_step()
    await rec.finish("completed")
    return chat_id, live.events + second.events


async def test_list_get_delete(api: Api) -> None:
    status, body = await api.call("GET", "/api/ap/chats")
    assert status == 200 and body == {"code": 0, "msg": "success", "data": []}

    older, _ = await record_chat(api, message="first chat")
    newer, live = await record_chat(api, message="second   chat")
    status, body = await api.call("GET", "/api/ap/chats")
    chats = body["data"]
    assert [c["chatId"] for c in chats] == [newer, older]
    assert chats[0]["chatName"] == "second chat"
    assert chats[0]["firstAgentKey"] == "demo" and chats[0]["firstAgentName"] == "Demo agent"
    assert chats[0]["usage"]["inputTokens"] == 10 and chats[0]["usage"]["calls"] == 1
    assert set(chats[0]) == {
        "chatId",
        "chatName",
        "firstAgentKey",
        "firstAgentName",
        "createdAt",
        "updatedAt",
        "usage",
    }

    status, body = await api.call("GET", "/api/ap/chat", chatId=newer)
    data = body["data"]
    assert status == 200
    assert set(data) == {"chatId", "chatName", "events", "references"}
    assert data["chatId"] == newer and data["chatName"] == "second chat"
    assert [r["id"] for r in data["references"]] == ["r1", "r2", "r3"]
    assert strip_ts(data["events"]) == strip_ts(compact_live_events(live))
    assert data["events"][1] == {**data["events"][1], "type": "chat.start", "chatName": "second chat"}

    status, body = await api.call("GET", "/api/ap/chat", chatId=newer.upper(), includeRawMessages="true")
    raw = body["data"]["rawMessages"]
    assert [m["runId"] for m in raw] == ["run1", "run1", "run1", "run2", "run2"]
    assert [m["role"] for m in raw] == ["user", "assistant", "assistant", "user", "assistant"]
    assert raw[1]["reasoning_content"][0]["text"] == "hmm"

    status, body = await api.call("DELETE", "/api/ap/chat", chatId=newer)
    assert status == 200 and body["data"] == {"chatId": newer, "deleted": True}
    status, body = await api.call("GET", "/api/ap/chat", chatId=newer)
    assert status == 404 and body["msg"] == f"chat not found: {newer}" and body["data"] == {}
    status, body = await api.call("GET", "/api/ap/chats")
    assert [c["chatId"] for c in body["data"]] == [older]


async def test_chat_without_references_omits_them(api: Api) -> None:
    chat_id = str(uuid.uuid4())
    await api.store.create_chat(chat_id, "plain", "demo", "Demo")
    rec = RunRecorder(api.store, chat_id, "run1", api.settings)
    live = LiveRun(rec, chat_id, "run1")
    await live.begin("plain", first=True)
    live.emit("run.complete", runId="run1")
    await rec.finish("completed")
    status, body = await api.call("GET", "/api/ap/chat", chatId=chat_id, includeRawMessages="false")
    assert status == 200 and set(body["data"]) == {"chatId", "chatName", "events"}


async def test_bad_requests(api: Api) -> None:
    chat_id, _ = await record_chat(api)
    status, body = await api.call("GET", "/api/ap/chat", chatId=chat_id, includeEvents="true")
    assert status == 400 and body["msg"] == "includeEvents is deprecated; use includeRawMessages=true"
    for bad in ("not-a-uuid", "../../etc/passwd", "123"):
        for method in ("GET", "DELETE"):
            status, body = await api.call(method, "/api/ap/chat", chatId=bad)
            assert status == 400 and "invalid chatId" in body["msg"] and body["data"] == {}
    status, body = await api.call("GET", "/api/ap/chat")
    assert status == 400 and body["msg"] == "missing query parameter: chatId"
    unknown = str(uuid.uuid4())
    for method in ("GET", "DELETE"):
        status, body = await api.call(method, "/api/ap/chat", chatId=unknown)
        assert status == 404 and body["msg"] == f"chat not found: {unknown}"
    status, body = await api.call("GET", "/api/ap/chat", chatId=chat_id, includeRawMessages="maybe")
    assert status == 400 and "includeRawMessages" in body["msg"]


async def test_owner_checks(api: Api) -> None:
    alice_chat, _ = await record_chat(api, owner="alice", message="alice's")
    bob_chat, _ = await record_chat(api, owner="bob", message="bob's")
    open_chat, _ = await record_chat(api, owner=None, message="from before auth")

    status, body = await api.call("GET", "/api/ap/chats", who="bob")
    assert {c["chatId"] for c in body["data"]} == {bob_chat, open_chat}
    status, body = await api.call("GET", "/api/ap/chat", who="bob", chatId=alice_chat)
    assert status == 403 and "another user" in body["msg"]
    status, body = await api.call("DELETE", "/api/ap/chat", who="bob", chatId=alice_chat)
    assert status == 403
    status, body = await api.call("GET", "/api/ap/chat", who="alice", chatId=alice_chat)
    assert status == 200 and body["data"]["chatId"] == alice_chat
    status, body = await api.call("DELETE", "/api/ap/chat", who="alice", chatId=alice_chat)
    assert status == 200
    # Without auth there is no principal: every chat is reachable.
    status, body = await api.call("GET", "/api/ap/chats")
    assert {c["chatId"] for c in body["data"]} == {bob_chat, open_chat}
