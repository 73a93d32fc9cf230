"""Tool argument templates ``{{tool.field}}`` and ``{{tool.field±Nd}}`` (SPEC §4.5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from agentgw.errors import ToolError
from agentgw.tools import execute_builtin
from agentgw.tools.templates import has_templates, resolve_templates

LATEST: dict[str, Any] = {
    "city_datetime": {"city": "Shanghai", "date": "2026-02-13", "iso": "2026-02-13T10:00:00+08:00"},
    "mock_city_weather": orjson.dumps(
        {
            "temperatureC": 22,
            "humidity": 0.5,
            "rainy": False,
            "tags": ["a", "b"],
            "nested": {"deep": {"v": None}},
        }
    ).decode(),
    "_bash_": "exitCode: 0\nmode: strict",
}


def test_whole_string_templates_keep_their_json_type() -> None:
    args = {
        "city": "{{city_datetime.city}}",
        "t": "{{mock_city_weather.temperatureC}}",
        "h": "{{ mock_city_weather.humidity }}",
        "flag": "{{mock_city_weather.rainy}}",
        "tags": "{{mock_city_weather.tags}}",
        "deep": "{{mock_city_weather.nested.deep.v}}",
        "second": "{{mock_city_weather.tags.1}}",
    }
    assert resolve_templates(args, LATEST) == {
        "city": "Shanghai",
        "t": 22,
        "h": 0.5,
        "flag": False,
        "tags": ["a", "b"],
        "deep": None,
        "second": "b",
    }


def test_templates_at_any_depth_and_args_untouched() -> None:
    args = {"outer": [{"date": "{{city_datetime.date}}"}, "{{city_datetime.city}}", 3, None], "n": 1.5}
    before = orjson.dumps(args)
    out = resolve_templates(args, LATEST)
    assert out == {"outer": [{"date": "2026-02-13"}, "Shanghai", 3, None], "n": 1.5}
    assert orjson.dumps(args) == before


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{city_datetime.date+1d}}", "2026-02-14"),
        ("{{city_datetime.date-13d}}", "2026-01-31"),
        ("{{city_datetime.date+16d}}", "2026-03-01"),
        ("{{ city_datetime.date + 365d }}", "2027-02-13"),
        ("{{city_datetime.date+0d}}", "2026-02-13"),
        ("{{city_datetime.date+999999d}}", (dt.date(2026, 2, 13) + dt.timedelta(days=999999)).isoformat()),
        ("{{city_datetime.iso+1d}}", "2026-02-14"),
    ],
)
def test_date_arithmetic(template: str, expected: str) -> None:
    assert resolve_templates({"date": template}, LATEST) == {"date": expected}


def test_non_templates_are_left_alone() -> None:
    args = {
        "a": "date is {{city_datetime.date}}",
        "b": "{{not a template}}",
        "c": "{{city_datetime}}",
        "d": "{city_datetime.date}",
        "e": "",
        "f": "{{city_datetime.date+1w}}",
    }
    assert resolve_templates(args, LATEST) == args
    assert resolve_templates("plain", LATEST) == "plain"
    assert resolve_templates(7, LATEST) == 7


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{web_search.results}}", "no result of tool web_search in this run yet"),
        ("{{city_datetime.country}}", "has no field country"),
        ("{{mock_city_weather.tags.5}}", "has no field tags.5"),
        ("{{mock_city_weather.temperatureC.x}}", "has no field temperatureC.x"),
        ("{{_bash_.exitCode}}", "the result of _bash_ is not JSON"),
        ("{{city_datetime.city+1d}}", "date arithmetic needs a YYYY-MM-DD value"),
        ("{{mock_city_weather.temperatureC-2d}}", "date arithmetic needs a YYYY-MM-DD value"),
        ("{{city_datetime.date-999999d}}", "invalid date arithmetic"),
    ],
)
def test_unresolvable_templates_raise_tool_errors(template: str, reason: str) -> None:
    with pytest.raises(ToolError) as info:
        resolve_templates({"x": [{"y": template}]}, LATEST)
    assert info.value.code == "template_unresolved"
    assert template.strip() in info.value.message
    assert reason in info.value.message


def test_has_templates() -> None:
    assert has_templates({"a": [{"b": " {{x.y}}"}]})
    assert not has_templates({"a": ["x", 1, None]})


async def test_resolved_arguments_reach_the_tool() -> None:
    # The engine resolves templates, then executes; the chained call sees the real date.
    from agentgw.settings import load_settings
    from agentgw.tools.base import ToolContext

    ctx = ToolContext(settings=load_settings(files=(), environ={}), run_id="r", chat_id="c", tool_call_id="t")
    args = resolve_templates({"city": "{{city_datetime.city}}", "date": "{{city_datetime.date+1d}}"}, LATEST)
    text, ok = await execute_builtin("mock_city_weather", args, ctx)
    assert ok
    assert (orjson.loads(text)["city"], orjson.loads(text)["date"]) == ("Shanghai", "2026-02-14")
