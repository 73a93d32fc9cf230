"""The built-in registry, the error payload (§11.7), result texts and ``execute_builtin``."""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.catalog.capabilities import BUILTIN_BACKEND_TOOLS, PLAN_TOOLS
from agentgw.errors import ToolError
from agentgw.settings import load_settings
from agentgw.tools import BUILTINS, execute_builtin, result_text, tool_error_payload
from agentgw.tools.base import ToolContext


def make_ctx(**fields: Any) -> ToolContext:
    return ToolContext(
        settings=load_settings(files=(), environ={}), run_id="r", chat_id="c", tool_call_id="t", **fields
    )


def test_registry_holds_the_spec_tools_and_no_plan_tools() -> None:
    # The catalog's list of built-ins (what capability files may name without a toolApi) and
    # the implementations must agree; the plan tools are the engine's own.
    assert set(BUILTINS) == BUILTIN_BACKEND_TOOLS - set(PLAN_TOOLS)
    assert "_bash_" in BUILTINS and "web_search" in BUILTINS and len(BUILTINS) == 11
    assert all(inspect.iscoroutinefunction(fn) for fn in BUILTINS.values())


def test_every_shipped_backend_capability_has_an_implementation() -> None:
    tools_dir = Path(__file__).resolve().parent.parent / "tools"
    shipped = {p.stem for p in tools_dir.glob("*.backend")}
    assert shipped, "the shipped tools/ folder has backend capability files"
    assert shipped <= set(BUILTINS)


def test_error_payload_shape() -> None:
    assert tool_error_payload("x", ToolError("boom", "bad_thing")) == {
        "tool": "x",
        "ok": False,
        "code": "bad_thing",
        "error": "boom",
    }
    without_code = tool_error_payload("x", ToolError("boom"))
    assert without_code == {"tool": "x", "ok": False, "error": "boom"}
    assert list(without_code) == ["tool", "ok", "error"]


def test_result_text() -> None:
    assert result_text("as is\n") == "as is\n"
    assert result_text({"city": "上海", "n": [1, 2.5, None, True]}) == '{"city":"上海","n":[1,2.5,null,true]}'
    assert result_text([]) == "[]"
    # orjson refuses these; the model still gets readable JSON.
    assert result_text({1: "a", "big": 2**70}) == '{"1":"a","big":' + str(2**70) + "}"


async def test_unknown_tool_and_non_object_arguments() -> None:
    text, ok = await execute_builtin("no_such_tool", {}, make_ctx())
    assert not ok
    assert orjson.loads(text) == {
        "tool": "no_such_tool",
        "ok": False,
        "code": "unknown_tool",
        "error": "unknown built-in tool: no_such_tool",
    }
    for args in (["a"], "text", 5):
        text, ok = await execute_builtin("city_datetime", args, make_ctx())
        assert not ok
        assert orjson.loads(text)["error"] == "arguments must be a JSON object"
    text, ok = await execute_builtin("city_datetime", None, make_ctx())
    assert ok and orjson.loads(text)["city"] == "Shanghai"


async def test_an_unexpected_exception_never_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(args: dict[str, Any], ctx: ToolContext) -> str:
        return {"a": 1}["missing"]  # type: ignore[no-any-return]

    monkeypatch.setitem(BUILTINS, "broken_tool", broken)
    text, ok = await execute_builtin("broken_tool", {}, make_ctx())
    assert not ok
    payload = orjson.loads(text)
    assert (payload["tool"], payload["code"]) == ("broken_tool", "tool_failed")
    assert payload["error"] == "broken_tool failed: KeyError: 'missing'"


async def test_answer_with_ok_false_is_reported_not_ok() -> None:
    text, ok = await execute_builtin("web_search", {"query": "q"}, make_ctx())
    assert not ok
    assert orjson.loads(text)["error"]["code"] == "missing_api_key"


async def test_cancelling_a_running_tool_kills_its_process(tmp_path: Path) -> None:
    skill = tmp_path / "skills" / "waiter"
    (skill / "scripts").mkdir(parents=True)
    (skill / "SKILL.md").write_text("waits\n")
    pid_file = tmp_path / "pid"
    code = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    ctx = make_ctx(skills_dir=tmp_path / "skills")
    task = asyncio.create_task(
        execute_builtin("_skill_run_script_", {"skill": "waiter", "pythonCode": code}, ctx)
    )
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("_bash_", {"command": {"x": 1}}, "command"),
        ("_skill_run_script_", {"skill": None}, "skill"),
        ("city_datetime", {"city": [1]}, "city"),
        ("mock_city_weather", {"city": "a", "date": 20260213}, "date"),
        ("mock_logistics_status", {"trackingNumber": True}, "trackingNumber"),
        ("mock_ops_runbook", {"service": "s" * 1000}, "service"),
        ("mock_todo_tasks", {"limit": -1}, "limit"),
        ("mock_transport_schedule", {"from": None, "to": "B"}, "from"),
        ("mock_sensitive_data_detector", {"text": 3.5, "mask": "no"}, "mask"),
        ("agent_file_create", {"key": {"k": 1}}, "key"),
        ("web_search", {"query": "q", "numResults": 2.5}, "numResults"),
    ],
)
async def test_bad_arguments_name_the_field(name: str, args: dict[str, Any], field: str) -> None:
    text, ok = await execute_builtin(name, args, make_ctx())
    assert not ok
    payload = orjson.loads(text)
    assert (payload["tool"], payload["ok"], payload["code"]) == (name, False, "invalid_argument")
    assert payload["error"].startswith(f"{field}: ")
