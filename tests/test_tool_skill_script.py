"""``_skill_run_script_``: scripts and inline code run in the skill folder; nothing leaves it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.catalog.types import SkillDef
from agentgw.settings import load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext

ECHO_ARGS = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": sorted(os.environ)}))
"""


@pytest.fixture
def skills(tmp_path: Path) -> Path:
    root = tmp_path / "skills"
    demo = root / "demo" / "scripts"
    demo.mkdir(parents=True)
    (root / "demo" / "SKILL.md").write_text(
        "---\nname: Demo\ndescription: test skill\n---\nRun echo_args.py.\n"
    )
    (demo / "echo_args.py").write_text(ECHO_ARGS)
    (demo / "hello.sh").write_text('echo "hello $1 from $(basename "$PWD")"\n')
    (demo / "fail.py").write_text(
        "import sys\nprint('partial')\nsys.stderr.write('bad input\\n')\nsys.exit(3)\n"
    )
    (demo / "sleepy.py").write_text("import time\ntime.sleep(30)\n")
    (demo / "noisy.py").write_text("import sys\nsys.stdout.write('z' * 20000)\n")
    (demo / "notes.txt").write_text("not a script\n")
    (demo / "nested").mkdir()
    (demo / "nested" / "inner.py").write_text("print('inner')\n")
    (root / "demo" / "top.py").write_text("print('outside scripts/')\n")
    other = root / "other" / "scripts"
    other.mkdir(parents=True)
    (root / "other" / "SKILL.md").write_text("Other skill.\n")
    (other / "x.py").write_text("print('other skill')\n")
    outside = tmp_path / "outside.py"
    outside.write_text("print('escaped')\n")
    (demo / "evil.py").symlink_to(outside)
    (root / "nomd").mkdir()
    return root


def same_place(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def exists(path: str) -> bool:
    return os.path.exists(path)


def make_ctx(skills_dir: Path | None, skill_defs: dict[str, SkillDef] | None = None) -> ToolContext:
    settings = load_settings(files=(), environ={}, overrides={})
    return ToolContext(
        settings=settings,
        run_id="run1",
        chat_id="chat1",
        tool_call_id="call1",
        skills=skill_defs or {},
        skills_dir=skills_dir,
    )


async def call(ctx: ToolContext, **args: Any) -> tuple[dict[str, Any], bool]:
    text, ok = await execute_builtin("_skill_run_script_", args, ctx)
    return orjson.loads(text), ok


async def test_python_script_runs_in_the_skill_folder(skills: Path) -> None:
    res, ok = await call(make_ctx(skills), skill="demo", script="scripts/echo_args.py", args=["--a", "1", 2])
    assert ok
    assert {
        k: res[k] for k in ("tool", "skill", "scriptSource", "script", "timeoutMs", "ok", "timedOut")
    } == {
        "tool": "_skill_run_script_",
        "skill": "demo",
        "scriptSource": "file",
        "script": "scripts/echo_args.py",
        "timeoutMs": 10000,
        "ok": True,
        "timedOut": False,
    }
    assert res["exitCode"] == 0
    assert res["stderr"] == ""
    out = json.loads(res["stdout"])
    assert out["argv"] == ["--a", "1", "2"]
    assert same_place(out["cwd"], skills / "demo")
    assert "error" not in res


async def test_script_name_without_scripts_prefix_and_nested(skills: Path) -> None:
    res, _ = await call(make_ctx(skills), skill="Demo", script="echo_args.py")
    assert res["ok"] and res["script"] == "scripts/echo_args.py"
    nested, _ = await call(make_ctx(skills), skill="demo", script="./scripts/nested/inner.py")
    assert nested["stdout"] == "inner\n"


async def test_shell_script_runs_with_bash(skills: Path) -> None:
    res, _ = await call(make_ctx(skills), skill="demo", script="hello.sh", args=["world"])
    assert res["ok"]
    assert res["stdout"] == "hello world from demo\n"


async def test_failing_script_reports_exit_code_and_stderr(skills: Path) -> None:
    res, ok = await call(make_ctx(skills), skill="demo", script="fail.py")
    assert not ok
    assert (res["ok"], res["exitCode"], res["stdout"], res["stderr"]) == (
        False,
        3,
        "partial\n",
        "bad input\n",
    )


async def test_inline_code_runs_in_a_private_temp_folder_removed_afterwards(skills: Path) -> None:
    code = (
        "import json, os, stat\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "print(json.dumps({'file': __file__, 'mode': stat.S_IMODE(os.stat(here).st_mode), 'cwd': os.getcwd(),"
        " 'text': '中文'}))\n"
    )
    res, ok = await call(make_ctx(skills), skill="demo", pythonCode=code, args=["x"])
    assert ok
    assert res["scriptSource"] == "inline"
    out = json.loads(res["stdout"])
    assert out["mode"] == 0o700
    assert out["text"] == "中文"
    assert same_place(out["cwd"], skills / "demo")
    assert not exists(out["file"])
    assert not exists(os.path.dirname(out["file"]))


async def test_inline_code_over_64_kib_is_refused(skills: Path) -> None:
    code = "x = 1\n" + "#" * (64 * 1024)
    res, ok = await call(make_ctx(skills), skill="demo", pythonCode=code)
    assert not ok
    assert res["ok"] is False
    assert res["exitCode"] == -1
    assert "pythonCode is too large" in res["error"]


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("../SKILL.md", "must not contain '..'"),
        ("scripts/../../other/scripts/x.py", "must not contain '..'"),
        ("../../other/scripts/x.py", "must not contain '..'"),
        ("/etc/passwd", "relative to the skill's scripts/ folder"),
        ("evil.py", "resolves outside the skill folder"),
        ("notes.txt", "unsupported script type"),
        ("missing.py", "script not found"),
        ("scripts", "script names no file"),
    ],
)
async def test_script_paths_cannot_leave_the_skill(skills: Path, script: str, reason: str) -> None:
    res, ok = await call(make_ctx(skills), skill="demo", script=script)
    assert not ok
    assert res["ok"] is False
    assert res["exitCode"] == -1
    assert reason in res["error"]
    assert res["stdout"] == ""


async def test_script_outside_scripts_folder_is_not_found(skills: Path) -> None:
    res, _ = await call(make_ctx(skills), skill="demo", script="top.py")
    assert "script not found: scripts/top.py" in res["error"]


async def test_timeout_kills_the_script(skills: Path) -> None:
    res, ok = await call(make_ctx(skills), skill="demo", script="sleepy.py", timeoutMs=300)
    assert not ok
    assert (res["timedOut"], res["ok"], res["timeoutMs"]) == (True, False, 300)
    assert "[TIMEOUT]" in res["stderr"]


async def test_output_is_capped(skills: Path) -> None:
    res, _ = await call(make_ctx(skills), skill="demo", script="noisy.py")
    assert res["stdout"] == "z" * 8000 + "\n[TRUNCATED]"


async def test_script_environment_is_minimal(skills: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTGW_TEST_SECRET", "s3cr3t")
    res, _ = await call(make_ctx(skills), skill="demo", script="echo_args.py")
    env = json.loads(res["stdout"])["env"]
    assert "AGENTGW_TEST_SECRET" not in env
    assert {"PATH", "HOME", "LANG", "PYTHON", "SKILL_DIR"} <= set(env)


async def test_skills_from_the_catalog_are_used(skills: Path) -> None:
    defs = {
        "demo": SkillDef(id="demo", name="Demo", description="", instructions="", path=skills / "demo"),
        "other": SkillDef(
            id="other", name="O", description="", instructions="", path=skills / "other" / "SKILL.md"
        ),
    }
    ctx = make_ctx(None, defs)
    res, ok = await call(ctx, skill="other", script="x.py")
    assert ok and res["stdout"] == "other skill\n"
    # A folder on disk that the catalog does not list is unknown.
    ctx_only_demo = make_ctx(skills, {"demo": defs["demo"]})
    text, ok = await execute_builtin(
        "_skill_run_script_", {"skill": "other", "script": "x.py"}, ctx_only_demo
    )
    assert not ok
    assert orjson.loads(text)["code"] == "unknown_skill"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "skill: is required"),
        ({"skill": "demo"}, "exactly one of script or pythonCode"),
        (
            {"skill": "demo", "script": "echo_args.py", "pythonCode": "print(1)"},
            "exactly one of script or pythonCode",
        ),
        ({"skill": "nope", "script": "x.py"}, "unknown skill: nope"),
        ({"skill": "../demo", "script": "x.py"}, "unknown skill: ../demo"),
        ({"skill": "nomd", "script": "x.py"}, "unknown skill: nomd"),
        ({"skill": ["demo"], "script": "x.py"}, "skill: must be a string"),
        ({"skill": "demo", "pythonCode": 5}, "pythonCode: must be a string"),
        ({"skill": "demo", "script": "x.py", "args": "--op add"}, "args: must be an array of strings"),
        ({"skill": "demo", "script": "x.py", "args": ["a", {"b": 1}]}, "args[1]: must be a string"),
        ({"skill": "demo", "script": "x.py", "args": ["a"] * 300}, "args: has too many items"),
        ({"skill": "demo", "script": "x.py", "timeoutMs": 0}, "timeoutMs: must be between 1 and 120000"),
        ({"skill": "demo", "script": "x.py", "timeoutMs": 120001}, "timeoutMs: must be between 1 and 120000"),
        ({"skill": "demo", "script": "x.py", "timeoutMs": 10**30}, "timeoutMs: must be between 1 and 120000"),
        ({"skill": "demo", "script": "x.py", "timeoutMs": "soon"}, "timeoutMs: must be an integer"),
        ({"skill": "demo", "script": "x.py", "timeoutMs": True}, "timeoutMs: must be an integer"),
    ],
)
async def test_bad_arguments_are_tool_errors(skills: Path, args: dict[str, Any], message: str) -> None:
    text, ok = await execute_builtin("_skill_run_script_", args, make_ctx(skills))
    assert not ok
    payload = orjson.loads(text)
    assert payload["tool"] == "_skill_run_script_"
    assert payload["ok"] is False
    assert message in payload["error"]


async def test_timeout_given_as_digit_string_is_accepted(skills: Path) -> None:
    res, ok = await call(make_ctx(skills), skill="demo", script="echo_args.py", timeoutMs="5000")
    assert ok and res["timeoutMs"] == 5000
