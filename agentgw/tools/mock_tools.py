"""Deterministic mock tools for demos and tests (SPEC §6).

The same arguments always give the same answer: each tool normalises its arguments
(defaults filled in, strings stripped), and seeds :class:`random.Random` with the SHA-256
of the tool name plus the canonical JSON of those arguments, sorted by key. A date left
out means today (UTC, or the city's zone for the weather), so only calls that leave it
out vary from day to day. Every answer carries ``mockTag: "mock:<8 hex>"`` (the seed's
prefix) so nobody mistakes it for real data.

Parameters (capability files in ``tools/`` must use these names):

- ``mock_city_weather {city, date?}`` → ``{city, date, temperatureC, humidity, windLevel,
  condition, mockTag}``
- ``mock_logistics_status {trackingNumber, carrier?, date?}`` → ``{trackingNumber,
  carrier, status, statusText, origin, destination, currentLocation, shippedDate,
  estimatedDelivery, events: [{time, location, status, description}], mockTag}``
- ``mock_ops_runbook {service, symptom?, severity?: P1|P2|P3|P4}`` → ``{service,
  symptom, severity, runbookId, title, ownerTeam, steps: [str], escalation,
  estimatedMinutes, mockTag}``
- ``mock_todo_tasks {owner?, status?: all|open|in_progress|done, limit?: 1…50, date?}``
  → ``{owner, status, date, total, tasks: [{taskId, title, priority, status, dueDate}],
  mockTag}`` (the task list is seeded by owner and date only, so filters agree)
- ``mock_transport_schedule {from, to, date?, mode?: train|flight|bus}`` → ``{from, to,
  date, mode, options: [{code, departTime, arriveTime, durationMinutes, priceCny,
  seatsLeft}], mockTag}``
- ``mock_sensitive_data_detector {text, mask?: bool}`` → ``{hasSensitiveData, count,
  riskLevel, findings: [{type, start, end, value}], maskedText, mockTag}`` (a real
  regex scan, so it is deterministic by nature; ``value`` is masked unless ``mask`` is
  false)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import zoneinfo
from typing import Any

import orjson

from agentgw.errors import ToolError
from agentgw.tools._args import bad, opt_date, opt_int, opt_str, req_str, type_name
from agentgw.tools.base import ToolContext
from agentgw.tools.city_time import zone_for_city

_NAME_MAX = 100


def _seeded(tool: str, params: dict[str, Any]) -> tuple[random.Random, str]:
    canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(tool.encode() + b"\x00" + canonical).hexdigest()
    return random.Random(int(digest[:16], 16)), f"mock:{digest[:8]}"


def _today(zone: str | None = None) -> dt.date:
    if zone:
        return dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    return dt.datetime.now(dt.UTC).date()


def _date_arg(args: dict[str, Any], name: str = "date", zone: str | None = None) -> str:
    return (opt_date(args, name) or _today(zone)).isoformat()


_CONDITIONS = ("Sunny", "Partly cloudy", "Cloudy", "Overcast", "Light rain", "Showers", "Thunderstorm", "Fog")


async def mock_city_weather(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Fake weather of a city on a date."""
    city = req_str(args, "city", max_len=_NAME_MAX)
    params = {"city": city, "date": _date_arg(args, zone=zone_for_city(city))}
    rng, tag = _seeded("mock_city_weather", params)
    condition = rng.choice(_CONDITIONS)
    # Wetter conditions get higher humidity: readers notice nonsense like rain at 20 %.
    wet = condition in ("Light rain", "Showers", "Thunderstorm", "Fog")
    return {
        **params,
        "temperatureC": rng.randint(-5, 36),
        "humidity": rng.randint(70, 98) if wet else rng.randint(25, 75),
        "windLevel": rng.randint(1, 7),
        "condition": condition,
        "mockTag": tag,
    }


_CARRIERS = ("SF Express", "JD Logistics", "China Post EMS", "DHL", "FedEx", "UPS")
_HUBS = ("Shanghai", "Beijing", "Guangzhou", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Xi'an", "Nanjing")
_PARCEL_STATES = (
    ("PICKED_UP", "Picked up by the courier"),
    ("IN_TRANSIT", "In transit"),
    ("ARRIVED_AT_HUB", "Arrived at the sorting hub"),
    ("OUT_FOR_DELIVERY", "Out for delivery"),
    ("DELIVERED", "Delivered"),
)


async def mock_logistics_status(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Fake tracking of a parcel."""
    number = req_str(args, "trackingNumber", max_len=64)
    if not re.fullmatch(r"[A-Za-z0-9-]{4,64}", number):
        raise bad("trackingNumber", "must be 4-64 letters, digits or '-'")
    query_date = _date_arg(args)
    params = {
        "trackingNumber": number,
        "carrier": opt_str(args, "carrier", max_len=_NAME_MAX),
        "date": query_date,
    }
    rng, tag = _seeded("mock_logistics_status", params)
    carrier = params["carrier"] or rng.choice(_CARRIERS)
    origin, destination = rng.sample(_HUBS, 2)
    stage = rng.randrange(len(_PARCEL_STATES))
    query_day = dt.date.fromisoformat(query_date)
    shipped = query_day - dt.timedelta(days=stage + rng.randint(0, 1))
    events = []
    for index in range(stage + 1):
        state, text = _PARCEL_STATES[index]
        place = origin if index == 0 else destination if index >= 3 else rng.choice(_HUBS)
        day = min(shipped + dt.timedelta(days=index), query_day)
        events.append(
            {
                "time": f"{day.isoformat()}T{rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}:00",
                "location": place,
                "status": state,
                "description": f"{text} ({place})",
            }
        )
    status, status_text = _PARCEL_STATES[stage]
    eta = query_day if stage == len(_PARCEL_STATES) - 1 else query_day + dt.timedelta(days=4 - stage)
    return {
        "trackingNumber": number,
        "carrier": carrier,
        "status": status,
        "statusText": status_text,
        "origin": origin,
        "destination": destination,
        "currentLocation": events[-1]["location"],
        "shippedDate": shipped.isoformat(),
        "estimatedDelivery": eta.isoformat(),
        "events": list(reversed(events)),
        "mockTag": tag,
    }


_RUNBOOK_STEPS = (
    "Check the service dashboard for error rate, latency and saturation since the alert fired",
    "Compare the last deployment time with the start of the symptom; roll back if they match",
    "Inspect recent logs of {service} for the first new error signature",
    "Verify the health of dependencies (database, cache, message queue) used by {service}",
    "Scale {service} out by one replica if CPU or memory is above 80%",
    "Restart one unhealthy instance of {service} and watch it rejoin the pool",
    "Check connection pool exhaustion and raise the pool size temporarily if needed",
    "Confirm the symptom is gone for 15 minutes and write the incident summary",
)
_TEAMS = ("platform-sre", "payments-oncall", "core-api", "data-infra", "edge-network")
_SEVERITY_MINUTES = {"P1": 15, "P2": 30, "P3": 60, "P4": 240}


async def mock_ops_runbook(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """A fake runbook for a service incident."""
    service = req_str(args, "service", max_len=_NAME_MAX)
    symptom = opt_str(args, "symptom", max_len=500, default="unspecified") or "unspecified"
    severity = (opt_str(args, "severity", max_len=4, default="P3") or "P3").upper()
    if severity not in _SEVERITY_MINUTES:
        raise bad("severity", f"must be one of P1, P2, P3, P4, got {severity!r}")
    params = {"service": service, "symptom": symptom, "severity": severity}
    rng, tag = _seeded("mock_ops_runbook", params)
    count = rng.randint(4, 6)
    picks = [*sorted(rng.sample(range(len(_RUNBOOK_STEPS)), count - 1)), len(_RUNBOOK_STEPS) - 1]
    steps = [_RUNBOOK_STEPS[i].format(service=service) for i in dict.fromkeys(picks)]
    return {
        **params,
        "runbookId": f"RB-{rng.randint(1000, 9999)}",
        "title": f"{service}: {symptom}",
        "ownerTeam": rng.choice(_TEAMS),
        "steps": steps,
        "escalation": "page the on-call lead now"
        if severity in ("P1", "P2")
        else "open a ticket for the owner team",
        "estimatedMinutes": _SEVERITY_MINUTES[severity] + rng.randint(0, 30),
        "mockTag": tag,
    }


_TASK_TITLES = (
    "Review the quarterly budget",
    "Reply to the customer escalation",
    "Prepare the sprint demo",
    "Update the on-call handbook",
    "Book meeting rooms for the offsite",
    "Renew the TLS certificates",
    "Clean up stale feature flags",
    "Write the release notes",
    "Interview a backend candidate",
    "Plan the database migration",
    "Fix the flaky integration test",
    "Send the weekly status report",
)
_TASK_STATUSES = ("open", "in_progress", "done")


async def mock_todo_tasks(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """A fake to-do list of one owner."""
    owner = opt_str(args, "owner", max_len=_NAME_MAX, default="me") or "me"
    status = (opt_str(args, "status", max_len=20, default="all") or "all").lower()
    if status not in ("all", *_TASK_STATUSES):
        raise bad("status", f"must be one of all, open, in_progress, done, got {status!r}")
    limit = opt_int(args, "limit", default=5, minimum=1, maximum=50) or 5
    date = _date_arg(args)
    rng, tag = _seeded("mock_todo_tasks", {"owner": owner, "date": date})
    day = dt.date.fromisoformat(date)
    pool = []
    for index, title in enumerate(rng.sample(_TASK_TITLES, rng.randint(6, len(_TASK_TITLES)))):
        pool.append(
            {
                "taskId": f"T-{index + 1:03d}",
                "title": title,
                "priority": rng.choice(("high", "medium", "low")),
                "status": rng.choice(_TASK_STATUSES),
                "dueDate": (day + dt.timedelta(days=rng.randint(-2, 14))).isoformat(),
            }
        )
    chosen = [t for t in pool if status == "all" or t["status"] == status]
    return {
        "owner": owner,
        "status": status,
        "date": date,
        "total": len(chosen),
        "tasks": chosen[:limit],
        "mockTag": tag,
    }


_MODES = {"train": ("G", 180, 900, 70), "flight": ("MU", 90, 400, 300), "bus": ("B", 240, 720, 40)}


async def mock_transport_schedule(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Fake departures between two cities on a date."""
    origin = req_str(args, "from", max_len=_NAME_MAX)
    destination = req_str(args, "to", max_len=_NAME_MAX)
    if origin.lower() == destination.lower():
        raise bad("to", "must differ from 'from'")
    mode = (opt_str(args, "mode", max_len=10, default="train") or "train").lower()
    if mode not in _MODES:
        raise bad("mode", f"must be one of train, flight, bus, got {mode!r}")
    params = {"from": origin, "to": destination, "date": _date_arg(args), "mode": mode}
    rng, tag = _seeded("mock_transport_schedule", params)
    prefix, min_minutes, max_minutes, base_price = _MODES[mode]
    duration = rng.randint(min_minutes, max_minutes)
    options = []
    for depart in sorted(rng.sample(range(6 * 60, 22 * 60, 5), rng.randint(3, 6))):
        minutes = duration + rng.randint(-15, 25)
        arrive = depart + minutes
        options.append(
            {
                "code": f"{prefix}{rng.randint(100, 9999)}",
                "departTime": f"{depart // 60:02d}:{depart % 60:02d}",
                "arriveTime": f"{arrive // 60 % 24:02d}:{arrive % 60:02d}"
                + ("+1" if arrive >= 24 * 60 else ""),
                "durationMinutes": minutes,
                "priceCny": round(base_price + minutes * rng.uniform(0.3, 0.9)),
                "seatsLeft": rng.randint(0, 120),
            }
        )
    return {**params, "options": options, "mockTag": tag}


# Patterns are anchored on non-word boundaries so "13800138000" inside a longer number
# is not reported as a phone number.
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("api_key", re.compile(r"\b(?:sk|pk|ak|AKIA)[-_A-Za-z0-9]{16,}\b")),
    ("cn_id_card", re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")),
    ("bank_card", re.compile(r"(?<!\d)\d{13,19}(?!\d)")),
    (
        "phone",
        re.compile(
            r"(?<![\d+])(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)|(?<!\d)\+\d{1,3}[- ]?\d{3,4}[- ]?\d{4,8}(?!\d)"
        ),
    ),
    (
        "ipv4",
        re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\.?\d)"),
    ),
)
_MAX_FINDINGS = 1000
_RISK = {"api_key": 3, "cn_id_card": 3, "bank_card": 3, "phone": 2, "email": 1, "ipv4": 1}


def _luhn(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = int(ch)
        if index % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(value: str) -> str:
    keep = 2 if len(value) <= 8 else 4
    return (
        value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]
        if len(value) > 2 * keep
        else "*" * len(value)
    )


async def mock_sensitive_data_detector(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Find e-mails, phone numbers, ID/bank card numbers, API keys and IPs in a text."""
    text = req_str(args, "text", max_len=100_000)
    mask = args.get("mask")
    mask = True if mask is None else mask
    if not isinstance(mask, bool):
        raise bad("mask", f"must be a boolean, got {type_name(mask)}")
    findings: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue  # an earlier, more specific detector already claimed it
            if kind == "bank_card" and not _luhn(match.group()):
                continue
            taken.append((start, end))
            findings.append({"type": kind, "start": start, "end": end, "value": match.group()})
            if len(findings) > _MAX_FINDINGS:
                raise ToolError(
                    f"too many findings (over {_MAX_FINDINGS}); send a shorter text", "invalid_argument"
                )
    findings.sort(key=lambda f: f["start"])
    pieces: list[str] = []
    cursor = 0
    for finding in findings:
        pieces += [text[cursor : finding["start"]], _mask(finding["value"])]
        cursor = finding["end"]
        if mask:
            finding["value"] = _mask(finding["value"])
    masked_text = "".join([*pieces, text[cursor:]])
    score = max((_RISK[f["type"]] for f in findings), default=0)
    _, tag = _seeded("mock_sensitive_data_detector", {"text": text, "mask": mask})
    return {
        "hasSensitiveData": bool(findings),
        "count": len(findings),
        "riskLevel": ("none", "low", "medium", "high")[score],
        "findings": findings,
        "maskedText": masked_text,
        "mockTag": tag,
    }
