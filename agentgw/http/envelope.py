"""The JSON envelope of every non-SSE response (SPEC §8)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from agentgw.errors import RequestError


def ok(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps({"code": 0, "msg": "success", "data": data}, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


def fail(status: int, msg: str, data: dict[str, Any] | None = None) -> web.Response:
    body = orjson.dumps({"code": status, "msg": msg, "data": data or {}})
    return web.Response(body=body, status=status, content_type="application/json")


async def read_json_object(request: web.Request, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """Read a JSON object body or raise a RequestError that says what is wrong."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise RequestError(413, f"request body too large: {request.content_length} bytes (limit {max_bytes})")
    content = request.content
    if content.is_eof():  # all of it is in already (the common case): nothing to wait for
        raw = content.read_nowait(max_bytes + 1)
        if len(raw) > max_bytes:
            raise RequestError(413, f"request body too large (limit {max_bytes} bytes)")
        return _json_object(raw)
    # The rest comes in more reads (a slow client, a body bigger than a segment): to its end.
    parts: list[bytes] = []
    size = 0
    while chunk := await content.read(max_bytes + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"request body too large (limit {max_bytes} bytes)")
    return _json_object(parts[0] if len(parts) == 1 else b"".join(parts))


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise RequestError(400, "request body is empty; expected a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError(400, f"request body must be a JSON object, not {type(data).__name__}")
    return data


def query_param(request: web.Request, name: str, *, required: bool = True) -> str | None:
    value = request.query.get(name)
    if value is None or not value.strip():
        if required:
            raise RequestError(400, f"missing query parameter: {name}")
        return None
    return value.strip()
