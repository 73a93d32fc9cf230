"""The shipped catalog on the demo responder: what a newcomer sees with ``make run``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.providers.scripted import ScriptedProvider
from tests.gateway import REPO, Gateway, types_of
from tests.test_query_stream import assert_contract


async def ask(gw: Gateway, agent: str, message: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(30):
        events = await gw.query({"agentKey": agent, "message": message})
    assert_contract(events)
    return events


def results(events: list[dict[str, Any]]) -> list[Any]:
    out = []
    for e in events:
        if e["type"] == "tool.result":
            try:
                out.append(orjson.loads(e["result"]))
            except orjson.JSONDecodeError:
                out.append(e["result"])
    return out


async def test_shipped_agents_all_load(gateway: Gateway) -> None:
    status, body = await gateway.get("/api/ap/agents")
    assert status == 200
    agents = body["data"]
    assert agents and all(a["meta"]["status"] == "ok" for a in agents), [a["meta"]["errors"] for a in agents]
    modes = {a["meta"]["mode"] for a in agents}
    assert modes == {"ONESHOT", "REACT", "PLAN_EXECUTE"}


async def test_weather_agent_streams_reasoning_content_and_a_tool(gateway: Gateway) -> None:
    events = await ask(gateway, "demo_react_weather", "what is the weather in Shanghai")
    kinds = types_of(events)
    for kind in ("reasoning.delta", "content.delta", "tool.start", "tool.args", "tool.end", "tool.result"):
        assert kind in kinds
    assert events[-1]["type"] == "run.complete" and events[-1]["finishReason"] == "end_turn"
    weather = results(events)[0]
    assert weather["city"] == "Shanghai"


@pytest.mark.parametrize(
    ("agent", "message", "tool", "check"),
    [
        ("demo_react_bash", "list the files here", "_bash_", lambda r: r.startswith("exitCode: 0")),
        (
            "demo_react_skills",
            "add 2 and 3",
            "_skill_run_script_",
            lambda r: r["ok"] and '"result": 5' in r["stdout"],
        ),
        (
            "demo_react_web_search",
            "search the web for agent gateways",
            "web_search",
            lambda r: r["error"]["code"] == "missing_api_key",
        ),
        (
            "demo_react_tool_chain",
            "what is the date in Tokyo, and the weather there tomorrow",
            "mock_city_weather",
            lambda r: r["city"] == "Tokyo",
        ),
    ],
)
async def test_each_tool_family_completes(
    gateway: Gateway, agent: str, message: str, tool: str, check: Any
) -> None:
    events = await ask(gateway, agent, message)
    assert events[-1]["type"] == "run.complete"
    starts = {e["toolId"]: e["toolName"] for e in events if e["type"] == "tool.start"}
    by_tool = {starts[e["toolId"]]: e["result"] for e in events if e["type"] == "tool.result"}
    assert tool in by_tool
    raw = by_tool[tool]
    assert check(raw if raw.startswith("exitCode") else orjson.loads(raw))


async def test_tool_chain_resolves_the_date_template(gateway: Gateway) -> None:
    events = await ask(
        gateway, "demo_react_tool_chain", "what is the date in Tokyo, and the weather there tomorrow"
    )
    today, weather = results(events)[:2]
    args = "".join(
        e["delta"]
        for e in events
        if e["type"] == "tool.args"
        and e["toolId"] == events[[i for i, e in enumerate(events) if e["type"] == "tool.start"][1]]["toolId"]
    )
    assert "{{city_datetime.date+1d}}" in args
    from datetime import date, timedelta

    assert weather["date"] == (date.fromisoformat(today["date"]) + timedelta(days=1)).isoformat()


async def test_agent_builder_creates_a_live_agent(gateway: Gateway) -> None:
    events = await ask(gateway, "demo_react_agent_builder", "create an agent for recipes")
    created = results(events)[0]
    assert created["ok"] is True and created["key"] == "demo_created_recipes"
    assert (gateway.dirs["agents"] / "demo_created_recipes.json").is_file()
    async with asyncio.timeout(10):  # hot reload makes it live
        while True:
            status, _ = await gateway.get("/api/ap/agent", agentKey="demo_created_recipes")
            if status == 200:
                break
            await asyncio.sleep(0.1)


async def test_plan_execute_agent_streams_plan_tasks_and_summary(gateway: Gateway) -> None:
    events = await ask(
        gateway, "demo_plan_execute", "check my todo list and then the runbook for the db outage"
    )
    kinds = types_of(events)
    assert kinds.count("plan.create") == 1 and "plan.update" in kinds
    assert kinds.count("task.start") == kinds.count("task.complete") >= 2
    last_task = max(i for i, k in enumerate(kinds) if k == "task.complete")
    assert "content.delta" in kinds[last_task:]  # the summary
    assert events[-1]["type"] == "run.complete"


async def test_confirm_dialog_pauses_until_submit(gateway: Gateway) -> None:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        async for event in gateway.stream(
            {"agentKey": "demo_react_ui_actions", "message": "please confirm the trip"}
        ):
            events.append(event)
            if event["type"] == "tool.end":
                start = next(e for e in events if e["type"] == "tool.start")
                assert start["toolName"] == "confirm_dialog" and start["toolType"] == "html"
                body = {"runId": start["runId"], "toolId": start["toolId"], "params": {"confirmed": True}}
                _, first = await gateway.post("/api/ap/submit", body)
                _, second = await gateway.post("/api/ap/submit", body)
                assert first["data"]["status"] == "accepted"
                assert second["data"]["status"] == "unmatched"
    assert events[-1]["type"] == "run.complete"
    assert results(events)[0] == {"confirmed": True}


async def test_slow_demo_can_be_cancelled(gateway: Gateway, provider: ScriptedProvider) -> None:
    provider.slow_delay_s = 0.05
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        async for event in gateway.stream({"agentKey": "demo_oneshot", "message": "tell me something slow"}):
            events.append(event)
            if (
                event["type"] == "content.delta"
                and len([e for e in events if e["type"] == "content.delta"]) == 3
            ):
                run_id = next(e for e in events if e["type"] == "run.start")["runId"]
                await gateway.post("/api/ap/cancel", {"runId": run_id})
        await asyncio.wait_for(provider.client_closed.wait(), 5)
    assert events[-1]["type"] == "run.cancel"


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentgw", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_validate_cli_on_shipped_and_broken_catalog(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "MEMORY_"))}
    ok = _cli(["validate"], REPO, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "agents"
    broken.mkdir()
    (broken / "bad.json").write_text('{"mode": "REACT", "modelConfig": {"modelKey": "demo"}, "react": {}}')
    failed = _cli(["validate"], REPO, {**env, "AGENT_EXTERNAL_DIR": str(broken)})
    assert failed.returncode == 1
    assert "bad.json: react.systemPrompt:" in failed.stdout
