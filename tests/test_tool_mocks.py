"""The deterministic mock tools: same arguments, same answer; bad arguments, clear errors."""

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


async def call(name: str, args: dict[str, Any]) -> tuple[Any, bool]:
    text, ok = await execute_builtin(name, args, make_ctx())
    return orjson.loads(text), ok


DETERMINISTIC_CALLS = [
    (
        "mock_city_weather",
        {"city": "Shanghai", "date": "2026-02-13"},
        {"city": "Tokyo", "date": "2026-02-13"},
    ),
    (
        "mock_logistics_status",
        {"trackingNumber": "SF123456789", "date": "2026-02-13"},
        {"trackingNumber": "YT98765"},
    ),
    ("mock_ops_runbook", {"service": "payment-gateway", "symptom": "high latency"}, {"service": "search"}),
    ("mock_todo_tasks", {"owner": "alice", "date": "2026-02-13"}, {"owner": "bob", "date": "2026-02-13"}),
    (
        "mock_transport_schedule",
        {"from": "Shanghai", "to": "Beijing", "date": "2026-02-13"},
        {"from": "A", "to": "B"},
    ),
]


@pytest.mark.parametrize(("name", "args", "other"), DETERMINISTIC_CALLS)
async def test_same_arguments_same_answer(name: str, args: dict[str, Any], other: dict[str, Any]) -> None:
    first, ok = await call(name, args)
    assert ok
    again, _ = await call(name, dict(reversed(list(args.items()))))  # key order is irrelevant
    assert again == first
    different, _ = await call(name, other)
    assert different != first
    assert first["mockTag"].startswith("mock:") and len(first["mockTag"]) == 13
    assert different["mockTag"] != first["mockTag"]


async def test_weather_shape_and_ranges() -> None:
    seen = set()
    for day in range(1, 29):
        res, _ = await call("mock_city_weather", {"city": "Shanghai", "date": f"2026-02-{day:02d}"})
        assert set(res) == {"city", "date", "temperatureC", "humidity", "windLevel", "condition", "mockTag"}
        assert (res["city"], res["date"]) == ("Shanghai", f"2026-02-{day:02d}")
        assert -5 <= res["temperatureC"] <= 36
        assert 0 <= res["humidity"] <= 100
        assert 1 <= res["windLevel"] <= 7
        seen.add(res["condition"])
    assert len(seen) > 2  # the weather does change from day to day


async def test_weather_date_defaults_to_today_in_the_city() -> None:
    res, _ = await call("mock_city_weather", {"city": "Tokyo"})
    assert res["date"] == dt.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo")).date().isoformat()


async def test_logistics_timeline_is_coherent() -> None:
    res, _ = await call(
        "mock_logistics_status", {"trackingNumber": "JD0001", "carrier": "JD Logistics", "date": "2026-03-01"}
    )
    assert res["carrier"] == "JD Logistics"
    assert res["events"][0]["status"] == res["status"]
    assert res["currentLocation"] == res["events"][0]["location"]
    assert res["shippedDate"] <= "2026-03-01" <= res["estimatedDelivery"] or res["status"] == "DELIVERED"
    times = [e["time"] for e in res["events"]]
    assert times == sorted(times, reverse=True) or len({t[:10] for t in times}) <= 1


async def test_runbook_shape() -> None:
    res, _ = await call("mock_ops_runbook", {"service": "api", "severity": "p1"})
    assert res["severity"] == "P1"
    assert res["escalation"].startswith("page")
    assert 4 <= len(res["steps"]) <= 6
    assert res["steps"][-1].startswith("Confirm the symptom is gone")
    assert res["runbookId"].startswith("RB-")


async def test_todo_filters_agree_with_the_full_list() -> None:
    base = {"owner": "alice", "date": "2026-02-13"}
    everything, _ = await call("mock_todo_tasks", {**base, "limit": 50})
    assert everything["total"] == len(everything["tasks"]) >= 6
    for status in ("open", "in_progress", "done"):
        filtered, _ = await call("mock_todo_tasks", {**base, "status": status, "limit": 50})
        assert filtered["tasks"] == [t for t in everything["tasks"] if t["status"] == status]
    limited, _ = await call("mock_todo_tasks", {**base, "limit": 2})
    assert limited["tasks"] == everything["tasks"][:2]
    assert limited["total"] == everything["total"]


async def test_transport_options() -> None:
    res, _ = await call(
        "mock_transport_schedule",
        {"from": "Shanghai", "to": "Beijing", "date": "2026-02-13", "mode": "Flight"},
    )
    assert res["mode"] == "flight"
    assert 3 <= len(res["options"]) <= 6
    departs = [o["departTime"] for o in res["options"]]
    assert departs == sorted(departs)
    for option in res["options"]:
        assert option["code"].startswith("MU")
        assert option["durationMinutes"] > 0 and option["priceCny"] > 0


async def test_sensitive_data_detector_finds_and_masks() -> None:
    fake_key = "sk-" + "abcdefghijklmnopqrstuv"  # built here so no key-shaped literal sits in the repo
    text = (
        "Mail zhang.san@example.com or call 13812345678. ID 11010519491231002X, "
        f"card 4111 1111 1111 1111 no, card 4111111111111111, key {fake_key}, host 10.0.0.12."
    )
    res, ok = await call("mock_sensitive_data_detector", {"text": text})
    assert ok
    kinds = [f["type"] for f in res["findings"]]
    assert kinds == ["email", "phone", "cn_id_card", "bank_card", "api_key", "ipv4"]
    assert res["hasSensitiveData"] is True and res["count"] == 6 and res["riskLevel"] == "high"
    for finding in res["findings"]:
        original = text[finding["start"] : finding["end"]]
        assert "*" in finding["value"] and finding["value"] != original
        assert original not in res["maskedText"]
    assert res["maskedText"].startswith("Mail ")
    unmasked, _ = await call("mock_sensitive_data_detector", {"text": text, "mask": False})
    assert [text[f["start"] : f["end"]] for f in unmasked["findings"]] == [
        f["value"] for f in unmasked["findings"]
    ]
    again, _ = await call("mock_sensitive_data_detector", {"text": text})
    assert again == res


async def test_sensitive_data_detector_clean_text() -> None:
    res, _ = await call("mock_sensitive_data_detector", {"text": "Nothing to see here, version 1.2.3."})
    assert (res["hasSensitiveData"], res["count"], res["riskLevel"], res["findings"]) == (
        False,
        0,
        "none",
        [],
    )
    assert res["maskedText"] == "Nothing to see here, version 1.2.3."


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("mock_city_weather", {}, "city: is required"),
        ("mock_city_weather", {"city": "  "}, "city: must not be blank"),
        ("mock_city_weather", {"city": {"name": "x"}}, "city: must be a string"),
        ("mock_city_weather", {"city": "x" * 10_000}, "city: is too long"),
        ("mock_city_weather", {"city": "Shanghai", "date": "tomorrow"}, "date: must be a date YYYY-MM-DD"),
        ("mock_city_weather", {"city": "Shanghai", "date": "2026-02-30"}, "date: is not a valid date"),
        ("mock_logistics_status", {}, "trackingNumber: is required"),
        ("mock_logistics_status", {"trackingNumber": "a b;c"}, "trackingNumber: must be 4-64"),
        ("mock_ops_runbook", {"service": "api", "severity": "P9"}, "severity: must be one of"),
        ("mock_ops_runbook", {"severity": "P1"}, "service: is required"),
        ("mock_todo_tasks", {"limit": 10**12}, "limit: must be between 1 and 50"),
        ("mock_todo_tasks", {"limit": "many"}, "limit: must be an integer"),
        ("mock_todo_tasks", {"status": "later"}, "status: must be one of"),
        ("mock_transport_schedule", {"from": "A"}, "to: is required"),
        ("mock_transport_schedule", {"from": "A", "to": "a"}, "to: must differ"),
        ("mock_transport_schedule", {"from": "A", "to": "B", "mode": "rocket"}, "mode: must be one of"),
        ("mock_sensitive_data_detector", {}, "text: is required"),
        ("mock_sensitive_data_detector", {"text": "x" * 200_000}, "text: is too long"),
        ("mock_sensitive_data_detector", {"text": "x", "mask": "yes"}, "mask: must be a boolean"),
        ("mock_sensitive_data_detector", {"text": "a@b.cc " * 2000}, "too many findings"),
    ],
)
async def test_bad_arguments(name: str, args: dict[str, Any], message: str) -> None:
    res, ok = await call(name, args)
    assert not ok
    assert (res["tool"], res["ok"], res["code"]) == (name, False, "invalid_argument")
    assert message in res["error"]
