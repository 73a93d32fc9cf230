"""How the engine calls a built-in backend tool.

A built-in is an async function ``(args, ctx) -> result``. ``result`` is a ``str`` (sent to
the model as is) or a JSON-able value (sent as JSON text). A tool that fails raises
:class:`agentgw.errors.ToolError`; the engine turns it into
``{"tool": <name>, "ok": false, "code"?: …, "error": …}`` (SPEC §11.7) and the model sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

    from agentgw.catalog.types import SkillDef
    from agentgw.settings import Settings


@dataclass(slots=True)
class ToolContext:
    settings: Settings
    run_id: str
    chat_id: str
    tool_call_id: str
    skills: dict[str, SkillDef] = field(default_factory=dict)  # the catalog's skills
    skills_dir: Path | None = None
    agents_dir: Path | None = None
    http: aiohttp.ClientSession | None = None
    # Emit an extra SSE event from inside a tool (web_search → source.snapshot).
    # Called with (event_type, payload_fields).
    emit: Callable[[str, dict[str, Any]], None] | None = None
    # Validates agent definition text as the catalog does: returns a list of problems.
    validate_agent: Callable[[str, str], list[str]] | None = None
    timeout_s: float = 120.0


ToolResult = str | dict[str, Any] | list[Any]
BuiltinTool = Callable[[dict[str, Any], ToolContext], Awaitable[ToolResult]]
