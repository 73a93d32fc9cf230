"""Agent definition rules (SPEC §3.1, §11.5) on real files in temp folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgw.catalog.types import Budget, CallBudget
from tests.test_catalog_support import Workspace, errors_of, plan_agent, react_agent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path).standard()


# --- modes and stage prompts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"mode": "ONESHOT", "modelConfig": {"modelKey": "m1"}}, "plain.systemPrompt"),
        (
            {"mode": "ONESHOT", "modelConfig": {"modelKey": "m1"}, "plain": {"systemPrompt": "  "}},
            "plain.systemPrompt",
        ),
        (
            {"mode": "REACT", "modelConfig": {"modelKey": "m1"}, "plain": {"systemPrompt": "x"}},
            "react.systemPrompt",
        ),
        (
            {
                "mode": "PLAN_EXECUTE",
                "modelConfig": {"modelKey": "m1"},
                "planExecute": {"plan": {"systemPrompt": "p"}},
            },
            "planExecute.execute.systemPrompt",
        ),
        (
            {
                "mode": "PLAN_EXECUTE",
                "modelConfig": {"modelKey": "m1"},
                "planExecute": {"execute": {"systemPrompt": "e"}},
            },
            "planExecute.plan.systemPrompt",
        ),
    ],
)
def test_mode_requires_its_stage_prompt(ws: Workspace, doc: dict[str, object], field: str) -> None:
    ws.agent("a", doc)
    snap = ws.load()
    assert "a" not in snap.agents
    assert (field, f"is required for mode {doc['mode']}") in errors_of(snap, "agents/a.json")
    assert snap.statuses["a"].status == "error"


def test_summary_is_optional_and_defaults_to_the_execute_prompt(ws: Workspace) -> None:
    ws.agent("p", plan_agent())
    agent = ws.load().agents["p"]
    assert set(agent.stages) == {"plan", "execute", "summary"}
    assert agent.stages["summary"].system_prompt == "Execute."
    assert agent.stages["summary"].tools == ()


@pytest.mark.parametrize(
    ("written", "mode"), [("react", "REACT"), ("Plan-Execute", "PLAN_EXECUTE"), (" oneshot ", "ONESHOT")]
)
def test_mode_is_case_insensitive_and_accepts_dashes(ws: Workspace, written: str, mode: str) -> None:
    doc = {
        "mode": written,
        "modelConfig": {"modelKey": "m1"},
        "plain": {"systemPrompt": "x"},
        "react": {"systemPrompt": "x"},
        "planExecute": {"plan": {"systemPrompt": "p"}, "execute": {"systemPrompt": "e"}},
    }
    ws.agent("a", doc)
    assert ws.load().agents["a"].mode == mode


def test_mode_is_required_and_checked(ws: Workspace) -> None:
    ws.agent("nomode", {"modelConfig": {"modelKey": "m1"}, "react": {"systemPrompt": "x"}})
    ws.agent("badmode", react_agent(mode="LOOP"))
    snap = ws.load()
    assert ("mode", "is required") in errors_of(snap, "nomode")
    [(field, reason)] = errors_of(snap, "badmode")
    assert field == "mode" and "PLAN_EXECUTE" in reason


# --- modelConfig inheritance -------------------------------------------------------------------


def test_stage_model_config_replaces_the_top_level_one_as_a_whole(ws: Workspace) -> None:
    ws.agent(
        "p",
        plan_agent(
            modelConfig={
                "modelKey": "m1",
                "temperature": 0.7,
                "reasoning": {"enabled": True, "effort": "high"},
            },
            planExecute={
                "plan": {"systemPrompt": "Plan.", "modelConfig": {"modelKey": "m2"}},
                "execute": {"systemPrompt": "Execute."},
            },
        ),
    )
    agent = ws.load().agents["p"]
    plan, execute = agent.stages["plan"].model, agent.stages["execute"].model
    assert (plan.model.key, plan.temperature, plan.reasoning.enabled, plan.reasoning.effort) == (
        "m2",
        None,
        False,
        "MEDIUM",
    )
    assert (execute.model.key, execute.temperature, execute.reasoning.enabled, execute.reasoning.effort) == (
        "m1",
        0.7,
        True,
        "HIGH",
    )
    assert agent.stages["summary"].model.model.key == "m1"


def test_a_model_key_in_one_stage_only_leaves_the_others_without_a_model(ws: Workspace) -> None:
    ws.agent(
        "p",
        {
            "mode": "PLAN_EXECUTE",
            "planExecute": {
                "plan": {"systemPrompt": "P", "modelConfig": {"modelKey": "m1"}},
                "execute": {"systemPrompt": "E"},
            },
        },
    )
    snap = ws.load()
    fields = [field for field, _ in errors_of(snap, "agents/p.json")]
    assert fields == ["planExecute.execute.modelConfig", "planExecute.summary.modelConfig"]


def test_top_level_model_may_be_omitted_when_the_stage_has_one(ws: Workspace) -> None:
    ws.agent("r", {"mode": "REACT", "react": {"systemPrompt": "x", "modelConfig": {"modelKey": "m2"}}})
    assert ws.load().agents["r"].stages["react"].model.model.key == "m2"


def test_at_least_one_model_key_is_required(ws: Workspace) -> None:
    ws.agent("r", {"mode": "REACT", "modelConfig": {"temperature": 0.1}, "react": {"systemPrompt": "x"}})
    snap = ws.load()
    assert errors_of(snap, "agents/r.json") == [
        ("modelConfig.modelKey", "at least one modelConfig.modelKey is required (top level or a stage)")
    ]


def test_stage_model_config_without_model_key_is_an_error_even_with_a_top_level_key(ws: Workspace) -> None:
    ws.agent("r", react_agent(react={"systemPrompt": "x", "modelConfig": {"temperature": 0.2}}))
    [(field, reason)] = errors_of(ws.load(), "agents/r.json")
    assert field == "react.modelConfig.modelKey"
    assert "replaces the top-level one as a whole" in reason


def test_unknown_model_and_unconfigured_provider_are_named(ws: Workspace) -> None:
    ws.model("far", provider="nowhere")
    ws.agent("a", react_agent(modelConfig={"modelKey": "ghost"}))
    ws.agent("b", react_agent(modelConfig={"modelKey": "far"}))
    snap = ws.load()
    [(field, reason)] = errors_of(snap, "agents/a.json")
    assert field == "modelConfig.modelKey" and "unknown model `ghost`" in reason
    [(field, reason)] = errors_of(snap, "agents/b.json")
    assert "provider `nowhere`" in reason and "agent.providers.nowhere" in reason


def test_model_fields_that_belong_in_models_are_rejected(ws: Workspace) -> None:
    ws.agent("a", react_agent(modelConfig={"modelKey": "m1", "provider": "p1"}))
    assert errors_of(ws.load(), "agents/a.json") == [
        ("modelConfig.provider", "unknown field `provider` in modelConfig")
    ]


# --- toolConfig inheritance and plan tools ---------------------------------------------------


def test_tool_config_is_inherited_cleared_by_null_and_plan_tools_are_forced(ws: Workspace) -> None:
    ws.agent(
        "p",
        plan_agent(
            toolConfig={"backends": ["city_datetime", "mock_city_weather"]},
            planExecute={
                "plan": {"systemPrompt": "P", "toolConfig": None},
                "execute": {"systemPrompt": "E", "toolConfig": None},
                "summary": {"systemPrompt": "S"},
            },
        ),
    )
    ws.agent(
        "q",
        plan_agent(
            toolConfig={"backends": ["city_datetime"]},
            planExecute={
                "plan": {"systemPrompt": "P"},
                "execute": {
                    "systemPrompt": "E",
                    "toolConfig": {"backends": ["mock_city_weather", "_plan_get_tasks_"]},
                },
            },
        ),
    )
    snap = ws.load()
    names = {k: [t.name for t in s.tools] for k, s in snap.agents["p"].stages.items()}
    assert names == {"plan": ["_plan_add_tasks_"], "execute": ["_plan_update_task_"], "summary": []}
    names = {k: [t.name for t in s.tools] for k, s in snap.agents["q"].stages.items()}
    assert names == {
        "plan": ["city_datetime", "_plan_add_tasks_"],
        "execute": ["mock_city_weather", "_plan_update_task_", "_plan_get_tasks_"],
        "summary": [],
    }


def test_react_stage_tool_config_null_clears_and_missing_inherits(ws: Workspace) -> None:
    ws.agent(
        "cleared",
        react_agent(
            toolConfig={"backends": ["city_datetime"]}, react={"systemPrompt": "x", "toolConfig": None}
        ),
    )
    ws.agent("inherits", react_agent(toolConfig={"backends": ["city_datetime"]}))
    snap = ws.load()
    assert snap.agents["cleared"].stages["react"].tools == ()
    assert [t.name for t in snap.agents["inherits"].stages["react"].tools] == ["city_datetime"]


def test_unknown_or_misplaced_tools_are_named(ws: Workspace) -> None:
    ws.tools("ui.action", {"type": "function", "name": "switch_theme", "description": "Theme."})
    ws.agent(
        "a",
        react_agent(
            toolConfig={"backends": ["nope", "switch_theme", "_plan_add_tasks_"], "frontends": ["ghost_card"]}
        ),
    )
    problems = errors_of(ws.load(), "agents/a.json")
    assert (
        "toolConfig.backends",
        "unknown backend tool `nope` (no tools/*.backend file defines it)",
    ) in problems
    assert (
        "toolConfig.backends",
        "`switch_theme` is a action tool; list it under toolConfig.actions",
    ) in problems
    assert (
        "toolConfig.backends",
        "`_plan_add_tasks_` is a plan tool; it is only available in PLAN_EXECUTE",
    ) in problems
    assert (
        "toolConfig.frontends",
        "unknown frontend tool `ghost_card` (no tools/*.frontend file defines it)",
    ) in problems


# --- skills ---------------------------------------------------------------------------------------


def test_skills_are_trimmed_lower_cased_and_merged_in_order(ws: Workspace) -> None:
    for skill_id in ("alpha", "beta", "gamma"):
        ws.skill(skill_id, f"---\nname: {skill_id.title()}\n---\nDo {skill_id}.")
    ws.agent("a", react_agent(skills=[" Beta ", "alpha"], skillConfig={"skills": ["ALPHA", "gamma", "beta"]}))
    assert ws.load().agents["a"].skills == ("beta", "alpha", "gamma")


def test_unknown_skill_is_named(ws: Workspace) -> None:
    ws.agent("a", react_agent(skillConfig={"skills": ["Missing_One"]}))
    assert errors_of(ws.load(), "agents/a.json") == [
        ("skillConfig.skills", "unknown skill `missing_one` (no skills/missing_one/SKILL.md)")
    ]


# --- deepThinking and legacy fields ----------------------------------------------------------------


@pytest.mark.parametrize("stage", ["execute", "summary"])
@pytest.mark.parametrize("value", [True, False])
def test_deep_thinking_outside_the_plan_stage_is_rejected_whatever_its_value(
    ws: Workspace, stage: str, value: bool
) -> None:
    doc = plan_agent()
    doc["planExecute"][stage] = {"systemPrompt": "x", "deepThinking": value}
    ws.agent("p", doc)
    snap = ws.load()
    assert "p" not in snap.agents
    assert (
        f"planExecute.{stage}.deepThinking",
        "deepThinking is only allowed in planExecute.plan",
    ) in errors_of(snap, "agents/p.json")


def test_deep_thinking_in_the_plan_stage_is_read(ws: Workspace) -> None:
    doc = plan_agent()
    doc["planExecute"]["plan"]["deepThinking"] = True
    ws.agent("p", doc)
    agent = ws.load().agents["p"]
    assert agent.stages["plan"].deep_thinking is True
    assert agent.stages["execute"].deep_thinking is False


LEGACY = [
    *[
        ({name: "x"}, name)
        for name in (
            "verify",
            "output",
            "toolPolicy",
            "reasoning",
            "tools",
            "deepThink",
            "systemPrompt",
            "model",
            "providerKey",
        )
    ],
    ({"modelConfig": {"modelKey": "m1", "providerKey": "p1"}}, "modelConfig.providerKey"),
    ({"modelConfig": {"modelKey": "m1", "model": "qwen"}}, "modelConfig.model"),
    *[
        ({"react": {"systemPrompt": "x", name: "v"}}, f"react.{name}")
        for name in ("providerKey", "model", "reasoning", "tools")
    ],
    (
        {"react": {"systemPrompt": "x", "modelConfig": {"modelKey": "m1", "providerKey": "p"}}},
        "react.modelConfig.providerKey",
    ),
    *[
        ({"budget": {name: 3}}, f"budget.{name}")
        for name in ("maxModelCalls", "maxToolCalls", "maxSteps", "timeoutMs", "retryCount")
    ],
    *[
        ({"runtimePrompts": {name: "x"}}, f"runtimePrompts.{name}")
        for name in ("verify", "finalAnswer", "oneshot", "react")
    ],
    *[
        ({"runtimePrompts": {"planExecute": {name: "x"}}}, f"runtimePrompts.planExecute.{name}")
        for name in (
            "executeToolsTitle",
            "planCallableToolsTitle",
            "draftInstructionBlock",
            "generateInstructionBlockFromDraft",
            "generateInstructionBlockDirect",
            "taskRequireToolUserPrompt",
            "taskMultipleToolsUserPrompt",
            "taskUpdateNoProgressUserPrompt",
            "taskContinueUserPrompt",
            "updateRoundPromptTemplate",
            "updateRoundMultipleToolsUserPrompt",
            "allStepsCompletedUserPrompt",
        )
    ],
]


@pytest.mark.parametrize(("extra", "field"), LEGACY, ids=[field for _, field in LEGACY])
def test_legacy_fields_reject_the_file_naming_the_field(
    ws: Workspace, extra: dict[str, object], field: str
) -> None:
    ws.agent("old", react_agent(**extra))
    snap = ws.load()
    assert "old" not in snap.agents
    problems = errors_of(snap, "agents/old.json")
    assert len(problems) == 1
    got_field, reason = problems[0]
    assert got_field == field
    assert reason.startswith(f"legacy field `{field}` is not supported; ")


def test_legacy_fields_in_plan_execute_stages(ws: Workspace) -> None:
    doc = plan_agent()
    doc["planExecute"]["plan"]["tools"] = ["x"]
    doc["planExecute"]["execute"]["providerKey"] = "p"
    ws.agent("old", doc)
    fields = [field for field, _ in errors_of(ws.load(), "agents/old.json")]
    assert fields == ["planExecute.plan.tools", "planExecute.execute.providerKey"]


def test_every_problem_of_a_file_is_reported_at_once(ws: Workspace) -> None:
    ws.agent(
        "many",
        {
            "verify": True,
            "mode": "REACT",
            "react": {"systemPrompt": "x"},
            "budget": {"bogus": 1},
            "colour": "red",
        },
    )
    fields = {field for field, _ in errors_of(ws.load(), "agents/many.json")}
    assert fields == {"verify", "budget.bogus", "colour"}


# --- steps, budgets, toolChoice --------------------------------------------------------------------


def test_max_steps_defaults_and_overrides(ws: Workspace) -> None:
    ws.agent("r", react_agent())
    ws.agent("r9", react_agent(react={"systemPrompt": "x", "maxSteps": 9}))
    ws.agent("p", plan_agent())
    doc = plan_agent()
    doc["planExecute"]["maxSteps"] = 4
    ws.agent("p4", doc)
    snap = ws.load()
    assert snap.agents["r"].react_max_steps == 6
    assert snap.agents["r9"].react_max_steps == 9
    assert snap.agents["p"].plan_max_steps == 15
    assert snap.agents["p4"].plan_max_steps == 4


def test_budget_defaults_per_mode(ws: Workspace) -> None:
    ws.agent("o", {"mode": "ONESHOT", "modelConfig": {"modelKey": "m1"}, "plain": {"systemPrompt": "x"}})
    ws.agent("r", react_agent())
    ws.agent("p", plan_agent())
    snap = ws.load()
    assert snap.agents["o"].budget == Budget(30_000, CallBudget(3, 30_000), CallBudget(5, 30_000))
    assert snap.agents["r"].budget == Budget(120_000, CallBudget(15, 60_000), CallBudget(20, 120_000))
    assert snap.agents["p"].budget == Budget(300_000, CallBudget(30, 120_000), CallBudget(50, 300_000))


def test_fields_missing_from_a_budget_take_the_react_values(ws: Workspace) -> None:
    budget = {"model": {"maxCalls": 2}, "tool": {"retryCount": 1}, "maxTokens": 5000, "maxPoints": 12.5}
    ws.agent(
        "o",
        {
            "mode": "ONESHOT",
            "modelConfig": {"modelKey": "m1"},
            "plain": {"systemPrompt": "x"},
            "budget": budget,
        },
    )
    assert ws.load().agents["o"].budget == Budget(
        120_000, CallBudget(2, 60_000, 0), CallBudget(20, 120_000, 1), max_tokens=5000, max_points=12.5
    )


def test_unknown_budget_keys_reject_the_agent(ws: Workspace) -> None:
    ws.agent("b", react_agent(budget={"runTimeoutMs": 1000, "maxWallClock": 5}))
    ws.agent("c", react_agent(budget={"model": {"maxCall": 5}}))
    snap = ws.load()
    assert errors_of(snap, "agents/b.json") == [
        ("budget.maxWallClock", "unknown budget field `maxWallClock`")
    ]
    assert errors_of(snap, "agents/c.json") == [
        ("budget.model.maxCall", "unknown field `maxCall` in budget.model")
    ]


def test_tool_choice_defaults(ws: Workspace) -> None:
    oneshot = {"mode": "ONESHOT", "modelConfig": {"modelKey": "m1"}, "plain": {"systemPrompt": "x"}}
    ws.agent("o_plain", oneshot)
    ws.agent("o_tools", {**oneshot, "toolConfig": {"backends": ["city_datetime"]}})
    ws.agent("r", react_agent())
    ws.agent("p", plan_agent())
    ws.agent("forced", react_agent(toolChoice="required", toolConfig={"backends": ["city_datetime"]}))
    snap = ws.load()
    choices = {key: agent.tool_choice for key, agent in snap.agents.items()}
    assert choices == {"forced": "REQUIRED", "o_plain": "NONE", "o_tools": "AUTO", "p": "AUTO", "r": "AUTO"}


def test_required_tool_choice_without_tools_is_an_error(ws: Workspace) -> None:
    ws.agent("r", react_agent(toolChoice="REQUIRED"))
    assert errors_of(ws.load(), "agents/r.json") == [
        ("toolChoice", "REQUIRED needs at least one tool in toolConfig")
    ]


# --- approval policy ------------------------------------------------------------------------------


def test_approval_accepts_list_and_map_forms(ws: Workspace) -> None:
    tools = {"backends": ["city_datetime", "mock_city_weather"]}
    rules = [
        {"tool": "mock_city_weather", "policy": "DENY", "match": {"city": "Atlantis"}},
        {"tool": "*", "policy": "confirm"},
    ]
    ws.agent("listed", react_agent(toolConfig={**tools, "approval": rules}))
    mapped = {
        "mock_city_weather": [{"policy": "deny", "match": {"city": "Atlantis"}}, "auto"],
        "city_datetime": "confirm",
    }
    ws.agent("mapped", react_agent(toolConfig={**tools, "approval": mapped}))
    snap = ws.load()
    listed = [(r.tool, r.policy, r.match) for r in snap.agents["listed"].approval]
    assert listed == [("mock_city_weather", "deny", {"city": "Atlantis"}), ("*", "confirm", None)]
    mapped_rules = [(r.tool, r.policy, r.match) for r in snap.agents["mapped"].approval]
    assert mapped_rules == [
        ("mock_city_weather", "deny", {"city": "Atlantis"}),
        ("mock_city_weather", "auto", None),
        ("city_datetime", "confirm", None),
    ]


def test_approval_rules_are_checked(ws: Workspace) -> None:
    ws.agent(
        "bad_policy",
        react_agent(toolConfig={"backends": ["city_datetime"], "approval": {"city_datetime": "maybe"}}),
    )
    ws.agent(
        "bad_tool",
        react_agent(
            toolConfig={"backends": ["city_datetime"], "approval": [{"tool": "web_search", "policy": "deny"}]}
        ),
    )
    snap = ws.load()
    [(field, reason)] = errors_of(snap, "bad_policy")
    assert field == "toolConfig.approval[0].policy" and "confirm" in reason
    [(field, reason)] = errors_of(snap, "bad_tool")
    assert (
        field == "toolConfig.approval[0].tool"
        and "`web_search` is not a backend tool of this agent" in reason
    )


# --- keys, names, duplicates, formats --------------------------------------------------------------


def test_key_comes_from_the_key_field_else_the_file_name(ws: Workspace) -> None:
    ws.agent("from_file", react_agent())
    ws.agent("other_name", react_agent(key="from_field", name="Pretty"))
    snap = ws.load()
    assert set(snap.agents) == {"from_file", "from_field"}
    assert snap.agents["from_file"].name == "from_file"
    assert snap.agents["from_field"].name == "Pretty"
    assert [(w.file, w.field) for w in snap.warnings] == [("agents/other_name.json", "key")]
    assert snap.errors == ()


def test_duplicate_keys_first_file_by_name_wins_and_the_other_is_reported(ws: Workspace) -> None:
    ws.agent("a_first", react_agent(key="same", description="first"))
    ws.agent("b_second", react_agent(key="same", description="second"))
    snap = ws.load()
    assert snap.agents["same"].description == "first"
    assert snap.agents["same"].file == "agents/a_first.json"
    [(field, reason)] = errors_of(snap, "agents/b_second.json")
    assert field == "key" and "duplicate agent key `same`" in reason and "agents/a_first.json" in reason
    assert snap.statuses["b_second"].status == "error"


def test_unsafe_key_is_rejected(ws: Workspace) -> None:
    ws.agent("a", react_agent(key="../escape"))
    snap = ws.load()
    assert snap.agents == {}
    [(field, reason)] = errors_of(snap, "agents/a.json")
    assert field == "key" and "not a safe key" in reason


def test_yaml_agent_and_json_with_comments(ws: Workspace) -> None:
    ws.agent(
        "y",
        "key: y\nmode: react\nmodelConfig:\n  modelKey: m1\nreact:\n  systemPrompt: |\n    Line one.\n    Line two.\n",
        suffix=".yaml",
    )
    ws.agent(
        "c",
        '// comment\n{\n  "mode": "REACT", # hash\n  /* block */ "modelConfig": {"modelKey": "m1"},\n'
        '  "react": {"systemPrompt": """\n  Indented.\nPlain.\n"""}\n}\n',
    )
    snap = ws.load()
    assert snap.agents["y"].stages["react"].system_prompt == "Line one.\nLine two.\n"
    assert snap.agents["c"].stages["react"].system_prompt == "  Indented.\nPlain."
    assert snap.agents["c"].raw["react"]["systemPrompt"] == "  Indented.\nPlain."


def test_triple_quote_outside_a_system_prompt_is_a_load_error(ws: Workspace) -> None:
    ws.agent("t", '{\n"mode": "REACT",\n"description": """x""",\n"react": {"systemPrompt": "x"}}')
    ws.agent("u", '{\n"mode": "REACT",\n"react": {"systemPrompt": """\nnever closed\n}}')
    snap = ws.load()
    [(field, reason)] = errors_of(snap, "agents/t.json")
    assert field == "description" and "(line 3," in reason
    [(field, reason)] = errors_of(snap, "agents/u.json")
    assert field == "systemPrompt" and 'unterminated """' in reason and "(line 3," in reason


def test_runtime_prompts_override_the_defaults(ws: Workspace) -> None:
    ws.write("prompts/toolAppendix.toolDescriptionTitle.md", "Folder title\n")
    ws.agent(
        "a",
        react_agent(
            runtimePrompts={
                "skill": {"catalogHeader": "Mine:"},
                "planExecute": {"taskExecutionPromptTemplate": "Do {{task_id}}"},
            }
        ),
    )
    prompts = ws.load().agents["a"].runtime_prompts
    assert prompts.skill_catalog_header == "Mine:"
    assert prompts.task_execution_prompt_template == "Do {{task_id}}"
    assert prompts.tool_description_title == "Folder title"


def test_versions_are_short_content_hashes(ws: Workspace) -> None:
    ws.agent("a", react_agent())
    ws.agent("b", react_agent())
    snap = ws.load()
    assert len(snap.agents["a"].version) == 12
    assert snap.agents["a"].version == snap.agents["b"].version
    assert snap.models["m1"].version != snap.models["m2"].version


# --- checking agent text before it is written (agent_file_create) ------------------------------


def test_validate_agent_text_uses_the_snapshot(ws: Workspace) -> None:
    snap = ws.load()
    good = '{"mode": "REACT", "modelConfig": {"modelKey": "m1"}, "react": {"systemPrompt": """\nHi.\n"""}}'
    assert snap.validate_agent_text("new_agent", good) == []
    assert snap.validate_agent_text("new_agent", '{"key": "other", ' + good[1:]) == [
        "key: key `other` does not match the file name `new_agent`"
    ]
    bad_refs = '{"mode": "REACT", "modelConfig": {"modelKey": "zz"}, "react": {"systemPrompt": "x"}, "skills": ["nope"]}'
    assert snap.validate_agent_text("a", bad_refs) == [
        "modelConfig.modelKey: unknown model `zz` (no models/zz.json defines it)",
        "skills: unknown skill `nope` (no skills/nope/SKILL.md)",
    ]
    assert snap.validate_agent_text("a", '{"mode": "REACT", "verify": 1}')[0].startswith(
        "verify: legacy field"
    )
    assert snap.validate_agent_text("a", "{oops")[0].startswith("(syntax): invalid JSON")
    assert snap.validate_agent_text("../x", good)[0].startswith("key: ")
