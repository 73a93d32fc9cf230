"""Shared fixtures: temp catalog folders, the scripted provider, the gateway on loopback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agentgw.providers.scripted import ScriptedProvider
from tests.gateway import Gateway, gateway_settings, make_workspace, start_gateway, stop_gateway, write_agent

GatewayFactory = Callable[..., Any]


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return make_workspace(tmp_path)


@pytest.fixture
async def provider() -> AsyncIterator[ScriptedProvider]:
    server = ScriptedProvider(demo_delay_s=0.0, slow_delay_s=0.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def gateway(dirs: dict[str, Path], provider: ScriptedProvider) -> AsyncIterator[Gateway]:
    gw = await start_gateway(gateway_settings(dirs, provider.base_url), dirs)
    try:
        yield gw
    finally:
        await stop_gateway(gw)


@pytest.fixture
async def make_gateway(dirs: dict[str, Path], provider: ScriptedProvider) -> AsyncIterator[GatewayFactory]:
    """Start a gateway after writing the given agents; settings overrides as keyword args."""
    started: list[Gateway] = []
    shutil.rmtree(dirs["agents"])
    dirs["agents"].mkdir()

    async def factory(agents: dict[str, dict[str, Any]], **overrides: Any) -> Gateway:
        for key, definition in agents.items():
            write_agent(dirs, key, definition)
        gw = await start_gateway(gateway_settings(dirs, provider.base_url, **overrides), dirs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await stop_gateway(gw)
