"""``city_datetime``: the current time of a city from the IANA zone database (SPEC §11.7)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import orjson
import pytest

from agentgw.settings import load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext


def make_ctx() -> ToolContext:
    return ToolContext(
        settings=load_settings(files=(), environ={}, overrides={}), run_id="r", chat_id="c", tool_call_id="t"
    )


async def call(args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    text, ok = await execute_builtin("city_datetime", args, make_ctx())
    return orjson.loads(text), ok


def check_consistent(res: dict[str, Any]) -> None:
    """date, weekday and time agree with iso, iso carries the zone's offset, and it is now."""
    assert set(res) == {"city", "timezone", "date", "weekday", "time", "iso", "source"}
    stamp = dt.datetime.fromisoformat(res["iso"])
    zone = zoneinfo.ZoneInfo(res["timezone"])
    assert stamp.utcoffset() == stamp.astimezone(zone).utcoffset()
    assert res["date"] == stamp.date().isoformat()
    assert res["time"] == stamp.strftime("%H:%M:%S")
    assert (
        res["weekday"]
        == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][stamp.weekday()]
    )
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 120


async def test_defaults_to_shanghai() -> None:
    res, ok = await call({})
    assert ok
    assert (res["city"], res["timezone"]) == ("Shanghai", "Asia/Shanghai")
    assert res["iso"].endswith("+08:00")
    check_consistent(res)


@pytest.mark.parametrize(
    ("city", "zone"),
    [
        ("Tokyo", "Asia/Tokyo"),
        ("new york", "America/New_York"),
        ("NEW_YORK", "America/New_York"),
        ("Los Angeles", "America/Los_Angeles"),
        ("Europe/Paris", "Europe/Paris"),
        ("kathmandu", "Asia/Kathmandu"),
        ("Beijing", "Asia/Shanghai"),
        ("北京", "Asia/Shanghai"),
        ("伦敦", "Europe/London"),
        ("San Francisco", "America/Los_Angeles"),
        ("  Berlin  ", "Europe/Berlin"),
    ],
)
async def test_cities_map_to_zones(city: str, zone: str) -> None:
    res, ok = await call({"city": city})
    assert ok
    assert res["timezone"] == zone
    assert res["city"] == city.strip()
    check_consistent(res)


async def test_every_zone_city_works() -> None:
    # Any IANA zone's city component must resolve (a sample, to keep the test quick).
    zones = sorted(
        z for z in zoneinfo.available_timezones() if z.count("/") == 1 and z.startswith("America/")
    )
    for zone in zones[::10]:
        res, ok = await call({"city": zone.split("/")[1].replace("_", " ")})
        assert ok, res
        assert res["timezone"].rsplit("/", 1)[1] == zone.split("/")[1]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ({"city": "Atlantis"}, "unknown_city", "unknown city: Atlantis"),
        ({"city": 12345}, "unknown_city", "unknown city: 12345"),
        ({"city": ["Tokyo"]}, "invalid_argument", "city: must be a string"),
        ({"city": "x" * 5000}, "invalid_argument", "city: is too long"),
    ],
)
async def test_bad_cities_are_tool_errors(args: dict[str, Any], code: str, message: str) -> None:
    res, ok = await call(args)
    assert not ok
    assert res == {"tool": "city_datetime", "ok": False, "code": code, "error": res["error"]}
    assert message in res["error"]
