"""Test harness: the real gateway on loopback, the scripted provider, an SSE reader.

Nothing of the gateway is mocked: tests POST over HTTP and read the SSE bytes the server
writes; the provider is the shipped scripted server speaking the real wire formats.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from agentgw.app import build_app
from agentgw.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
CATALOG_DIRS = ("agents", "models", "tools", "skills", "viewports", "prompts")


def make_workspace(root: Path, copy_shipped: bool = True) -> dict[str, Path]:
    """Catalog folders under ``root`` (a copy of the shipped catalog unless told otherwise)."""
    dirs = {}
    for name in (*CATALOG_DIRS, "chats", "data"):
        target = root / name
        if copy_shipped and name in CATALOG_DIRS and (REPO / name).is_dir():
            shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
        dirs[name] = target
    return dirs


def gateway_settings(dirs: dict[str, Path], provider_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "agent.catalog.external-dir": str(dirs["agents"]),
        "agent.model.external-dir": str(dirs["models"]),
        "agent.capability.tools-external-dir": str(dirs["tools"]),
        "agent.skill.external-dir": str(dirs["skills"]),
        "agent.viewport.external-dir": str(dirs["viewports"]),
        "agent.prompts.external-dir": str(dirs["prompts"]),
        "agent.data.external-dir": str(dirs["data"]),
        "memory.chat.dir": str(dirs["chats"]),
        "agent.auth.enabled": False,
        "agent.demo-provider.enabled": False,
        "agent.llm.interaction-log.enabled": False,
        "agent.providers": {
            key: {"base-url": provider_url, "api-key": f"test-key-{key}"}
            for key in ("demo", "bailian", "siliconflow", "newapi", "openai", "anthropic")
        },
        "agent.tools.bash.working-directory": str(dirs["data"]),
        "agent.tools.bash.allowed-paths": str(dirs["data"]),
        "agent.tools.bash.allowed-commands": "ls,cat,echo,wc,head",
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(files=(), environ={}, overrides=base)


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """Parse a whole SSE body into event dicts (comments and heartbeats skipped)."""
    events = []
    for block in raw.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                events.append(orjson.loads(line[5:]))
    return events


async def iter_sse(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Events of an SSE response, each as soon as its frame is complete."""
    buf = b""
    async for chunk in resp.content.iter_any():
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    yield orjson.loads(line[5:])


def write_model(dirs: dict[str, Path], key: str, **fields: Any) -> None:
    """A model on the test provider (``demo``), with extra fields such as pricing."""
    spec = {"key": key, "provider": "demo", "protocol": "OPENAI", "modelId": key, **fields}
    (dirs["models"] / f"{key}.json").write_bytes(orjson.dumps(spec))


@dataclass
class Gateway:
    server: TestServer
    session: aiohttp.ClientSession
    settings: Settings
    dirs: dict[str, Path]
    app: web.Application = field(init=False)

    def __post_init__(self) -> None:
        self.app = self.server.app

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def query(self, body: dict[str, Any], **params: str) -> list[dict[str, Any]]:
        """POST a query and read the whole SSE stream."""
        async with self.session.post(self.url("/api/ap/query"), json=body, params=params) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return parse_sse(await resp.read())

    async def stream(self, body: dict[str, Any], **params: str) -> AsyncIterator[dict[str, Any]]:
        """POST a query and yield events one by one as they arrive."""
        async with self.session.post(self.url("/api/ap/query"), json=body, params=params) as resp:
            assert resp.status == 200, await resp.text()
            async for event in iter_sse(resp):
                yield event

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(path), json=body) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.url(path), params=params) as resp:
            return resp.status, await resp.json()


class _Server(TestServer):
    """As ``agentgw serve`` runs the app (``web.run_app``): a client that goes away does not
    cancel the handler (aiohttp's test server would, which hides the production path)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


async def start_gateway(settings: Settings, dirs: dict[str, Path]) -> Gateway:
    app = build_app(settings)
    server = _Server(app, host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    return Gateway(server, session, settings, dirs)


async def stop_gateway(gw: Gateway) -> None:
    await gw.session.close()
    await gw.server.close()


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on an ephemeral loopback port (a tool's API, a bare provider); returns
    the runner (``await runner.cleanup()`` when done) and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def write_agent(dirs: dict[str, Path], key: str, definition: dict[str, Any]) -> Path:
    path = dirs["agents"] / f"{key}.json"
    path.write_bytes(orjson.dumps({"key": key, **definition}, option=orjson.OPT_INDENT_2))
    return path
