"""The shipped catalog is valid and covers every mode and tool kind; ``validate`` reports problems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentgw.catalog.capabilities import BUILTIN_BACKEND_TOOLS, PLAN_TOOLS
from agentgw.catalog.registry import Catalog
from agentgw.catalog.snapshot import CatalogSnapshot
from agentgw.catalog.validate import validate_folders
from agentgw.settings import Settings, load_settings
from tests.test_catalog_support import Workspace, react_agent

REPO = Path(__file__).resolve().parent.parent


def shipped_settings() -> Settings:
    folders = {
        "agent.catalog.external-dir": "agents",
        "agent.model.external-dir": "models",
        "agent.capability.tools-external-dir": "tools",
        "agent.skill.external-dir": "skills",
        "agent.viewport.external-dir": "viewports",
        "agent.prompts.external-dir": "prompts",
    }
    overrides = {key: str(REPO / folder) for key, folder in folders.items()}
    return load_settings(files=(str(REPO / "config" / "application.yml"),), environ={}, overrides=overrides)


@pytest.fixture(scope="module")
def shipped() -> CatalogSnapshot:
    return Catalog(shipped_settings(), install_builtins=False).load()


def test_validate_finds_no_problem_in_the_shipped_catalog() -> None:
    assert [str(e) for e in validate_folders(shipped_settings())] == []


def test_shipped_catalog_loads_without_errors_or_warnings(shipped: CatalogSnapshot) -> None:
    assert shipped.errors == () and shipped.warnings == ()
    assert all(status.status == "ok" for status in shipped.statuses.values())


def test_every_agent_runs_on_the_demo_provider(shipped: CatalogSnapshot) -> None:
    for agent in shipped.agents.values():
        for stage in agent.stages.values():
            assert stage.model.model.provider == "demo", (agent.key, stage.name)
    assert shipped.default_agent_key() == "demo_oneshot"


def test_shipped_agents_cover_modes_and_tool_kinds(shipped: CatalogSnapshot) -> None:
    agents = shipped.agents
    assert {a.mode for a in agents.values()} == {"ONESHOT", "REACT", "PLAN_EXECUTE"}
    assert {a.stages["plan"].deep_thinking for a in agents.values() if a.mode == "PLAN_EXECUTE"} == {
        True,
        False,
    }
    used = {tool.name for a in agents.values() for stage in a.stages.values() for tool in stage.tools}
    assert {"_bash_", "_skill_run_script_", "agent_file_create", "web_search", "confirm_dialog"} <= used
    assert {"switch_theme", "launch_fireworks", "show_modal", "mock_sensitive_data_detector"} <= used
    assert any(a.skills for a in agents.values())
    assert any(a.approval for a in agents.values())
    assert any(
        "{{city_datetime.date+1d}}" in a.stages["react"].system_prompt
        for a in agents.values()
        if a.mode == "REACT"
    )
    overridden = [a for a in agents.values() if len({s.model.model.key for s in a.stages.values()}) > 1]
    assert overridden, "one agent shows a stage modelConfig override"
    assert any(a.file.endswith(".yaml") for a in agents.values())


def test_every_builtin_backend_tool_has_a_capability_file(shipped: CatalogSnapshot) -> None:
    for name in BUILTIN_BACKEND_TOOLS - set(PLAN_TOOLS):
        tool = shipped.tools[name]
        assert tool.kind == "backend" and tool.file == f"tools/{name}.backend"
    params = {name: set(shipped.tools[name].parameters["properties"]) for name in BUILTIN_BACKEND_TOOLS}
    assert params["_bash_"] == {"command"}
    assert params["_skill_run_script_"] == {"skill", "script", "pythonCode", "args", "timeoutMs"}
    assert params["city_datetime"] == {"city"}
    assert params["mock_city_weather"] == {"city", "date"}
    assert params["web_search"] == {"query", "numResults"}
    assert shipped.tools["mock_sensitive_data_detector"].requires_approval is True


def test_frontend_tools_actions_and_viewports(shipped: CatalogSnapshot) -> None:
    for name, tool_type in (
        ("confirm_dialog", "html"),
        ("show_weather_card", "html"),
        ("trip_request_form", "qlc"),
    ):
        tool = shipped.tools[name]
        assert (tool.kind, tool.tool_key, tool.tool_type) == ("frontend", name, tool_type)
    for name in ("switch_theme", "launch_fireworks", "show_modal"):
        assert shipped.tools[name].kind == "action"
    for key in ("confirm_dialog", "show_weather_card"):
        html = shipped.viewports[key].html or ""
        assert '"tool_init"' in html and '"frontend_submit"' in html and "window.parent.postMessage" in html
    form = shipped.viewports["trip_request_form"]
    assert form.type == "qlc" and form.data is not None and form.data["schema"]["type"] == "object"


def test_shipped_models_and_builtins_agree(shipped: CatalogSnapshot) -> None:
    builtin = REPO / "agentgw" / "builtin_models"
    for path in builtin.glob("*.json"):
        assert (REPO / "models" / path.name).read_bytes() == path.read_bytes(), path.name
    expected = {
        "bailian-qwen3-max": ("bailian", "OPENAI"),
        "siliconflow-deepseek-v3": ("siliconflow", "OPENAI"),
        "newapi-gpt-4o-mini": ("newapi", "NEWAPI_OPENAI_COMPATIBLE"),
        "openai-gpt-4o-mini": ("openai", "OPENAI"),
        "anthropic-claude-sonnet": ("anthropic", "ANTHROPIC"),
        "demo": ("demo", "OPENAI"),
        "demo-anthropic": ("demo", "ANTHROPIC"),
    }
    assert {k: (m.provider, m.protocol) for k, m in shipped.models.items()} == expected
    assert shipped.models["demo"].model_id == "demo"


def test_shipped_prompt_files_use_the_task_placeholders(shipped: CatalogSnapshot) -> None:
    template = shipped.prompts.task_execution_prompt_template
    assert set(re.findall(r"\{\{(\w+)\}\}", template)) == {"task_list", "task_id", "task_description"}


def test_validate_reports_file_and_field_of_each_problem(tmp_path: Path) -> None:
    ws = Workspace(tmp_path).standard()
    ws.agent("ok", react_agent())
    ws.agent("legacy", react_agent(toolPolicy="x"))
    ws.agent("refs", react_agent(toolConfig={"backends": ["nope"]}, skills=["ghost"]))
    ws.write("tools/broken.frontend", "{ nope")
    ws.write("models/half.json", {"key": "half", "provider": "p1"})
    errors = validate_folders(ws.settings)
    got = sorted((e.file, e.field) for e in errors)
    assert got == [
        ("agents/legacy.json", "toolPolicy"),
        ("agents/refs.json", "skills"),
        ("agents/refs.json", "toolConfig.backends"),
        ("models/half.json", "modelId"),
        ("models/half.json", "protocol"),
        ("tools/broken.frontend", "(syntax)"),
    ]
    assert all(str(e).startswith(f"{e.file}: {e.field}: ") for e in errors)
    # validate writes nothing: the built-in models are checked without being installed
    assert sorted(p.name for p in ws.dirs["models"].iterdir()) == ["half.json", "m1.json", "m2.json"]
