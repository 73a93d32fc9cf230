"""Read API of the catalog: agents, one agent resolved, viewports (SPEC §8, §11.1, §3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from agentgw.appkeys import CATALOG
from agentgw.catalog.prompting import assemble_system_prompt
from agentgw.catalog.snapshot import CatalogSnapshot
from agentgw.catalog.types import Agent, AgentStatus, Budget, CallBudget, Stage, ToolDef
from agentgw.catalog.viewports import viewport_payload
from agentgw.http.envelope import fail, ok


def add_routes(app: web.Application) -> None:
    """Register ``GET /api/ap/agents``, ``/api/ap/agent`` and ``/api/ap/viewport``."""
    app.router.add_get("/api/ap/agents", list_agents)
    app.router.add_get("/api/ap/agent", get_agent)
    app.router.add_get("/api/ap/viewport", get_viewport)


def _snapshot(request: web.Request) -> CatalogSnapshot:
    return request.app[CATALOG].snapshot()


def _raw_text(raw: Mapping[str, Any] | None, name: str) -> str:
    value = raw.get(name) if raw is not None else None
    return value if isinstance(value, str) else ""


def _primary_model(agent: Agent) -> str:
    return agent.primary_stage.model.model.key


def _tool_names(agent: Agent) -> list[str]:
    names: list[str] = []
    for stage in agent.stages.values():
        for tool in stage.tools:
            lowered = tool.name.lower()
            if lowered not in names:
                names.append(lowered)
    return names


def _meta(status: AgentStatus) -> dict[str, Any]:
    agent = status.agent
    raw = status.raw
    mode = agent.mode if agent else _raw_text(raw, "mode").upper().replace("-", "_") or None
    model = _primary_model(agent) if agent else None
    return {
        "model": model,
        "mode": mode,
        "icon": agent.icon if agent else _raw_text(raw, "icon"),
        "tools": _tool_names(agent) if agent else [],
        "skills": list(agent.skills) if agent else [],
        "version": agent.version if agent else status.version,
        "status": status.status,
        "errors": list(status.errors),
    }


def _summary(status: AgentStatus) -> dict[str, Any]:
    agent = status.agent
    return {
        "key": status.key,
        "name": agent.name if agent else (_raw_text(status.raw, "name") or status.key),
        "description": agent.description if agent else _raw_text(status.raw, "description"),
        "meta": _meta(status),
    }


def _matches(entry: dict[str, Any], tag: str) -> bool:
    needle = tag.lower()
    meta = entry["meta"]
    haystack = [entry["key"], entry["description"], *meta["tools"], *meta["skills"]]
    return any(needle in str(item).lower() for item in haystack)


async def list_agents(request: web.Request) -> web.Response:
    """``GET /api/ap/agents[?tag=]``: every agent file sorted by key, failed ones included."""
    snapshot = _snapshot(request)
    entries = [_summary(status) for _, status in sorted(snapshot.statuses.items())]
    tag = (request.query.get("tag") or "").strip()
    if tag:
        entries = [entry for entry in entries if _matches(entry, tag)]
    return ok(entries)


def _call_budget(budget: CallBudget) -> dict[str, Any]:
    return {"maxCalls": budget.max_calls, "timeoutMs": budget.timeout_ms, "retryCount": budget.retry_count}


def _budget(budget: Budget) -> dict[str, Any]:
    out: dict[str, Any] = {
        "runTimeoutMs": budget.run_timeout_ms,
        "model": _call_budget(budget.model),
        "tool": _call_budget(budget.tool),
    }
    if budget.max_tokens is not None:
        out["maxTokens"] = budget.max_tokens
    if budget.max_points is not None:
        out["maxPoints"] = budget.max_points
    return out


def _stage_view(agent: Agent, stage: Stage, snapshot: CatalogSnapshot) -> dict[str, Any]:
    cfg = stage.model
    model = cfg.model
    view: dict[str, Any] = {
        "model": {
            "key": model.key,
            "provider": model.provider,
            "protocol": model.protocol,
            "modelId": model.model_id,
            "reasoning": {"enabled": cfg.reasoning.enabled, "effort": cfg.reasoning.effort},
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
        },
        "systemPrompt": assemble_system_prompt(agent, stage, snapshot),
        "tools": [_tool_view(tool) for tool in stage.tools],
    }
    if stage.name == "plan":
        view["deepThinking"] = stage.deep_thinking
    return view


def _tool_view(tool: ToolDef) -> dict[str, Any]:
    """The provider schema plus where the tool runs (kind, viewport, approval)."""
    out = tool.schema()
    out["kind"] = tool.kind
    out["toolType"] = tool.tool_type
    if tool.tool_key:
        out["toolKey"] = tool.tool_key
    if tool.tool_api:
        out["toolApi"] = tool.tool_api
    if tool.requires_approval:
        out["requiresApproval"] = True
    return out


def _written(raw: Mapping[str, Any], *path: str) -> str:
    node: Any = raw
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, str) else ""


def _instructions(agent: Agent) -> str:
    """The primary stage prompt as written (PLAN_EXECUTE: first non-blank of execute, summary, plan)."""
    if agent.mode == "ONESHOT":
        return _written(agent.raw, "plain", "systemPrompt")
    if agent.mode == "REACT":
        return _written(agent.raw, "react", "systemPrompt")
    for stage in ("execute", "summary", "plan"):
        text = _written(agent.raw, "planExecute", stage, "systemPrompt")
        if text.strip():
            return text
    return ""


async def get_agent(request: web.Request) -> web.Response:
    """``GET /api/ap/agent?agentKey=``: one agent resolved as a run would see it."""
    key = (request.query.get("agentKey") or "").strip()
    if not key:
        return fail(400, "missing query parameter: agentKey")
    snapshot = _snapshot(request)
    status = snapshot.statuses.get(key)
    if status is None:
        return fail(404, f"agent not found: {key}")
    agent = status.agent
    body = _summary(status)
    if agent is None:
        body["instructions"] = ""
        return ok(body)
    meta = body["meta"]
    meta.update(
        {
            "name": agent.name,
            "toolChoice": agent.tool_choice,
            "budget": _budget(agent.budget),
            "stages": {name: _stage_view(agent, stage, snapshot) for name, stage in agent.stages.items()},
            "file": agent.file,
        }
    )
    if agent.mode == "REACT":
        meta["maxSteps"] = agent.react_max_steps
    elif agent.mode == "PLAN_EXECUTE":
        meta["maxSteps"] = agent.plan_max_steps
    if agent.approval:
        meta["approval"] = [
            {"tool": rule.tool, "policy": rule.policy, **({"match": rule.match} if rule.match else {})}
            for rule in agent.approval
        ]
    body["instructions"] = _instructions(agent)
    return ok(body)


async def get_viewport(request: web.Request) -> web.Response:
    """``GET /api/ap/viewport?viewportKey=[&chatId=][&runId=]``: html as ``{html}``, others as their JSON."""
    key = (request.query.get("viewportKey") or "").strip()
    if not key:
        return fail(400, "missing query parameter: viewportKey")
    viewport = _snapshot(request).viewport(key)
    if viewport is None:
        return fail(404, f"viewport not found: {key}")
    return ok(viewport_payload(viewport))
