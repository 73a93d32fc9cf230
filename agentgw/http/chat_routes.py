"""Chat memory API: list, read (history events) and delete chats (SPEC §7, §8, §11.1).

``GET /api/ap/chats`` lists chats newest first with usage totals; ``GET /api/ap/chat``
answers ``{chatId, chatName, events, references?, rawMessages?}`` with null members
omitted; ``DELETE /api/ap/chat`` removes a chat. A non-UUID ``chatId`` is 400, an unknown
one 404 (``chat not found: <id>``), another principal's chat 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentgw.appkeys import PRINCIPAL, STORE
from agentgw.errors import RequestError
from agentgw.http.envelope import fail, ok, query_param
from agentgw.memory.history import chat_references, history_events, raw_messages
from agentgw.memory.store import ChatNotFound, ChatStore, can_access, parse_chat_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def add_routes(app: web.Application) -> None:
    """Register ``GET /api/ap/chats``, ``GET /api/ap/chat`` and ``DELETE /api/ap/chat``."""
    app.router.add_get("/api/ap/chats", _enveloped(list_chats))
    app.router.add_get("/api/ap/chat", _enveloped(get_chat))
    app.router.add_delete("/api/ap/chat", _enveloped(delete_chat))


def _enveloped(handler: Handler) -> Handler:
    # The app's middleware does this too; doing it here keeps the routes correct on their own.
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return fail(exc.status, exc.msg, exc.data)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _principal(request: web.Request) -> str | None:
    value = request.get(PRINCIPAL)
    return value if isinstance(value, str) else None


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RequestError(400, f"{name} must be true or false, got {raw[:40]!r}")


async def _checked_chat(request: web.Request) -> tuple[ChatStore, str, dict[str, Any] | None]:
    """The store, the validated chat id and its index record; 400/404/403 otherwise."""
    store = request.app[STORE]
    chat_id = parse_chat_id(query_param(request, "chatId"))
    if not await store.exists(chat_id):
        raise ChatNotFound(chat_id)
    record = await store.get_chat(chat_id)
    owner = record.get("owner") if record else None
    if not can_access(owner if isinstance(owner, str) else None, _principal(request)):
        raise RequestError(403, f"chat {chat_id} belongs to another user")
    return store, chat_id, record


async def list_chats(request: web.Request) -> web.StreamResponse:
    """``GET /api/ap/chats``: the chats the caller may see, newest first."""
    return ok(await request.app[STORE].list_chats(_principal(request)))


async def get_chat(request: web.Request) -> web.StreamResponse:
    """``GET /api/ap/chat?chatId=&includeRawMessages=``: the chat's history as events."""
    if "includeEvents" in request.query:
        raise RequestError(400, "includeEvents is deprecated; use includeRawMessages=true")
    include_raw = _flag(request, "includeRawMessages")
    store, chat_id, record = await _checked_chat(request)
    lines = await store.read_lines(chat_id)
    name = record.get("chatName") if record else None
    # Compacting a long chat is CPU work: keep it off the event loop.
    data = await asyncio.to_thread(
        _chat_data, chat_id, lines, name if isinstance(name, str) else None, include_raw
    )
    return ok(data)


def _chat_data(
    chat_id: str, lines: list[dict[str, Any]], name: str | None, include_raw: bool
) -> dict[str, Any]:
    events = history_events(lines, name=name)
    if name is None:
        first = next((e for e in events if e["type"] == "chat.start"), None)
        name = first.get("chatName") if first else None
    data: dict[str, Any] = {"chatId": chat_id}
    if name is not None:
        data["chatName"] = name
    data["events"] = events
    references = chat_references(lines)
    if references:
        data["references"] = references
    if include_raw:
        data["rawMessages"] = raw_messages(lines)
    return data


async def delete_chat(request: web.Request) -> web.StreamResponse:
    """``DELETE /api/ap/chat?chatId=``: remove the chat file and its index record."""
    store, chat_id, _record = await _checked_chat(request)
    await store.delete_chat(chat_id)
    return ok({"chatId": chat_id, "deleted": True})
