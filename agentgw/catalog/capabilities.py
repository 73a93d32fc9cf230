"""Capability files: ``tools/*.backend``, ``*.frontend``, ``*.action`` (SPEC §3.3).

Each file is ``{"tools": [...]}``. Parsing a file (cached by content) gives raw entries;
:func:`build_tools` turns every file's entries into one name → :class:`ToolDef` table,
skipping names defined twice and filling each frontend tool's ``tool_type`` from the
viewport it renders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from agentgw.catalog.types import ToolDef, ToolKind, ViewportDef
from agentgw.errors import DefinitionError

CAPABILITY_SUFFIXES: dict[str, ToolKind] = {
    ".backend": "backend",
    ".frontend": "frontend",
    ".action": "action",
}

PLAN_ADD_TASKS = "_plan_add_tasks_"
PLAN_UPDATE_TASK = "_plan_update_task_"
PLAN_GET_TASKS = "_plan_get_tasks_"
PLAN_TOOLS = (PLAN_ADD_TASKS, PLAN_UPDATE_TASK, PLAN_GET_TASKS)

# Backend tools implemented inside the gateway; any other backend tool needs a ``toolApi`` URL.
BUILTIN_BACKEND_TOOLS: frozenset[str] = frozenset(
    {
        "_bash_",
        "_skill_run_script_",
        "city_datetime",
        "mock_city_weather",
        "mock_logistics_status",
        "mock_ops_runbook",
        "mock_todo_tasks",
        "mock_transport_schedule",
        "mock_sensitive_data_detector",
        "agent_file_create",
        "web_search",
        *PLAN_TOOLS,
    }
)

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

_TASK_STATUS = {"type": "string", "enum": ["init", "completed", "failed", "canceled"]}

# The plan tools exist without any capability file (a file may still redefine their texts).
PLAN_TOOL_DEFS: dict[str, ToolDef] = {
    PLAN_ADD_TASKS: ToolDef(
        name=PLAN_ADD_TASKS,
        kind="backend",
        description=(
            "Add tasks to the chat's plan, in execution order. Each task needs a short, actionable "
            "description. Replies one line per task: `taskId | status | description`."
        ),
        parameters={
            "type": "object",
            "properties": {
                "tasks": {
                    "type": "array",
                    "description": "The tasks to append to the plan.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "taskId": {"type": "string", "description": "Ignored: the gateway assigns ids."},
                            "description": {"type": "string", "description": "What the task does."},
                            "status": {**_TASK_STATUS, "description": "Initial status, default init."},
                        },
                        "required": ["description"],
                    },
                }
            },
            "required": ["tasks"],
        },
        file="(built-in)",
        version="builtin",
    ),
    PLAN_UPDATE_TASK: ToolDef(
        name=PLAN_UPDATE_TASK,
        kind="backend",
        description=(
            "Set the status of a plan task when it is done (completed), impossible (failed) or no "
            "longer needed (canceled). Replies OK."
        ),
        parameters={
            "type": "object",
            "properties": {
                "taskId": {"type": "string", "description": "The id of the task to update."},
                "status": {**_TASK_STATUS, "description": "The new status."},
                "description": {"type": "string", "description": "Optional new description or result note."},
            },
            "required": ["taskId", "status"],
        },
        file="(built-in)",
        version="builtin",
    ),
    PLAN_GET_TASKS: ToolDef(
        name=PLAN_GET_TASKS,
        kind="backend",
        description="Read the current plan: every task with its id, status and description.",
        parameters=dict(_EMPTY_SCHEMA),
        file="(built-in)",
        version="builtin",
    ),
}


@dataclass(frozen=True, slots=True)
class ParsedCapabilityFile:
    """The usable entries of one capability file and the problems found in it."""

    file: str
    kind: ToolKind
    tool_key: str  # file base name, lower-cased (the viewport of a frontend tool)
    entries: tuple[dict[str, Any], ...]
    errors: tuple[DefinitionError, ...]
    version: str = ""


def _text(entry: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = entry.get(name)
        if value is not None:
            return value if isinstance(value, str) else None
    return None


def parse_capability(doc: Any, file: str, path: Path, version: str = "") -> ParsedCapabilityFile:
    """Check a parsed capability file; bad entries are dropped with an error each."""
    kind = CAPABILITY_SUFFIXES[path.suffix.lower()]
    tool_key = path.stem.lower()
    errors: list[DefinitionError] = []
    entries: list[dict[str, Any]] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("tools"), list):
        errors.append(DefinitionError(file, "tools", 'expected a JSON object {"tools": [ ... ]}'))
        return ParsedCapabilityFile(file, kind, tool_key, (), tuple(errors), version)
    for index, entry in enumerate(cast(list[Any], doc["tools"])):
        where = f"tools[{index}]"
        if not isinstance(entry, dict):
            errors.append(DefinitionError(file, where, "each tool must be a JSON object"))
            continue
        if entry.get("type", "function") != "function":
            continue  # only function tools are tools (SPEC §3.3)
        problem = _entry_problem(entry, kind)
        if problem:
            field, reason = problem
            errors.append(DefinitionError(file, f"{where}.{field}", reason))
            continue
        entries.append(entry)
    return ParsedCapabilityFile(file, kind, tool_key, tuple(entries), tuple(errors), version)


def _entry_problem(entry: dict[str, Any], kind: ToolKind) -> tuple[str, str] | None:
    name = entry.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        return "name", f"tool name must be 1-64 letters, digits, `_` or `-`, got {name!r}"
    if name in PLAN_TOOLS and kind != "backend":
        return "name", f"`{name}` is a plan tool; it can only be redefined in a .backend file"
    if not isinstance(entry.get("description", ""), str):
        return "description", "must be a string"
    params = entry.get("parameters")
    if params is not None and not isinstance(params, dict):
        return "parameters", "must be a JSON Schema object"
    if _text(entry, "afterCallHint", "after_call_hint") is None and any(
        entry.get(k) is not None for k in ("afterCallHint", "after_call_hint")
    ):
        return "afterCallHint", "must be a string"
    if entry.get("strict") is not None and not isinstance(entry.get("strict"), bool):
        return "strict", "must be true or false"
    approval = entry.get("requiresApproval", False)
    if not isinstance(approval, bool):
        return "requiresApproval", "must be true or false"
    if approval and kind != "backend":
        return "requiresApproval", "only backend tools can require approval"
    api = entry.get("toolApi")
    if api is not None:
        if kind != "backend":
            return "toolApi", "only backend tools can have a toolApi URL"
        if not isinstance(api, str) or not api.startswith(("http://", "https://")):
            return "toolApi", f"must be an http(s) URL, got {api!r}"
    elif kind == "backend" and name not in BUILTIN_BACKEND_TOOLS:
        return (
            "toolApi",
            f"backend tool `{name}` is not a built-in; give it a toolApi URL the gateway can call",
        )
    return None


def build_tools(
    files: Iterable[ParsedCapabilityFile], viewports: Mapping[str, ViewportDef]
) -> tuple[dict[str, ToolDef], list[DefinitionError]]:
    """One name → tool table; a name defined more than once is skipped everywhere and reported."""
    seen: dict[str, list[tuple[ParsedCapabilityFile, dict[str, Any]]]] = {}
    for parsed in files:
        for entry in parsed.entries:
            seen.setdefault(entry["name"], []).append((parsed, entry))
    viewport_types = {key.lower(): vp.type for key, vp in viewports.items()}
    tools: dict[str, ToolDef] = dict(PLAN_TOOL_DEFS)
    errors: list[DefinitionError] = []
    for name, defs in seen.items():
        if len(defs) > 1:
            where = ", ".join(parsed.file for parsed, _ in defs)
            for parsed, _ in defs:
                reason = f"tool `{name}` is defined more than once ({where}); every definition is skipped"
                errors.append(DefinitionError(parsed.file, f"tools.{name}", reason))
            if name not in PLAN_TOOL_DEFS:
                continue
            tools[name] = PLAN_TOOL_DEFS[name]
            continue
        parsed, entry = defs[0]
        frontend = parsed.kind == "frontend"
        tools[name] = ToolDef(
            name=name,
            kind=parsed.kind,
            description=entry.get("description") or "",
            parameters=entry.get("parameters") or dict(_EMPTY_SCHEMA),
            after_call_hint=(_text(entry, "afterCallHint", "after_call_hint") or "").strip(),
            strict=entry.get("strict"),
            requires_approval=bool(entry.get("requiresApproval", False)),
            tool_api=entry.get("toolApi"),
            tool_key=parsed.tool_key if frontend else None,
            tool_type=viewport_types.get(parsed.tool_key, "html") if frontend else "function",
            file=parsed.file,
            version=parsed.version,
        )
    return tools, errors
