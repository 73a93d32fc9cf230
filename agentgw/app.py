"""``build_app()``: routes, middlewares and the owners of shared resources.

Startup order: demo provider (when a provider points at ``builtin:demo``) → HTTP client
session → catalog (initial load + watcher) → chat store → run manager. Cleanup reverses it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from agentgw import appkeys
from agentgw.catalog.registry import Catalog
from agentgw.engine.runs import RunManager
from agentgw.errors import RequestError, SettingsError
from agentgw.http import catalog_routes, chat_routes, run_routes
from agentgw.http.envelope import fail, ok
from agentgw.memory.store import ChatStore
from agentgw.providers.wire import ProviderClient
from agentgw.settings import ProviderSettings, Settings

logger = logging.getLogger("agentgw.app")

DEMO_BASE_URL = "builtin:demo"
DEMO: web.AppKey[object] = web.AppKey("demo-provider", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before the SSE response is prepared, every error becomes the JSON envelope."""
    try:
        return await handler(request)
    except RequestError as exc:
        return fail(exc.status, exc.msg, exc.data)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return fail(exc.status, exc.reason or "error")
        raise
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return fail(500, "internal error; see the server log")


def _with_demo_provider(settings: Settings, base_url: str) -> Settings:
    providers = {
        key: (p.model_copy(update={"base_url": base_url}) if p.base_url == DEMO_BASE_URL else p)
        for key, p in settings.agent.providers.items()
    }
    if "demo" not in providers:
        providers["demo"] = ProviderSettings(base_url=base_url, api_key="demo")
    agent = settings.agent.model_copy(update={"providers": providers})
    return settings.model_copy(update={"agent": agent})


def uses_demo(settings: Settings) -> bool:
    return settings.agent.demo_provider.enabled and any(
        p.base_url == DEMO_BASE_URL for p in settings.agent.providers.values()
    )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    demo = None
    if uses_demo(settings):
        from agentgw.providers.scripted import ScriptedProvider

        demo = ScriptedProvider()
        await demo.start()
        settings = _with_demo_provider(settings, demo.base_url)
        app[appkeys.SETTINGS] = settings
        app[DEMO] = demo
        logger.info("demo provider serving on %s", demo.base_url)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, enable_cleanup_closed=True)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
    app[appkeys.HTTP] = http
    catalog = Catalog(settings)
    await catalog.start()
    app[appkeys.CATALOG] = catalog
    store = ChatStore(settings)
    app[appkeys.STORE] = store
    providers = ProviderClient()
    runs = RunManager(settings, http, store, providers)
    await runs.start()
    app[appkeys.RUNS] = runs
    try:
        yield
    finally:
        await runs.stop()
        await store.close()  # after the runs: their waiting writes are done, not dropped
        await catalog.stop()
        await providers.close()
        await http.close()
        if demo is not None:
            await demo.stop()


async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    catalog = request.app.get(appkeys.CATALOG)
    if catalog is None or not catalog.loaded:
        return fail(503, "catalog not loaded yet")
    snapshot = catalog.snapshot()
    return ok({"status": "ready", "agents": len(snapshot.agents), "errors": len(snapshot.errors)})


async def event_schema(request: web.Request) -> web.Response:
    from agentgw.events import event_json_schema

    return ok(event_json_schema())


def build_app(settings: Settings) -> web.Application:
    if settings.agent.auth.enabled:
        # Refuse rather than serve unprotected while the operator believes auth is on.
        raise SettingsError(
            "agent.auth.enabled",
            "JWT auth is not available in this version; set AGENT_AUTH_ENABLED=false "
            "(and keep the gateway behind an authenticating proxy)",
        )
    app = web.Application(middlewares=[error_middleware], client_max_size=2 << 20)
    app[appkeys.SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/ap/schema/events", event_schema)
    catalog_routes.add_routes(app)
    chat_routes.add_routes(app)
    run_routes.add_routes(app)
    return app
