"""The catalog read API over real HTTP on loopback (SPEC §8, §11.1, §3.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentgw.appkeys import CATALOG
from agentgw.http.catalog_routes import add_routes
from tests.test_catalog_support import Workspace, plan_agent, react_agent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path).standard()
    ws.tools(
        "remote.backend", {"type": "function", "name": "Lookup_Remote", "toolApi": "http://127.0.0.1:9/x"}
    )
    ws.tools("card.frontend", {"type": "function", "name": "card", "description": "Show a card."})
    ws.skill("math_basic", "---\nname: Basic math\ndescription: Adds.\n---\nRun calc.py.")
    ws.write("viewports/card.html", "<div id=card></div>")
    ws.write("viewports/form.qlc", '{"type": "form", "fields": [{"name": "city"}]}')
    ws.agent(
        "weather",
        react_agent(
            name="Weather",
            icon="emoji:☀️",
            description="Looks up the weather",
            toolConfig={"backends": ["mock_city_weather", "Lookup_Remote"], "frontends": ["card"]},
            skills=["math_basic"],
            budget={"maxTokens": 900},
        ),
    )
    ws.agent(
        "planner",
        plan_agent(
            description="Plans trips",
            planExecute={
                "plan": {"systemPrompt": "Plan.", "deepThinking": True},
                "execute": {"systemPrompt": "Execute prompt."},
                "summary": {"systemPrompt": "Summary prompt."},
            },
        ),
    )
    ws.agent(
        "oneshot",
        {"mode": "ONESHOT", "modelConfig": {"modelKey": "m2"}, "plain": {"systemPrompt": "Answer."}},
    )
    ws.agent("broken", {"name": "Broken one", "description": "never loads", "mode": "REACT", "verify": True})
    return ws


@pytest.fixture
async def api(ws: Workspace) -> AsyncIterator[tuple[aiohttp.ClientSession, TestServer]]:
    catalog = ws.catalog()
    catalog.load()
    app = web.Application()
    app[CATALOG] = catalog
    add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield session, server
    finally:
        await server.close()


async def get(
    api: tuple[aiohttp.ClientSession, TestServer], path: str, **params: str
) -> tuple[int, dict[str, Any]]:
    session, server = api
    async with session.get(server.make_url(path), params=params) as resp:
        return resp.status, await resp.json()


async def test_agents_list_is_sorted_and_includes_failed_files(api: Any) -> None:
    status, body = await get(api, "/api/ap/agents")
    assert status == 200
    assert (body["code"], body["msg"]) == (0, "success")
    entries = body["data"]
    assert [e["key"] for e in entries] == ["broken", "oneshot", "planner", "weather"]
    weather = entries[3]
    assert weather["name"] == "Weather" and weather["description"] == "Looks up the weather"
    meta = weather["meta"]
    assert set(meta) == {"model", "mode", "icon", "tools", "skills", "version", "status", "errors"}
    assert meta["model"] == "m1" and meta["mode"] == "REACT" and meta["icon"] == "emoji:☀️"
    assert meta["tools"] == ["mock_city_weather", "lookup_remote", "card"]
    assert meta["skills"] == ["math_basic"]
    assert meta["status"] == "ok" and meta["errors"] == [] and len(meta["version"]) == 12
    planner = entries[2]["meta"]
    assert planner["tools"] == ["_plan_add_tasks_", "_plan_update_task_"]
    assert planner["mode"] == "PLAN_EXECUTE"
    broken = entries[0]
    assert broken["name"] == "Broken one" and broken["description"] == "never loads"
    assert broken["meta"]["status"] == "error"
    assert broken["meta"]["mode"] == "REACT" and broken["meta"]["model"] is None
    assert any("legacy field `verify`" in error for error in broken["meta"]["errors"])


@pytest.mark.parametrize(
    ("tag", "keys"),
    [
        ("PLAN", ["planner"]),
        ("weather", ["weather"]),
        ("lookup_remote", ["weather"]),
        ("math_basic", ["weather"]),
        ("nothing", []),
    ],
)
async def test_agents_tag_filter_matches_key_description_tools_and_skills(
    api: Any, tag: str, keys: list[str]
) -> None:
    _, body = await get(api, "/api/ap/agents", tag=tag)
    assert [e["key"] for e in body["data"]] == keys


async def test_agent_detail_has_the_resolved_view(api: Any) -> None:
    status, body = await get(api, "/api/ap/agent", agentKey="weather")
    assert status == 200
    data = body["data"]
    assert set(data) == {"key", "name", "description", "instructions", "meta"}
    assert data["instructions"] == "You are helpful."
    meta = data["meta"]
    assert meta["toolChoice"] == "AUTO" and meta["maxSteps"] == 6 and meta["skills"] == ["math_basic"]
    assert meta["budget"] == {
        "runTimeoutMs": 120000,
        "model": {"maxCalls": 15, "timeoutMs": 60000, "retryCount": 0},
        "tool": {"maxCalls": 20, "timeoutMs": 120000, "retryCount": 0},
        "maxTokens": 900,
    }
    stage = meta["stages"]["react"]
    assert (
        stage["model"]["key"] == "m1"
        and stage["model"]["modelId"] == "m1-id"
        and stage["model"]["provider"] == "p1"
    )
    assert stage["systemPrompt"].startswith("You are helpful.\n\n")
    assert "skillId: math_basic" in stage["systemPrompt"]
    assert "- mock_city_weather: Weather of a city." in stage["systemPrompt"]
    [weather, remote, card] = stage["tools"]
    assert weather["type"] == "function" and weather["function"]["name"] == "mock_city_weather"
    assert weather["function"]["parameters"]["properties"]["city"] == {"type": "string"}
    assert (remote["kind"], remote["toolApi"]) == ("backend", "http://127.0.0.1:9/x")
    assert (card["kind"], card["toolType"], card["toolKey"]) == ("frontend", "html", "card")


async def test_agent_instructions_follow_the_mode(api: Any) -> None:
    _, planner = await get(api, "/api/ap/agent", agentKey="planner")
    assert planner["data"]["instructions"] == "Execute prompt."
    assert planner["data"]["meta"]["stages"]["plan"]["deepThinking"] is True
    assert set(planner["data"]["meta"]["stages"]) == {"plan", "execute", "summary"}
    _, oneshot = await get(api, "/api/ap/agent", agentKey="oneshot")
    assert oneshot["data"]["instructions"] == "Answer."
    assert oneshot["data"]["meta"]["model"] == "m2"


async def test_failed_agent_detail_shows_its_errors(api: Any) -> None:
    status, body = await get(api, "/api/ap/agent", agentKey="broken")
    assert status == 200
    assert body["data"]["meta"]["status"] == "error"
    assert body["data"]["instructions"] == ""


async def test_unknown_or_missing_agent_key(api: Any) -> None:
    status, body = await get(api, "/api/ap/agent", agentKey="ghost")
    assert status == 404
    assert body == {"code": 404, "msg": "agent not found: ghost", "data": {}}
    status, body = await get(api, "/api/ap/agent")
    assert status == 400 and body["code"] == 400 and "agentKey" in body["msg"]


async def test_viewports(api: Any) -> None:
    status, body = await get(api, "/api/ap/viewport", viewportKey="card", chatId="c", runId="r")
    assert status == 200
    assert body["data"] == {"html": "<div id=card></div>"}
    _, body = await get(api, "/api/ap/viewport", viewportKey="form")
    assert body["data"] == {"type": "form", "fields": [{"name": "city"}]}
    status, body = await get(api, "/api/ap/viewport", viewportKey="nope")
    assert status == 404 and body == {"code": 404, "msg": "viewport not found: nope", "data": {}}
    status, body = await get(api, "/api/ap/viewport")
    assert status == 400 and "viewportKey" in body["msg"]
