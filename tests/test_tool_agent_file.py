"""``agent_file_create``: validated by the real catalog, written atomically, keys stay file names."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.catalog.registry import Catalog
from agentgw.settings import Settings, load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROMPT = "You are the test default prompt."


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, Path]:
    dirs = {}
    for name in ("agents", "models", "tools", "skills", "viewports", "prompts"):
        if (REPO / name).is_dir() and name != "agents":
            shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (tmp_path / name).mkdir()
        dirs[name] = tmp_path / name
    return dirs


def settings_for(dirs: dict[str, Path]) -> Settings:
    return load_settings(
        files=(),
        environ={},
        overrides={
            "agent.catalog.external-dir": str(dirs["agents"]),
            "agent.model.external-dir": str(dirs["models"]),
            "agent.capability.tools-external-dir": str(dirs["tools"]),
            "agent.skill.external-dir": str(dirs["skills"]),
            "agent.viewport.external-dir": str(dirs["viewports"]),
            "agent.prompts.external-dir": str(dirs["prompts"]),
            "agent.providers": {"demo": {"base-url": "http://127.0.0.1:1", "api-key": "k"}},
            "agent.tools.agent-file-create.default-system-prompt": DEFAULT_PROMPT,
        },
    )


@pytest.fixture
def ctx(workspace: dict[str, Path]) -> ToolContext:
    settings = settings_for(workspace)
    catalog = Catalog(settings, install_builtins=False)
    snapshot = catalog.load()
    return ToolContext(
        settings=settings,
        run_id="r",
        chat_id="c",
        tool_call_id="t",
        agents_dir=workspace["agents"],
        validate_agent=snapshot.validate_agent_text,
    )


async def call(ctx: ToolContext, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    text, ok = await execute_builtin("agent_file_create", args, ctx)
    return orjson.loads(text), ok


def reload_agent(dirs: dict[str, Path], key: str) -> Any:
    """What the catalog makes of the written file: the proof it is a valid agent."""
    snapshot = Catalog(settings_for(dirs), install_builtins=False).load()
    assert not [e for e in snapshot.errors if key in e.file], snapshot.errors
    return snapshot.agents[key]


async def test_creates_then_updates_an_agent(ctx: ToolContext, workspace: dict[str, Path]) -> None:
    args = {
        "key": "weather_helper",
        "name": "Weather helper",
        "icon": "emoji:🌦",
        "description": "Answers weather questions",
        "mode": "react",
        "modelConfig": {"modelKey": "demo"},
        "toolConfig": {"backends": ["city_datetime", "mock_city_weather"]},
        "skills": ["math_basic"],
    }
    res, ok = await call(ctx, args)
    assert ok
    assert res == {
        "ok": True,
        "key": "weather_helper",
        "file": "weather_helper.json",
        "created": True,
        "updated": False,
    }
    doc = orjson.loads((workspace["agents"] / "weather_helper.json").read_bytes())
    assert doc["key"] == "weather_helper" and doc["mode"] == "REACT"
    assert doc["icon"] == "emoji:🌦"
    assert doc["react"] == {"systemPrompt": DEFAULT_PROMPT}
    assert list(doc)[:4] == ["key", "name", "icon", "description"]
    agent = reload_agent(workspace, "weather_helper")
    assert agent.name == "Weather helper"

    res, ok = await call(ctx, {**args, "systemPrompt": "Be brief."})
    assert ok
    assert (res["created"], res["updated"]) == (False, True)
    doc = orjson.loads((workspace["agents"] / "weather_helper.json").read_bytes())
    assert doc["react"]["systemPrompt"] == "Be brief."
    assert sorted(p.name for p in workspace["agents"].iterdir()) == ["weather_helper.json"]


async def test_plan_execute_gets_both_stage_prompts(ctx: ToolContext, workspace: dict[str, Path]) -> None:
    res, ok = await call(
        ctx,
        {
            "agentId": "planner",
            "mode": "plan-execute",
            "modelConfig": {"modelKey": "demo"},
            "planExecute": {"execute": {"systemPrompt": "Execute carefully."}},
        },
    )
    assert ok, res
    doc = orjson.loads((workspace["agents"] / "planner.json").read_bytes())
    assert doc["mode"] == "PLAN_EXECUTE"
    assert doc["planExecute"]["plan"]["systemPrompt"] == DEFAULT_PROMPT
    assert doc["planExecute"]["execute"]["systemPrompt"] == "Execute carefully."
    assert doc["name"] == "planner"
    reload_agent(workspace, "planner")


async def test_invalid_definition_is_not_written(ctx: ToolContext, workspace: dict[str, Path]) -> None:
    res, ok = await call(
        ctx, {"key": "broken", "mode": "ONESHOT", "modelConfig": {"modelKey": "no-such-model"}}
    )
    assert not ok
    assert res["code"] == "invalid_agent"
    assert "no-such-model" in res["error"]
    legacy, _ = await call(ctx, {"key": "broken", "modelConfig": {"modelKey": "demo"}, "toolPolicy": "x"})
    assert legacy["code"] == "invalid_agent" and "toolPolicy" in legacy["error"]
    assert list(workspace["agents"].iterdir()) == []


@pytest.mark.parametrize("key", ["../evil", "a/b", ".hidden", "x" * 65, "evil.json", "名字", "-lead"])
async def test_unsafe_keys_are_refused(ctx: ToolContext, workspace: dict[str, Path], key: str) -> None:
    res, ok = await call(ctx, {"key": key, "modelConfig": {"modelKey": "demo"}})
    assert not ok
    assert res["code"] == "invalid_argument"
    assert res["error"].startswith("key: must match")
    assert list(workspace["agents"].iterdir()) == []
    assert not (workspace["agents"].parent / "evil.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "key: is required"),
        ({"key": "a", "mode": "SOMETIMES"}, "mode: must be one of"),
        ({"key": "a", "name": 5}, "name: must be a string"),
        ({"key": "a", "modelConfig": "demo"}, "modelConfig: must be an object"),
        ({"key": "a", "react": ["x"]}, "react: must be an object"),
        ({"key": "a", "skills": "math_basic"}, "skills: must be an array of skill ids"),
        ({"key": "a", "skills": [1]}, "skills: must be an array of skill ids"),
        (
            {"key": "a", "mode": "PLAN_EXECUTE", "planExecute": {"plan": "x"}},
            "planExecute.plan: must be an object",
        ),
        ({"key": "a", "description": "d" * 300_000}, "too large"),
    ],
)
async def test_bad_arguments(
    ctx: ToolContext, workspace: dict[str, Path], args: dict[str, Any], message: str
) -> None:
    res, ok = await call(ctx, args)
    assert not ok
    assert message in res["error"]
    assert list(workspace["agents"].iterdir()) == []


async def test_yaml_definition_of_the_same_key_is_not_shadowed(
    ctx: ToolContext, workspace: dict[str, Path]
) -> None:
    (workspace["agents"] / "mine.yaml").write_text("key: mine\n")
    res, ok = await call(ctx, {"key": "mine", "modelConfig": {"modelKey": "demo"}})
    assert not ok
    assert res["code"] == "agent_file_conflict"
    assert not (workspace["agents"] / "mine.json").exists()


async def test_without_a_validator_nothing_is_written(workspace: dict[str, Path]) -> None:
    ctx = ToolContext(
        settings=settings_for(workspace),
        run_id="r",
        chat_id="c",
        tool_call_id="t",
        agents_dir=workspace["agents"],
    )
    res, ok = await call(ctx, {"key": "a", "modelConfig": {"modelKey": "demo"}})
    assert not ok
    assert res["code"] == "validation_unavailable"
    assert list(workspace["agents"].iterdir()) == []


async def test_default_prompt_comes_from_settings(workspace: dict[str, Path]) -> None:
    settings = load_settings(files=(), environ={}, overrides={})
    seen: list[tuple[str, str]] = []

    def validator(key: str, text: str) -> list[str]:
        seen.append((key, text))
        return []

    ctx = ToolContext(
        settings=settings,
        run_id="r",
        chat_id="c",
        tool_call_id="t",
        agents_dir=workspace["agents"],
        validate_agent=validator,
    )
    res, ok = await call(ctx, {"key": "plain_one", "modelConfig": {"modelKey": "demo"}})
    assert ok, res
    doc = orjson.loads((workspace["agents"] / "plain_one.json").read_bytes())
    assert doc["plain"]["systemPrompt"] == settings.agent.tools.agent_file_create.default_system_prompt
    assert seen[0][0] == "plain_one"
    assert orjson.loads(seen[0][1]) == doc
