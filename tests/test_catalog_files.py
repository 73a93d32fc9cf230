"""Models, capability files, skills, viewports, prompts, and bad input (SPEC §3.2-§3.5)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentgw.catalog.capabilities import BUILTIN_BACKEND_TOOLS
from agentgw.catalog.models import BUILTIN_MODELS_DIR
from agentgw.catalog.prompts import BUILTIN_PROMPTS
from agentgw.catalog.registry import Catalog
from tests.test_catalog_support import DATETIME_TOOL, WEATHER_TOOL, Workspace, errors_of, react_agent


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


# --- models ----------------------------------------------------------------------------------------


def test_model_fields_and_pricing_tiers(ws: Workspace) -> None:
    ws.write(
        "models/big.json",
        """// comments are fine in model files
        {"key": "big", "provider": "p1", "protocol": "anthropic", "modelId": "claude-x",
         "isReasoner": true, "maxInputTokens": 1000, "echoReasoning": true,
         "pricing": {"promptPointsPer1k": 3, "completionPointsPer1k": 15,
                     "tiers": [{"minInputTokens": 0, "maxInputTokens": 200, "promptPointsPer1k": 1, "priceRatio": 0.5}]}}""",
    )
    ws.model("small")
    snap = ws.load()
    big, small = snap.models["big"], snap.models["small"]
    assert (big.protocol, big.model_id, big.is_reasoner, big.echo_reasoning, big.max_input_tokens) == (
        "ANTHROPIC",
        "claude-x",
        True,
        True,
        1000,
    )
    assert big.pricing.prompt_points_per_1k == 3 and big.pricing.completion_points_per_1k == 15
    tier = big.pricing.tiers[0]
    assert (tier.min_input_tokens, tier.max_input_tokens, tier.prompt_points_per_1k, tier.price_ratio) == (
        0,
        200,
        1,
        0.5,
    )
    assert (small.echo_reasoning, small.is_function, small.pricing.price_ratio) == (False, True, 1.0)
    assert big.file == "models/big.json" and len(big.version) == 12


def test_model_required_fields_and_bad_values_are_named(ws: Workspace) -> None:
    ws.write("models/empty.json", {})
    ws.write("models/proto.json", {"key": "proto", "provider": "p1", "protocol": "GRPC", "modelId": "x"})
    ws.write(
        "models/tier.json",
        {
            "key": "tier",
            "provider": "p1",
            "protocol": "OPENAI",
            "modelId": "x",
            "pricing": {"tiers": [{"minInputTokens": 9, "maxInputTokens": 1}]},
        },
    )
    snap = ws.load()
    assert sorted(errors_of(snap, "empty.json")) == [
        ("key", "is required"),
        ("modelId", "is required"),
        ("protocol", "is required"),
        ("provider", "is required"),
    ]
    [(field, reason)] = errors_of(snap, "proto.json")
    assert field == "protocol" and "NEWAPI_OPENAI_COMPATIBLE" in reason
    [(field, reason)] = errors_of(snap, "tier.json")
    assert field == "pricing.tiers[0]" and "maxInputTokens must not be below minInputTokens" in reason
    assert snap.models == {}


def test_agent_using_a_failed_model_names_its_file(ws: Workspace) -> None:
    ws.write("models/m1.json", {"key": "m1", "provider": "p1"})
    ws.agent("a", react_agent())
    [(field, reason)] = errors_of(ws.load(), "agents/a.json")
    assert field == "modelConfig.modelKey" and "models/m1.json failed to load" in reason


def test_duplicate_model_keys_first_file_wins(ws: Workspace) -> None:
    ws.write("models/a.json", {"key": "dup", "provider": "p1", "protocol": "OPENAI", "modelId": "first"})
    ws.write("models/b.json", {"key": "dup", "provider": "p1", "protocol": "OPENAI", "modelId": "second"})
    snap = ws.load()
    assert snap.models["dup"].model_id == "first"
    [(field, reason)] = errors_of(snap, "models/b.json")
    assert field == "key" and "duplicate model key `dup`" in reason
    assert [w.file for w in snap.warnings] == ["models/a.json"]  # key differs from the file name


def test_builtin_models_are_installed_overwriting_same_names_and_keeping_others(ws: Workspace) -> None:
    builtin = sorted(p.name for p in BUILTIN_MODELS_DIR.glob("*.json"))
    assert "demo.json" in builtin and "demo-anthropic.json" in builtin
    ws.write("models/demo.json", {"key": "demo", "provider": "p1", "protocol": "OPENAI", "modelId": "edited"})
    ws.model("mine")
    Catalog(ws.settings).load()
    on_disk = sorted(p.name for p in ws.dirs["models"].glob("*.json"))
    assert on_disk == sorted([*builtin, "mine.json"])
    assert (ws.dirs["models"] / "demo.json").read_bytes() == (BUILTIN_MODELS_DIR / "demo.json").read_bytes()
    assert json.loads((ws.dirs["models"] / "mine.json").read_text())["modelId"] == "mine-id"


# --- capability files ------------------------------------------------------------------------------


def test_capability_entries(ws: Workspace) -> None:
    ws.tools(
        "mixed.backend",
        {"type": "function", "name": "city_datetime"},
        {"type": "retrieval", "name": "ignored_entry"},
        {"type": "function", "name": "mock_city_weather", "after_call_hint": " snake hint ", "strict": True},
        {
            "type": "function",
            "name": "remote_lookup",
            "toolApi": "http://127.0.0.1:9/lookup",
            "requiresApproval": True,
        },
    )
    ws.write("tools/notes.txt", "not a capability file")
    snap = ws.load()
    assert snap.errors == ()
    assert "ignored_entry" not in snap.tools
    dt = snap.tools["city_datetime"]
    assert (dt.kind, dt.parameters, dt.tool_type, dt.description) == (
        "backend",
        {"type": "object", "properties": {}},
        "function",
        "",
    )
    weather = snap.tools["mock_city_weather"]
    assert weather.after_call_hint == "snake hint" and weather.strict is True
    assert weather.schema()["function"]["strict"] is True
    remote = snap.tools["remote_lookup"]
    assert remote.tool_api == "http://127.0.0.1:9/lookup" and remote.requires_approval is True
    assert remote.file == "tools/mixed.backend" and len(remote.version) == 12 and remote.version == dt.version


def test_plan_tools_exist_without_any_capability_file(ws: Workspace) -> None:
    snap = ws.load()
    assert {"_plan_add_tasks_", "_plan_update_task_", "_plan_get_tasks_"} <= set(snap.tools)
    assert snap.tools["_plan_update_task_"].parameters["required"] == ["taskId", "status"]
    assert snap.tools["_plan_get_tasks_"].version == "builtin"
    assert {"_plan_add_tasks_", "_plan_update_task_", "_plan_get_tasks_"} <= BUILTIN_BACKEND_TOOLS


def test_frontend_tool_key_and_type_come_from_file_and_viewport(ws: Workspace) -> None:
    ws.tools("Trip_Form.frontend", {"type": "function", "name": "trip_form"})
    ws.tools("plain_card.frontend", {"type": "function", "name": "plain_card"})
    ws.tools("fx.action", {"type": "function", "name": "launch_fireworks"})
    ws.write("viewports/trip_form.qlc", {"type": "form", "fields": []})
    snap = ws.load()
    trip, card, fx = snap.tools["trip_form"], snap.tools["plain_card"], snap.tools["launch_fireworks"]
    assert (trip.kind, trip.tool_key, trip.tool_type) == ("frontend", "trip_form", "qlc")
    assert (card.tool_key, card.tool_type) == ("plain_card", "html")
    assert (fx.kind, fx.tool_type, fx.tool_key) == ("action", "function", None)


def test_conflicting_names_are_skipped_and_reported_the_rest_loads(ws: Workspace) -> None:
    ws.tools("a.backend", WEATHER_TOOL, DATETIME_TOOL)
    ws.tools("b.backend", {**WEATHER_TOOL, "description": "other"})
    snap = ws.load()
    assert "mock_city_weather" not in snap.tools
    assert "city_datetime" in snap.tools
    assert {e.file for e in snap.errors} == {"tools/a.backend", "tools/b.backend"}
    assert all("defined more than once" in e.reason for e in snap.errors)


def test_bad_capability_entries_are_named(ws: Workspace) -> None:
    ws.tools(
        "bad.backend",
        {"type": "function", "name": "my_custom_tool"},
        {"type": "function", "name": "bad name!"},
        {"type": "function", "name": "city_datetime", "parameters": "none"},
        {"type": "function", "name": "web_search", "toolApi": "ftp://x"},
        "not an object",
    )
    ws.tools("ui.frontend", {"type": "function", "name": "card", "requiresApproval": True})
    ws.write("tools/shape.action", {"tool": []})
    snap = ws.load()
    bad = errors_of(snap, "bad.backend")
    assert [field for field, _ in bad] == [
        "tools[0].toolApi",
        "tools[1].name",
        "tools[2].parameters",
        "tools[3].toolApi",
        "tools[4]",
    ]
    assert "`my_custom_tool` is not a built-in" in bad[0][1]
    assert errors_of(snap, "ui.frontend") == [
        ("tools[0].requiresApproval", "only backend tools can require approval")
    ]
    assert errors_of(snap, "shape.action") == [("tools", 'expected a JSON object {"tools": [ ... ]}')]


# --- skills ----------------------------------------------------------------------------------------


def test_skill_front_matter_defaults_and_id(ws: Workspace) -> None:
    ws.skill(
        "Math_Basic", "---\nname: Basic math\ndescription: Adds\n  numbers.\n---\n\n# Title\nUse calc.py.\n"
    )
    ws.skill("bare", "Just instructions.")
    snap = ws.load()
    math = snap.skills["math_basic"]
    assert (math.id, math.name, math.description, math.instructions) == (
        "math_basic",
        "Basic math",
        "Adds numbers.",
        "# Title\nUse calc.py.",
    )
    assert math.path == ws.dirs["skills"] / "Math_Basic"
    bare = snap.skills["bare"]
    assert (bare.name, bare.description, bare.instructions) == ("bare", "", "Just instructions.")


def test_skill_body_is_cut_with_the_exact_suffix(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.settings = ws.make_settings(**{"agent.skill.max-prompt-chars": 10})
    ws.skill("long", "---\nname: L\n---\n" + "abcdefghijKLMNOP")
    ws.skill("short", "0123456789")
    snap = ws.load()
    assert (
        snap.skills["long"].instructions
        == "abcdefghij\n\n[TRUNCATED: skill prompt exceeds maxPromptChars=10]"
    )
    assert snap.skills["short"].instructions == "0123456789"


def test_stray_skill_files_are_warnings_and_folders_need_skill_md(ws: Workspace) -> None:
    ws.write("skills/notes.md", "stray")
    (ws.dirs["skills"] / "empty_skill").mkdir()
    snap = ws.load()
    [warning] = snap.warnings
    assert warning.file == "skills/notes.md" and "skills/notes/SKILL.md" in warning.reason
    assert errors_of(snap, "empty_skill") == [("(file)", "missing: every skill folder needs a SKILL.md")]
    assert snap.skills == {}


# --- viewports and prompts -------------------------------------------------------------------------


def test_viewports_of_every_type(ws: Workspace) -> None:
    ws.write("viewports/card.html", "<p>hi</p>")
    for suffix in ("qlc", "dqlc", "json_schema", "custom"):
        ws.write(f"viewports/v_{suffix}.{suffix}", '// comment\n{"kind": "' + suffix + '"}')
    ws.write("viewports/broken.qlc", "{nope")
    ws.write("viewports/list.custom", "[1, 2]")
    ws.write("viewports/readme.txt", "ignored")
    snap = ws.load()
    assert snap.viewports["card"].html == "<p>hi</p>"
    assert {k: v.type for k, v in snap.viewports.items()} == {
        "card": "html",
        "v_qlc": "qlc",
        "v_dqlc": "dqlc",
        "v_json_schema": "json_schema",
        "v_custom": "custom",
    }
    assert snap.viewports["v_qlc"].data == {"kind": "qlc"}
    assert snap.viewport("CARD") is snap.viewports["card"]
    assert snap.viewport("missing") is None
    assert [e.file for e in snap.errors] == ["viewports/broken.qlc", "viewports/list.custom"]


def test_prompt_files_override_builtins_and_extras_are_kept(ws: Workspace) -> None:
    ws.write("prompts/skill.catalogHeader.md", "Skills here:\r\n\n")
    ws.write("prompts/planExecute.draftHint.md", "Draft first.\n")
    ws.write("prompts/README.md", "docs")
    prompts = ws.load().prompts
    assert prompts.skill_catalog_header == "Skills here:"
    assert prompts.tool_description_title == BUILTIN_PROMPTS.tool_description_title
    assert dict(prompts.extra) == {"planExecute.draftHint": "Draft first."}


# --- bad input never crashes -------------------------------------------------------------------------


def test_bad_files_are_errors_and_the_good_ones_still_load(ws: Workspace, tmp_path: Path) -> None:
    ws.model("m1")
    ws.agent("good", react_agent())
    ws.write("agents/syntax.json", '{\n  "mode": "REACT",\n  "react": {"systemPrompt": "x"} oops\n}')
    ws.write("agents/array.json", "[1, 2]")
    ws.write("agents/empty.json", "")
    ws.write("agents/binary.json", b"\x00\x01\x02binary")
    ws.write("agents/latin1.json", '{"name": "caf\u00e9"}'.encode("latin-1"))
    ws.write("agents/yaml_bad.yaml", "mode: [unclosed\n")
    with (ws.dirs["agents"] / "huge.json").open("wb") as fh:
        fh.truncate(10 * 1024 * 1024)  # 10 MB, sparse: must be refused without reading it
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(react_agent()))
    (ws.dirs["agents"] / "link_out.json").symlink_to(outside)
    (ws.dirs["agents"] / "dangling.json").symlink_to(tmp_path / "missing.json")
    os.mkfifo(ws.dirs["agents"] / "fifo.json")
    (ws.dirs["agents"] / "dir.json").mkdir()
    snap = ws.load()
    assert list(snap.agents) == ["good"]
    by_file = {e.file: e for e in snap.errors}
    assert set(by_file) == {
        "agents/syntax.json",
        "agents/array.json",
        "agents/empty.json",
        "agents/binary.json",
        "agents/latin1.json",
        "agents/yaml_bad.yaml",
        "agents/huge.json",
        "agents/link_out.json",
        "agents/dangling.json",
        "agents/fifo.json",
    }
    assert "line 3, column 34" in by_file["agents/syntax.json"].reason
    assert by_file["agents/array.json"].reason == "an agent definition must be a JSON object"
    assert "binary file" in by_file["agents/binary.json"].reason
    assert "not valid UTF-8" in by_file["agents/latin1.json"].reason
    assert (
        "invalid YAML" in by_file["agents/yaml_bad.yaml"].reason
        and "line 2" in by_file["agents/yaml_bad.yaml"].reason
    )
    assert "too large (10485760 bytes; the limit is 1048576 bytes)" in by_file["agents/huge.json"].reason
    assert "outside agents/" in by_file["agents/link_out.json"].reason
    assert "broken symlink" in by_file["agents/dangling.json"].reason
    assert "not a regular file" in by_file["agents/fifo.json"].reason
    statuses = snap.statuses
    assert statuses["good"].status == "ok"
    assert all(statuses[k].status == "error" for k in statuses if k != "good")


def test_symlink_inside_the_folder_is_followed(ws: Workspace) -> None:
    ws.model("m1")
    real = ws.agent("real", react_agent())
    (ws.dirs["agents"] / "alias.json").symlink_to(real)
    snap = ws.load()
    assert set(snap.agents) == {"real", "alias"}


def test_unsafe_viewport_and_skill_names_are_rejected(ws: Workspace) -> None:
    ws.write("viewports/-bad.html", "<p>")
    ws.skill("-weird", "x")
    snap = ws.load()
    assert snap.viewports == {} and snap.skills == {}
    assert {e.file for e in snap.errors} == {"viewports/-bad.html", "skills/-weird"}


def test_missing_folders_load_as_empty(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    for folder in ws.dirs.values():
        folder.rmdir()
    snap = ws.load()
    assert (snap.agents, snap.models, snap.errors) == ({}, {}, ())
    assert set(snap.tools) == {"_plan_add_tasks_", "_plan_update_task_", "_plan_get_tasks_"}
