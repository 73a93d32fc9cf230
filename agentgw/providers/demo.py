"""The demo responder: what the ``demo`` provider answers when no script is queued.

It plays a small, predictable model so a newcomer running ``make run`` sees every kind of
output — reasoning, content, tool calls (single and parallel), plan tools, frontend tools —
without an API key. It reads the request (either wire format) and decides:

1. ``tool_choice`` required → a tool must be called: ``_plan_add_tasks_`` (2–3 tasks from
   the question) when offered and no task is in play, else ``_plan_update_task_`` (the
   current task id, ``completed``), else the tool the question points at, else the first.
2. The last message is a user message and offered tools match it (by name, or keywords:
   "weather" → ``mock_city_weather``, "time"/"date" → ``city_datetime``, "confirm" →
   ``confirm_dialog`` …) → call them, in parallel when several match and parallel calls
   are allowed. Arguments are built from each tool's JSON schema.
3. The last messages are tool results → call the next matching tool not yet called for
   this question (REACT shows several steps), else answer using the results
   ("The weather in Shanghai on … is …").
4. Otherwise → a short reasoning and an answer echoing the question. A question containing
   the word "slow" streams 200 deltas ``slow_delay_s`` apart, to try cancel by hand.

It never loops: tools are only called for a user message or for matches not yet called,
and after four tool rounds without a new user message it answers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from agentgw.providers.scripted import (
    ParallelToolCalls,
    Reasoning,
    Script,
    Step,
    Text,
    ToolCall,
    Usage,
)

PLAN_ADD = "_plan_add_tasks_"
PLAN_UPDATE = "_plan_update_task_"
MAX_TOOL_ROUNDS = 4

# keyword → fragment of the tool name it points at
_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("weather", "forecast", "temperature", "rain", "天气", "气温", "下雨"), "weather"),
    (("time", "date", "clock", "today", "几点", "时间", "日期", "今天"), "datetime"),
    (("confirm", "approve", "ask me", "确认", "同意"), "confirm"),
    (("logistics", "parcel", "package", "shipment", "delivery", "快递", "物流"), "logistics"),
    (("runbook", "incident", "outage", "运维", "故障"), "runbook"),
    (("todo", "to-do", "待办"), "todo"),
    (("train", "flight", "bus", "transport", "schedule", "航班", "火车", "高铁"), "transport"),
    (("sensitive", "pii", "privacy", "敏感", "隐私"), "sensitive"),
    (("theme", "dark mode", "light mode", "主题"), "theme"),
    (("firework", "celebrate", "烟花", "庆祝"), "firework"),
    (("modal", "popup", "dialog box", "弹窗"), "modal"),
    (("search", "look up", "web", "news", "搜索", "新闻"), "search"),
    (("bash", "shell", "command", "terminal", "files", "folder", "directory", "命令", "文件"), "bash"),
    (
        (
            "add",
            "plus",
            "sum",
            "subtract",
            "minus",
            "multiply",
            "times",
            "divide",
            "calculate",
            "compute",
            "average",
            "mean",
            "median",
            "stdev",
            "count the words",
            "word count",
            "计算",
            "加",
            "乘",
        ),
        "skill",
    ),
    (
        ("create an agent", "new agent", "make an agent", "build an agent", "创建智能体", "新建智能体"),
        "agent_file",
    ),
)
# Tools that open a UI and wait for the user: chained after a result only when asked for.
_UI_ONLY = re.compile(r"\b(show|card|display)\b|展示|卡片", re.IGNORECASE)
_TEMPLATE = re.compile(r"\{\{([A-Za-z0-9_]+)\.([A-Za-z0-9_.]+?)([+-]\d+d)?\}\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPS = (
    (re.compile(r"\b(mean|average)\b|平均", re.I), "math_stats", "mean"),
    (re.compile(r"\bmedian\b|中位", re.I), "math_stats", "median"),
    (re.compile(r"\bstdev\b|standard deviation|标准差", re.I), "math_stats", "stdev"),
    (re.compile(r"\b(multiply|times)\b|\*|×|乘", re.I), "math_basic", "mul"),
    (re.compile(r"\b(divide|divided)\b|/|÷|除", re.I), "math_basic", "div"),
    (re.compile(r"\b(subtract|minus)\b|减", re.I), "math_basic", "sub"),
    (re.compile(r"\bpower\b|\^|次方", re.I), "math_basic", "pow"),
)

_CITIES = {
    "上海": "Shanghai",
    "北京": "Beijing",
    "深圳": "Shenzhen",
    "广州": "Guangzhou",
    "杭州": "Hangzhou",
    "成都": "Chengdu",
    "南京": "Nanjing",
    "武汉": "Wuhan",
    "西安": "Xi'an",
    "重庆": "Chongqing",
    "东京": "Tokyo",
    "伦敦": "London",
    "巴黎": "Paris",
    "纽约": "New York",
    "新加坡": "Singapore",
}
_CITY_NAMES = (
    "Shanghai",
    "Beijing",
    "Shenzhen",
    "Guangzhou",
    "Hangzhou",
    "Chengdu",
    "Nanjing",
    "Wuhan",
    "Chongqing",
    "Hong Kong",
    "Taipei",
    "Tokyo",
    "Seoul",
    "Singapore",
    "Sydney",
    "London",
    "Paris",
    "Berlin",
    "Madrid",
    "Rome",
    "New York",
    "San Francisco",
    "Los Angeles",
    "Chicago",
    "Toronto",
)


def _keyword_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    # ASCII keywords match whole words ("date" must not match "update"); CJK ones anywhere.
    parts = [rf"\b{re.escape(k)}s?\b" if k.isascii() else re.escape(k) for k in keys]
    return re.compile("|".join(parts), re.IGNORECASE)


_KEYWORD_PATTERNS = tuple((_keyword_pattern(keys), fragment) for keys, fragment in _KEYWORDS)
_IN_CITY = re.compile(r"\b(?:in|at|for)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)")
_TASK_ID = re.compile(r"\b[0-9a-f]{8}\b")
_TASK_ID_LABELLED = re.compile(r"task[ _-]?id\W{0,4}([0-9a-f]{8})\b", re.IGNORECASE)
_TASK_LINE = re.compile(r"^\s*-\s*([0-9a-f]{8})\s*\|\s*(\w+)\s*\|", re.MULTILINE)
_TASK_DESCRIPTION = r"^\s*-\s*{}\s*\|\s*\w+\s*\|\s*(.+?)\s*$"
_SPLIT_TASKS = re.compile(r"\s*(?:,|;|，|；|、|\band then\b|\bthen\b|\band\b|然后|并且|以及|\n)\s*")
_DELTA = re.compile(r"[\u3000-\u9fff\uff00-\uffef]{1,2}|\S+\s*|\s+")
_SLOW = re.compile(r"\bslow\b|慢", re.IGNORECASE)


@dataclass
class _Call:
    id: str
    name: str
    arguments: str


@dataclass
class _Message:
    role: str
    text: str = ""
    calls: list[_Call] = field(default_factory=list)
    tool_call_id: str = ""


@dataclass
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class _Request:
    messages: list[_Message]
    tools: list[_Tool]
    choice: str  # auto | required | none
    forced: str | None  # a named forced tool
    parallel: bool


# ---- reading either wire format -----------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _read_openai(body: dict[str, Any]) -> _Request:
    messages = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        calls = [
            _Call(
                tc.get("id") or "",
                (tc.get("function") or {}).get("name") or "",
                (tc.get("function") or {}).get("arguments") or "",
            )
            for tc in m.get("tool_calls") or []
            if isinstance(tc, dict)
        ]
        messages.append(
            _Message(str(m.get("role")), _text_of(m.get("content")), calls, m.get("tool_call_id") or "")
        )
    tools = []
    for t in body.get("tools") or []:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        tools.append(_Tool(fn.get("name", ""), fn.get("description", ""), fn.get("parameters") or {}))
    raw = body.get("tool_choice")
    forced = None
    if isinstance(raw, dict):
        forced = (raw.get("function") or {}).get("name")
        choice = "required"
    else:
        choice = raw if raw in ("auto", "required", "none") else "auto"
    return _Request(messages, tools, choice, forced, body.get("parallel_tool_calls") is not False)


def _read_anthropic(body: dict[str, Any]) -> _Request:
    messages = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role, content = str(m.get("role")), m.get("content")
        if isinstance(content, str):
            messages.append(_Message(role, content))
            continue
        text, calls = [], []
        for block in content or []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                text.append(block.get("text", ""))
            elif kind == "tool_use":
                calls.append(
                    _Call(
                        block.get("id", ""),
                        block.get("name", ""),
                        orjson.dumps(block.get("input") or {}).decode(),
                    )
                )
            elif kind == "tool_result":
                messages.append(
                    _Message("tool", _text_of(block.get("content")), [], block.get("tool_use_id", ""))
                )
        if text or calls:
            messages.append(_Message(role, "".join(text), calls))
    tools = [
        _Tool(t.get("name", ""), t.get("description", ""), t.get("input_schema") or {})
        for t in body.get("tools") or []
    ]
    raw = body.get("tool_choice") or {}
    kind = raw.get("type") if isinstance(raw, dict) else None
    choice = {"any": "required", "tool": "required", "none": "none"}.get(kind or "", "auto")
    forced = raw.get("name") if kind == "tool" else None
    parallel = not (isinstance(raw, dict) and raw.get("disable_parallel_tool_use"))
    return _Request(messages, tools, choice, forced, parallel)


# ---- deciding ---------------------------------------------------------------------------


def _last_user(messages: Sequence[_Message]) -> tuple[int, str]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i, messages[i].text
    return -1, ""


def find_city(text: str, default: str = "Shanghai") -> str:
    """A city named in ``text`` (Chinese names given in English), else ``default``."""
    for zh, en in _CITIES.items():
        if zh in text:
            return en
    lowered = text.lower()
    for name in _CITY_NAMES:
        if name.lower() in lowered:
            return name
    match = _IN_CITY.search(text)
    return match.group(1) if match else default


def find_task_id(text: str, done: set[str]) -> str | None:
    """The task the engine's prompt is about: a labelled id, else the first open one listed."""
    labelled: list[str] = [m for m in _TASK_ID_LABELLED.findall(text) if m not in done]
    if labelled:
        return labelled[0]
    for task_id, status in _TASK_LINE.findall(text):
        if status.lower() in ("init", "in_progress") and task_id not in done:
            return str(task_id)
    rest: list[str] = [m for m in _TASK_ID.findall(text) if m not in done]
    return rest[0] if rest else None


def matching_tools(text: str, tools: Sequence[_Tool]) -> list[_Tool]:
    """Offered tools the question points at (plan tools only when named)."""
    lowered = text.lower()
    found: list[_Tool] = []
    for tool in tools:
        name = tool.name.lower()
        if not name or name.startswith("_plan_"):
            if name and name in lowered:
                found.append(tool)
            continue
        if name in lowered or any(
            fragment in name and pattern.search(text) for pattern, fragment in _KEYWORD_PATTERNS
        ):
            found.append(tool)
    return found


def task_description(text: str, task_id: str | None) -> str | None:
    """The description of ``task_id`` in an engine task list (``- id | status | desc``)."""
    if not task_id:
        return None
    match = re.search(_TASK_DESCRIPTION.format(re.escape(task_id)), text, re.MULTILINE)
    return match.group(1) if match else None


def _plan_tasks(question: str) -> list[str]:
    parts = [p.strip(" .?!。？！") for p in _SPLIT_TASKS.split(question) if p and p.strip(" .?!。？！")]
    if len(parts) >= 2:
        return parts[:3]
    q = question.strip() or "the request"
    return [
        f"Gather what is needed for: {q}",
        f"Work out the answer to: {q}",
        "Summarise the result for the user",
    ]


def _value(name: str, schema: dict[str, Any], ctx: dict[str, Any]) -> Any:
    key = name.lower().replace("_", "")
    enum = schema.get("enum")
    if key == "status" and isinstance(enum, list) and "completed" in enum:
        return "completed"
    if isinstance(enum, list) and enum:
        return enum[0]
    if key in ("city", "location", "place"):
        return ctx["city"]
    if key in ("date", "day"):
        return ctx["date"]
    if key == "taskid":
        return ctx.get("task_id") or "00000000"
    if key == "status":
        return "completed"
    if key in ("command", "cmd"):
        return "ls"
    if key in ("title", "header"):
        return "Please confirm"
    if key in ("numresults", "limit", "count", "topk"):
        return 3
    kind = schema.get("type")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        raw_items = schema.get("items")
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {"type": "string"}
        return [_value(name.rstrip("s"), items, ctx)]
    if kind == "object":
        return build_arguments(schema, ctx)
    return ctx["question"][:120] or name


def build_arguments(schema: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """Plausible arguments from a JSON schema: required properties, plus city/date-like ones."""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if name in required or name.lower() in ("city", "date", "query", "message"):
            out[name] = _value(name, prop if isinstance(prop, dict) else {}, ctx)
    return out


def _skill_arguments(question: str) -> dict[str, Any]:
    """``_skill_run_script_`` arguments for an arithmetic or statistics question."""
    numbers = _NUMBER.findall(question) or ["2", "3"]
    skill, op = "math_basic", "add"
    for pattern, which, name in _OPS:
        if pattern.search(question):
            skill, op = which, name
            break
    if skill == "math_stats" or (len(numbers) > 2 and re.search(r"\bsum\b", question, re.I)):
        return {
            "skill": "math_stats",
            "script": "scripts/stats.py",
            "args": ["--op", "sum" if op == "add" else op, "--values", ",".join(numbers)],
        }
    a, b = [*numbers, "0"][:2]
    return {"skill": "math_basic", "script": "scripts/calc.py", "args": ["--op", op, "--a", a, "--b", b]}


def _agent_arguments(question: str) -> dict[str, Any]:
    words = re.findall(r"[A-Za-z]+", question.lower())
    topic = next(
        (w for w in reversed(words) if w not in {"agent", "an", "a", "the", "for", "create", "new"}), "helper"
    )
    key = f"demo_created_{topic}"[:60]
    return {
        "key": key,
        "name": f"{topic.title()} helper",
        "icon": "emoji:🧩",
        "description": f"Created by the demo agent builder from: {question[:80]}",
        "mode": "ONESHOT",
        "modelConfig": {"modelKey": "demo"},
        "plain": {"systemPrompt": f"You help with {topic}. Answer briefly."},
    }


def _arguments_for(tool: _Tool, ctx: dict[str, Any]) -> dict[str, Any]:
    if tool.name == "_skill_run_script_":
        return _skill_arguments(ctx["question"])
    if tool.name == "agent_file_create":
        return _agent_arguments(ctx["question"])
    if tool.name == PLAN_ADD:
        return {"tasks": [{"description": d, "status": "init"} for d in _plan_tasks(ctx["question"])]}
    if tool.name == PLAN_UPDATE:
        return {"taskId": ctx.get("task_id") or "00000000", "status": "completed"}
    args = build_arguments(tool.parameters, ctx)
    # Follow argument templates the system prompt teaches ({{tool.field+Nd}}, §4.5) when the
    # referenced tool has already run in this question.
    for source, field_path, shift in ctx.get("templates", ()):
        last = field_path.split(".")[-1]
        if source in ctx.get("called", ()) and last in (tool.parameters.get("properties") or {}):
            args[last] = f"{{{{{source}.{field_path}{shift or ''}}}}}"
    return args


def _describe(name: str, content: str) -> str:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        if data.get("ok") is False:
            return f"{name} failed: {data.get('error')}"
        if "condition" in data or "temperatureC" in data:
            return (
                f"The weather in {data.get('city', 'the city')} on {data.get('date', 'that day')} is "
                f"{data.get('condition', 'unknown')}, {data.get('temperatureC', '?')}°C"
                f" (humidity {data.get('humidity', '?')}%, wind level {data.get('windLevel', '?')})."
            )
        if "time" in data and "timezone" in data:
            return (
                f"In {data.get('city', 'the city')} it is {data.get('time')} on {data.get('date')}"
                f" ({data.get('weekday', '')}, {data.get('timezone')})."
            )
        pairs = ", ".join(f"{k}: {v}" for k, v in list(data.items())[:6])
        return f"{name} returned {pairs}."
    text = " ".join(content.split())
    return f"{name} returned: {text[:300]}{'…' if len(text) > 300 else ''}"


def _json_field(arguments: str, key: str) -> str:
    try:
        data = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return ""
    return str(data.get(key, "")) if isinstance(data, dict) else ""


def _deltas(text: str) -> list[str]:
    return _DELTA.findall(text) or [text]


def _tool_step(tools: Sequence[_Tool], ctx: dict[str, Any], parallel: bool) -> Step:
    calls = []
    for tool in tools:
        args = orjson.dumps(_arguments_for(tool, ctx)).decode()
        calls.append(ToolCall(tool.name, args, fragments=max(1, min(6, len(args) // 12))))
    if len(calls) == 1 or not parallel:
        return calls[0]
    return ParallelToolCalls(calls)


def _usage(req: _Request, out_text: str, reasoning: str) -> Usage:
    prompt = sum(len(m.text) + sum(len(c.arguments) for c in m.calls) for m in req.messages)
    prompt += sum(len(orjson.dumps(t.parameters)) for t in req.tools)
    reasoning_tokens = max(1, len(reasoning) // 4)
    return Usage(max(1, prompt // 4), reasoning_tokens + max(1, len(out_text) // 4), reasoning_tokens)


def respond(body: dict[str, Any], wire: str, *, delay_s: float = 0.0, slow_delay_s: float = 0.1) -> Script:
    """The demo's answer to one request body, as a script for the scripted provider."""
    req = _read_anthropic(body) if wire == "anthropic" else _read_openai(body)
    user_index, question = _last_user(req.messages)
    since_user = req.messages[user_index + 1 :] if user_index >= 0 else req.messages
    called = {c.name for m in since_user for c in m.calls}
    done_tasks = {
        _json_field(c.arguments, "taskId") for m in req.messages for c in m.calls if c.name == PLAN_UPDATE
    }
    task_id = find_task_id(question, done_tasks)
    # In an execute-stage task prompt only the current task's words should pick tools and
    # their arguments, not the whole task list the prompt repeats.
    task = task_description(question, task_id)
    focus = task or question
    today = dt.date.today()
    when = today + dt.timedelta(days=1) if re.search(r"tomorrow|明天", focus, re.IGNORECASE) else today
    ctx: dict[str, Any] = {
        "question": focus.strip(),
        "city": find_city(task or "", default=find_city(question)),
        "date": when.isoformat(),
        "task_id": task_id,
    }
    system = " ".join(m.text for m in req.messages if m.role == "system")
    ctx["templates"] = _TEMPLATE.findall(system)
    ctx["called"] = called
    offered = [] if req.choice == "none" else req.tools
    by_name = {t.name: t for t in offered}
    last = req.messages[-1] if req.messages else _Message("user")
    rounds = sum(1 for m in since_user if m.calls)

    chosen: list[_Tool] = []
    if req.choice == "required" and offered:
        if req.forced and req.forced in by_name:
            chosen = [by_name[req.forced]]
        elif PLAN_ADD in by_name and (PLAN_UPDATE not in by_name or not ctx["task_id"]):
            chosen = [by_name[PLAN_ADD]]
        elif PLAN_UPDATE in by_name:
            chosen = [by_name[PLAN_UPDATE]]
        else:
            chosen = matching_tools(focus, offered)[:1] or [offered[0]]
    elif offered and rounds < MAX_TOOL_ROUNDS:
        matches = matching_tools(focus, offered)
        if not _UI_ONLY.search(focus):
            matches = [t for t in matches if not t.name.startswith("show_")]
        if last.role == "tool":
            matches = [t for t in matches if t.name not in called]
            chosen = matches[:1]
        elif last.role == "user":
            chosen = matches if req.parallel else matches[:1]

    if chosen:
        names = ", ".join(t.name for t in chosen)
        thought = f"The request points at {names}; I'll call it with arguments taken from the question and the tool schema."
        steps: list[Step] = [Reasoning(_deltas(thought)), _tool_step(chosen, ctx, req.parallel)]
        steps.append(_usage(req, names, thought))
        return Script(steps, delay_s)

    if last.role == "tool":
        results = []
        names_by_id = {c.id: c.name for m in req.messages for c in m.calls}
        for m in reversed(req.messages):
            if m.role != "tool":
                break
            results.append(_describe(names_by_id.get(m.tool_call_id, "the tool"), m.text))
        results.reverse()
        thought = "The tool results are in; I'll summarise them for the user."
        answer = " ".join(results)
        return Script(
            [Reasoning(_deltas(thought)), Text(_deltas(answer)), _usage(req, answer, thought)], delay_s
        )

    if question and _SLOW.search(question):
        words = (
            "This answer streams slowly on purpose so you can press cancel and watch the run stop.".split()
        )
        slow = [f"{words[i % len(words)]} " for i in range(200)]
        thought = "The user asked for a slow answer; I'll stream it one word at a time."
        return Script(
            [Reasoning(_deltas(thought)), Text(slow), _usage(req, "".join(slow), thought)], slow_delay_s
        )

    if task:
        thought = f"Task {ctx['task_id']} asks: “{task}”. No tool fits, so I'll answer it directly."
        answer = f"Done with “{task}”: as the demo model I can only describe the step, not really perform it."
        return Script(
            [Reasoning(_deltas(thought)), Text(_deltas(answer)), _usage(req, answer, thought)], delay_s
        )

    shown = " ".join(question.split())
    shown = shown[:200] + ("…" if len(shown) > 200 else "")
    thought = f"The user wrote “{shown}”. No tool is needed, so I'll answer directly and keep it short."
    answer = (
        f"You asked: “{shown}”.\n\nI'm the built-in demo model of agentgw, so this answer is canned — "
        "but it streams exactly like a real one: reasoning first, then content, one delta at a time. "
        "Configure a real provider under `agent.providers` to get real answers."
    )
    return Script([Reasoning(_deltas(thought)), Text(_deltas(answer)), _usage(req, answer, thought)], delay_s)
