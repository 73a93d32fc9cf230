"""Built-in backend tools (SPEC §6) and the helpers the engine uses to call them.

:data:`BUILTINS` maps a tool name to its async function ``(args, ctx) -> result``; the
plan tools (``_plan_*``) belong to the engine and are not here. :func:`execute_builtin`
runs one of them and never raises; :func:`call_http_tool` runs an HTTP backend tool;
:func:`resolve_templates` fills ``{{tool.field}}`` arguments (§4.5).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson

from agentgw.errors import ToolError
from agentgw.tools.agent_file import agent_file_create
from agentgw.tools.base import BuiltinTool, ToolContext, ToolResult
from agentgw.tools.bash import bash_tool
from agentgw.tools.city_time import city_datetime
from agentgw.tools.http_tool import call_http_tool
from agentgw.tools.mock_tools import (
    mock_city_weather,
    mock_logistics_status,
    mock_ops_runbook,
    mock_sensitive_data_detector,
    mock_todo_tasks,
    mock_transport_schedule,
)
from agentgw.tools.skill_script import skill_run_script
from agentgw.tools.templates import resolve_templates
from agentgw.tools.web_search import web_search

__all__ = [
    "BUILTINS",
    "BuiltinTool",
    "ToolContext",
    "ToolResult",
    "call_http_tool",
    "execute_builtin",
    "resolve_templates",
    "result_text",
    "tool_error_payload",
]

logger = logging.getLogger("agentgw.tools")

BUILTINS: dict[str, BuiltinTool] = {
    "_bash_": bash_tool,
    "_skill_run_script_": skill_run_script,
    "city_datetime": city_datetime,
    "mock_city_weather": mock_city_weather,
    "mock_logistics_status": mock_logistics_status,
    "mock_ops_runbook": mock_ops_runbook,
    "mock_todo_tasks": mock_todo_tasks,
    "mock_transport_schedule": mock_transport_schedule,
    "mock_sensitive_data_detector": mock_sensitive_data_detector,
    "agent_file_create": agent_file_create,
    "web_search": web_search,
}


def tool_error_payload(name: str, err: ToolError) -> dict[str, Any]:
    """The result the model sees for a failed tool (SPEC §11.7)."""
    payload: dict[str, Any] = {"tool": name, "ok": False}
    if err.code:
        payload["code"] = err.code
    payload["error"] = err.message
    return payload


def result_text(result: Any) -> str:
    """A tool result as the text sent to the model: strings as is, the rest as compact JSON."""
    if isinstance(result, str):
        return result
    try:
        return orjson.dumps(result).decode()
    except TypeError:
        # orjson refuses non-string keys and huge ints; the model should still see something.
        return json.dumps(result, ensure_ascii=False, separators=(",", ":"), default=str)


async def execute_builtin(name: str, args: Any, ctx: ToolContext) -> tuple[str, bool]:
    """Run the built-in ``name`` and return ``(result text, ok)``; never raises (but cancellation).

    ``ok`` is false when the tool failed or answered ``{"ok": false, …}``.
    """
    tool = BUILTINS.get(name)
    try:
        if tool is None:
            raise ToolError(f"unknown built-in tool: {name}", "unknown_tool")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ToolError("arguments must be a JSON object", "invalid_argument")
        result = await tool(args, ctx)
    except ToolError as exc:
        return result_text(tool_error_payload(name, exc)), False
    except Exception as exc:
        # A tool must never crash a run: say what broke, keep the trace in the log.
        logger.exception("built-in tool %s failed", name)
        err = ToolError(f"{name} failed: {type(exc).__name__}: {exc}", "tool_failed")
        return result_text(tool_error_payload(name, err)), False
    ok = not (isinstance(result, dict) and result.get("ok") is False)
    return result_text(result), ok
