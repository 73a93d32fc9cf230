"""The shipped skills (SPEC §3.4), run the way a model runs them: through ``_skill_run_script_``."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.catalog.skills import parse_skill
from agentgw.catalog.types import SkillDef
from agentgw.settings import load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext

SKILLS_DIR = Path(__file__).resolve().parent.parent / "skills"
SHIPPED = ("math_basic", "math_stats", "text_utils", "screenshot")


def shipped_skills() -> dict[str, SkillDef]:
    out: dict[str, SkillDef] = {}
    for skill_id in SHIPPED:
        folder = SKILLS_DIR / skill_id
        parsed = parse_skill(
            skill_id, (folder / "SKILL.md").read_text(), f"skills/{skill_id}/SKILL.md", folder, "", 8000
        )
        assert isinstance(parsed, SkillDef), parsed
        out[skill_id] = parsed
    return out


@pytest.fixture(scope="module")
def ctx() -> ToolContext:
    settings = load_settings(files=(), environ={}, overrides={})
    return ToolContext(settings=settings, run_id="r", chat_id="c", tool_call_id="t", skills=shipped_skills())


async def run_script(ctx: ToolContext, skill: str, script: str, *args: str) -> dict[str, Any]:
    text, _ = await execute_builtin(
        "_skill_run_script_", {"skill": skill, "script": script, "args": list(args)}, ctx
    )
    answer = orjson.loads(text)
    assert answer["timedOut"] is False, answer
    assert answer["stderr"] == "", answer
    out: dict[str, Any] = json.loads(answer["stdout"])
    assert out["ok"] is (answer["exitCode"] == 0)
    return out


def test_every_shipped_skill_has_front_matter_and_tool_instructions() -> None:
    for skill_id, skill in shipped_skills().items():
        assert skill.name and skill.name != skill_id
        assert skill.description
        assert "_skill_run_script_" in skill.instructions
        assert f'"skill": "{skill_id}"' in skill.instructions
        for script in (SKILLS_DIR / skill_id / "scripts").iterdir():
            assert script.suffix in (".py", ".sh")


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", "2", "3.5", 2 + 3.5),
        ("sub", "-3", "-4.5", -3 - -4.5),
        ("mul", "12.5", "4", 12.5 * 4),
        ("div", "7", "2", 7 / 2),
        ("pow", "2", "10", 2**10),
        ("pow", "9", "0.5", 9**0.5),
        ("mod", "17", "5", 17 % 5),
    ],
)
async def test_math_basic_ops(ctx: ToolContext, op: str, a: str, b: str, expected: float) -> None:
    out = await run_script(ctx, "math_basic", "scripts/calc.py", "--op", op, "--a", a, "--b", b)
    assert out["ok"] is True
    assert (out["op"], out["a"], out["b"]) == (op, float(a), float(b))
    assert out["result"] == pytest.approx(expected)


async def test_math_basic_integers_stay_integers(ctx: ToolContext) -> None:
    out = await run_script(ctx, "math_basic", "calc.py", "--op", "pow", "--a", "3", "--b", "40")
    assert out["result"] == 3**40
    assert isinstance(out["result"], int)


async def test_math_basic_precision(ctx: ToolContext) -> None:
    out = await run_script(
        ctx, "math_basic", "calc.py", "--op", "div", "--a", "10", "--b", "3", "--precision", "3"
    )
    assert out["result"] == round(10 / 3, 3)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--op", "div", "--a", "1", "--b", "0"), "division by zero"),
        (("--op", "mod", "--a", "1", "--b", "0"), "modulo by zero"),
        (("--op", "sqrt", "--a", "1", "--b", "0"), "unknown op"),
        (("--op", "add", "--a", "one", "--b", "2"), "--a is not a number"),
        (("--op", "add", "--a", "1"), "required"),
        (("--op", "pow", "--a", "10", "--b", "100000"), "result too large"),
        (("--op", "add", "--a", "1", "--b", "2", "--precision", "99"), "--precision"),
    ],
)
async def test_math_basic_errors(ctx: ToolContext, args: tuple[str, ...], error: str) -> None:
    out = await run_script(ctx, "math_basic", "calc.py", *args)
    assert out["ok"] is False
    assert error in out["error"]


async def test_math_stats_summary_matches_statistics(ctx: ToolContext) -> None:
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    out = await run_script(
        ctx, "math_stats", "scripts/stats.py", "--op", "summary", "--values", "3, 1,4,1,5,9,2,6"
    )
    assert out["count"] == len(values)
    assert out["result"] == {
        "count": len(values),
        "sum": sum(values),
        "min": min(values),
        "max": max(values),
        "mean": pytest.approx(statistics.fmean(values)),
        "median": pytest.approx(statistics.median(values)),
        "mode": statistics.mode(values),
        "stdev": pytest.approx(statistics.stdev(values)),
    }


@pytest.mark.parametrize("op", ["count", "sum", "min", "max", "mean", "median", "mode", "stdev"])
async def test_math_stats_single_ops(ctx: ToolContext, op: str) -> None:
    values = [2.5, 4, 4, 10]
    out = await run_script(ctx, "math_stats", "stats.py", "--op", op, "--values", ",".join(map(str, values)))
    expected = {
        "count": len(values),
        "sum": math.fsum(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "mode": statistics.mode(values),
        "stdev": statistics.stdev(values),
    }[op]
    assert out["result"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--op", "stdev", "--values", "5"), "at least two values"),
        (("--op", "mean", "--values", " , "), "holds no numbers"),
        (("--op", "mean", "--values", "1,two"), "not a number"),
        (("--op", "mean", "--values", "1,inf"), "not a finite number"),
        (("--op", "range", "--values", "1,2"), "unknown op"),
    ],
)
async def test_math_stats_errors(ctx: ToolContext, args: tuple[str, ...], error: str) -> None:
    out = await run_script(ctx, "math_stats", "stats.py", *args)
    assert out["ok"] is False
    assert error in out["error"]


async def test_math_stats_single_value_summary_has_no_stdev(ctx: ToolContext) -> None:
    out = await run_script(ctx, "math_stats", "stats.py", "--op", "summary", "--values", "7")
    assert out["result"]["stdev"] is None
    assert out["result"]["mean"] == 7


async def test_text_utils_counts(ctx: ToolContext) -> None:
    text = "Hello   world\n\n  second\tline  \n你好世界"
    out = await run_script(ctx, "text_utils", "scripts/text_stats.py", "--text", text)
    assert (out["chars"], out["lines"], out["normalized"], out["text"]) == (len(text), 4, False, text)
    # Hello, world, second, line + one word per CJK character.
    assert out["words"] == 4 + 4


async def test_text_utils_normalizes_whitespace(ctx: ToolContext) -> None:
    text = "Hello   world\n\n  second\tline  \n"
    out = await run_script(ctx, "text_utils", "text_stats.py", "--text", text, "--normalize-whitespace")
    assert out["text"] == "Hello world\nsecond line"
    assert (out["chars"], out["words"], out["lines"], out["normalized"]) == (23, 4, 2, True)


async def test_text_utils_needs_text(ctx: ToolContext) -> None:
    out = await run_script(ctx, "text_utils", "text_stats.py")
    assert out["ok"] is False
    assert "--text" in out["error"]


async def test_screenshot_renders_a_card(ctx: ToolContext) -> None:
    out = await run_script(
        ctx, "screenshot", "scripts/render_svg.py",
        "--title", "Build <status>", "--line", "tests: 42 passed", "--theme", "dark", "--include-svg",
    )  # fmt: skip
    assert (out["format"], out["width"], out["height"], out["theme"]) == ("svg", 480, 270, "dark")
    assert out["svg"].startswith("<svg ") and "Build &lt;status&gt;" in out["svg"]
    assert out["bytes"] == len(out["svg"].encode())
    assert "tests: 42 passed" in out["description"]


async def test_screenshot_rejects_bad_options(ctx: ToolContext) -> None:
    out = await run_script(ctx, "screenshot", "render_svg.py", "--title", "x", "--width", "10")
    assert out["ok"] is False
    assert "--width" in out["error"]


async def test_screenshot_smoke_test(ctx: ToolContext) -> None:
    out = await run_script(ctx, "screenshot", "scripts/smoke_test.sh")
    assert out == {"ok": True, "checks": 6}
