"""Typed keys of the shared resources kept on the aiohttp application (owned by ``app.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from agentgw.catalog.registry import Catalog
    from agentgw.engine.runs import RunManager
    from agentgw.memory.store import ChatStore
    from agentgw.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
RUNS: web.AppKey[RunManager] = web.AppKey("runs")
STORE: web.AppKey[ChatStore] = web.AppKey("store")

# The authenticated subject of a request (set by the auth middleware when auth is on).
PRINCIPAL: web.RequestKey[str] = web.RequestKey("principal", str)
