"""Tools inside real runs: skill disclosure, web_search sources, templates, escapes the model sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.providers.scripted import Finish, ScriptedProvider, Text, ToolCall
from tests.conftest import GatewayFactory
from tests.test_query_stream import assert_contract
from tests.test_tool_web_search import API_KEY, FakeExa, exa  # noqa: F401  (fixture)

SKILLS = {
    "mode": "REACT",
    "modelConfig": {"modelKey": "demo"},
    "toolConfig": {"backends": ["_skill_run_script_"]},
    "skills": ["math_basic"],
    "skillConfig": {"skills": ["text_utils"]},
    "react": {"systemPrompt": "Use skills for exact answers."},
}


def system_of(provider: ScriptedProvider, i: int) -> str:
    content: str = provider.requests[i].body["messages"][0]["content"]
    return content


async def test_skill_catalog_then_disclosure_once(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    gw = await make_gateway({"s": SKILLS})
    run = {
        "skill": "math_basic",
        "script": "scripts/calc.py",
        "args": ["--op", "mul", "--a", "6", "--b", "7"],
    }
    provider.enqueue([ToolCall("_skill_run_script_", run), Finish("tool_calls")])
    provider.enqueue([ToolCall("_skill_run_script_", run), Finish("tool_calls")])
    provider.enqueue([Text("42")])
    events = await gw.query({"agentKey": "s", "message": "6 times 7"})
    assert_contract(events)
    result = orjson.loads(next(e["result"] for e in events if e["type"] == "tool.result"))
    assert result["ok"] is True and orjson.loads(result["stdout"])["result"] == 42
    body = (dirs["skills"] / "math_basic" / "SKILL.md").read_text().split("---", 2)[-1].strip()
    first, second, third = (system_of(provider, i) for i in range(3))
    # The catalog names both skills (merged from skills + skillConfig.skills) from the start…
    for prompt in (first, second):
        assert "skillId: math_basic" in prompt and "skillId: text_utils" in prompt
    # …and the full instructions appear only after the first use, once per run.
    assert body[:80] not in first
    assert second.count(body[:80]) == 1 and third.count(body[:80]) == 1
    assert "text_utils" not in second.split(body[:80])[1]


async def test_skill_script_escape_is_a_tool_error(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"s": SKILLS})
    provider.enqueue([ToolCall("_skill_run_script_", {"skill": "math_basic", "script": "../../etc/passwd"})])
    provider.enqueue([Text("could not")])
    events = await gw.query({"agentKey": "s", "message": "escape"})
    result = orjson.loads(next(e["result"] for e in events if e["type"] == "tool.result"))
    assert result["ok"] is False and result["error"]
    assert events[-1]["type"] == "run.complete"


@pytest.mark.parametrize(
    "command",
    [
        "cat ../../etc/passwd",
        "ls /etc",
        "echo $(id)",
        "ls; id",
        "ls | wc",
        "FOO=1 ls",
        "cat x > y",
        "ls && id",
    ],
)
async def test_bash_escapes_reach_the_model_as_refusals(
    make_gateway: GatewayFactory, provider: ScriptedProvider, command: str
) -> None:
    agent = {**SKILLS, "toolConfig": {"backends": ["_bash_"]}, "skills": [], "skillConfig": {"skills": []}}
    gw = await make_gateway({"b": agent})
    provider.enqueue([ToolCall("_bash_", {"command": command}), Finish("tool_calls")])
    provider.enqueue([Text("refused")])
    events = await gw.query({"agentKey": "b", "message": "try"})
    result = next(e["result"] for e in events if e["type"] == "tool.result")
    assert result.startswith("exitCode: -1\nmode: strict")
    assert "stderr:\n" in result and result.split("stderr:\n", 1)[1].strip()
    assert events[-1]["type"] == "run.complete"


async def test_web_search_emits_sources(
    make_gateway: GatewayFactory,
    provider: ScriptedProvider,
    exa: FakeExa,  # noqa: F811
) -> None:
    agent = {
        **SKILLS,
        "toolConfig": {"backends": ["web_search"]},
        "skills": [],
        "skillConfig": {"skills": []},
    }
    gw = await make_gateway(
        {"w": agent},
        **{"agent.web-search.exa.api-key": API_KEY, "agent.web-search.exa.base-url": exa.url},
    )
    provider.enqueue(
        [ToolCall("web_search", {"query": "agent gateways", "numResults": 2}), Finish("tool_calls")]
    )
    provider.enqueue([Text("found two")])
    events = await gw.query({"agentKey": "w", "message": "search"})
    assert_contract(events)
    sources = [e for e in events if e["type"] == "source.snapshot"]
    assert [s["url"] for s in sources] == ["https://example.org/0", "https://example.org/1"]
    assert all(s["runId"] == events[2]["runId"] for s in sources)
    result = orjson.loads(next(e["result"] for e in events if e["type"] == "tool.result"))
    assert result["ok"] is True and len(result["results"]) == 2


async def test_template_chain_resolves_before_execution(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    agent: dict[str, Any] = {
        **SKILLS,
        "toolConfig": {"backends": ["city_datetime", "mock_city_weather"]},
        "skills": [],
        "skillConfig": {"skills": []},
    }
    gw = await make_gateway({"t": agent})
    provider.enqueue([ToolCall("city_datetime", {"city": "Tokyo"}), Finish("tool_calls")])
    provider.enqueue(
        [
            ToolCall(
                "mock_city_weather", {"city": "{{city_datetime.city}}", "date": "{{city_datetime.date-1d}}"}
            )
        ]
    )
    provider.enqueue(
        [ToolCall("mock_city_weather", {"city": "x", "date": "{{nothing.date}}"}), Finish("tool_calls")]
    )
    provider.enqueue([Text("ok")])
    events = await gw.query({"agentKey": "t", "message": "weather yesterday in Tokyo"})
    now, weather, bad = (orjson.loads(e["result"]) for e in events if e["type"] == "tool.result")
    from datetime import date, timedelta

    assert weather["city"] == "Tokyo"
    assert weather["date"] == (date.fromisoformat(now["date"]) - timedelta(days=1)).isoformat()
    assert bad["ok"] is False and "nothing.date" in bad["error"]
