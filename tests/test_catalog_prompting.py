"""System prompt assembly, in the order of SPEC §11.5."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgw.catalog.prompting import assemble_system_prompt
from agentgw.catalog.snapshot import CatalogSnapshot
from tests.test_catalog_support import Workspace, plan_agent, react_agent


@pytest.fixture
def snap(tmp_path: Path) -> CatalogSnapshot:
    ws = Workspace(tmp_path).standard()
    ws.tools(
        "ui.frontend",
        {"type": "function", "name": "show_card", "description": "Card.", "afterCallHint": "no"},
    )
    ws.tools(
        "skill.backend",
        {"type": "function", "name": "_skill_run_script_", "description": "Run a skill\n script."},
    )
    ws.skill("alpha", "---\nname: Alpha\ndescription: First skill.\n---\nAlpha body.")
    ws.skill("beta", "---\nname: Beta\ndescription: Second\n skill.\n---\nBeta body.")
    for name, text in {
        "skill.catalogHeader": "SKILLS:",
        "skill.disclosureHeader": "DISCLOSED:",
        "skill.instructionsLabel": "INSTRUCTIONS:",
        "toolAppendix.toolDescriptionTitle": "TOOLS:",
        "toolAppendix.afterCallHintTitle": "HINTS:",
        "toolAppendix.callableToolsTitle": "CALLABLE:",
        "toolAppendix.referenceToolsTitle": "REFERENCE:",
    }.items():
        ws.write(f"prompts/{name}.md", text + "\n")
    ws.agent(
        "r",
        react_agent(
            react={"systemPrompt": "Be brief."},
            toolConfig={
                "backends": ["mock_city_weather", "city_datetime", "_skill_run_script_"],
                "frontends": ["show_card"],
            },
            skills=["beta", "alpha"],
        ),
    )
    ws.agent("bare", react_agent(react={"systemPrompt": "\nOnly this.\n"}))
    ws.agent(
        "p",
        plan_agent(
            toolConfig={"backends": ["mock_city_weather", "city_datetime"]},
            planExecute={
                "plan": {"systemPrompt": "Plan it.", "toolConfig": {"backends": ["city_datetime"]}},
                "execute": {
                    "systemPrompt": "Do it.",
                    "toolConfig": {"backends": ["mock_city_weather", "city_datetime", "_plan_get_tasks_"]},
                },
                "summary": {"systemPrompt": "Sum up."},
            },
        ),
    )
    snapshot = ws.load()
    assert snapshot.errors == ()
    return snapshot


def test_react_prompt_has_every_part_in_order(snap: CatalogSnapshot) -> None:
    agent = snap.agents["r"]
    text = assemble_system_prompt(agent, agent.stages["react"], snap)
    assert text == (
        "Be brief.\n\n"
        "SKILLS:\nskillId: beta\nname: Beta\ndescription: Second skill.\n---\nskillId: alpha\nname: Alpha\ndescription: First skill.\n\n"
        "TOOLS:\n- _skill_run_script_: Run a skill script.\n- city_datetime: Date and time of a city.\n"
        "- mock_city_weather: Weather of a city.\n\n"
        "HINTS:\n- mock_city_weather: Mention the mock tag."
    )


def test_disclosed_skills_come_after_the_catalog_once_each(snap: CatalogSnapshot) -> None:
    agent = snap.agents["r"]
    text = assemble_system_prompt(agent, agent.stages["react"], snap, ["ALPHA", "alpha", "unknown", "beta"])
    disclosure = "DISCLOSED:\nskillId: alpha\nname: Alpha\nINSTRUCTIONS:\nAlpha body.\n---\nskillId: beta\nname: Beta\nINSTRUCTIONS:\nBeta body."
    assert f"description: First skill.\n\n{disclosure}\n\nTOOLS:\n" in text
    assert text.count("Alpha body.") == 1


def test_empty_parts_are_left_out(snap: CatalogSnapshot) -> None:
    agent = snap.agents["bare"]
    assert assemble_system_prompt(agent, agent.stages["react"], snap) == "Only this."


def test_plan_stage_lists_reference_and_plan_tools_without_hints(snap: CatalogSnapshot) -> None:
    agent = snap.agents["p"]
    text = assemble_system_prompt(agent, agent.stages["plan"], snap)
    assert text == (
        "Plan it.\n\n"
        "TOOLS:\n- city_datetime: Date and time of a city.\n\n"
        "REFERENCE:\n- mock_city_weather: Weather of a city.\n\n"
        "CALLABLE:\n- _plan_add_tasks_: " + snap.tools["_plan_add_tasks_"].description
    )


def test_execute_stage_lists_its_tools_with_the_plan_tools_and_hints(snap: CatalogSnapshot) -> None:
    agent = snap.agents["p"]
    text = assemble_system_prompt(agent, agent.stages["execute"], snap)
    lines = text.split("\n")
    assert lines[:2] == ["Do it.", ""]
    tool_lines = lines[lines.index("TOOLS:") + 1 : lines.index("HINTS:") - 1]
    assert [line.split(":")[0] for line in tool_lines] == [
        "- _plan_get_tasks_",
        "- _plan_update_task_",
        "- city_datetime",
        "- mock_city_weather",
    ]
    assert text.endswith("HINTS:\n- mock_city_weather: Mention the mock tag.")


def test_summary_stage_has_no_tools(snap: CatalogSnapshot) -> None:
    agent = snap.agents["p"]
    assert assemble_system_prompt(agent, agent.stages["summary"], snap) == "Sum up."


def test_a_prompt_is_kept_per_snapshot_and_follows_edits(tmp_path: Path, snap: CatalogSnapshot) -> None:
    agent = snap.agents["r"]
    stage = agent.stages["react"]
    first = assemble_system_prompt(agent, stage, snap, ["alpha"])
    assert assemble_system_prompt(agent, stage, snap, ["alpha"]) is first  # kept, not rebuilt
    # Another set of skills used is another prompt.
    assert "Beta body." in assemble_system_prompt(agent, stage, snap, ["alpha", "beta"])
    assert "Beta body." not in assemble_system_prompt(agent, stage, snap, ["alpha"])
    # An edited skill is in the next snapshot's prompt; the old snapshot keeps its text.
    ws = Workspace(tmp_path)
    ws.skill("alpha", "---\nname: Alpha\ndescription: First skill.\n---\nAlpha, edited.")
    fresh = ws.load()
    edited = fresh.agents["r"]
    assert "Alpha, edited." in assemble_system_prompt(edited, edited.stages["react"], fresh, ["alpha"])
    assert assemble_system_prompt(agent, stage, snap, ["alpha"]) is first
