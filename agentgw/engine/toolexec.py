"""Executing the tool calls of one model turn.

Backend tools of one turn run concurrently; frontend tools and approvals wait for
``/api/ap/submit`` (the run timeout is paused meanwhile); actions answer ``"OK"`` at once.
Every failure becomes a tool result the model sees (§11.7); nothing here ends the run except
a frontend submit timeout, which ends it with ``finishReason: "timeout"`` (§3.3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from agentgw.catalog.types import ApprovalRule
from agentgw.engine.state import PendingCall, RunState, ToolCall
from agentgw.errors import ToolError
from agentgw.settings import resolve_dir
from agentgw.tools import BUILTINS, call_http_tool, result_text, tool_error_payload
from agentgw.tools.base import ToolContext
from agentgw.tools.templates import resolve_templates

logger = logging.getLogger("agentgw.engine")

PlanToolHandler = Callable[[RunState, ToolCall, dict[str, Any]], str]


@dataclass(slots=True)
class ToolOutcome:
    call: ToolCall
    text: str
    ok: bool = True
    timed_out: bool = False  # a frontend tool timed out: the run ends after this turn


def tool_message(call: ToolCall, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.provider_id, "name": call.name, "content": text}


def _error_text(name: str, message: str, code: str | None = None) -> str:
    return result_text(tool_error_payload(name, ToolError(message, code)))


def parse_arguments(call: ToolCall) -> dict[str, Any]:
    raw = call.arguments.strip()
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ToolError(
            f"arguments are not valid JSON: {exc}; got {raw[:200]!r}", "invalid_arguments"
        ) from exc
    if not isinstance(value, dict):
        raise ToolError(f"arguments must be a JSON object, got {type(value).__name__}", "invalid_arguments")
    return value


async def run_tool_calls(
    state: RunState,
    calls: list[ToolCall],
    plan_tools: PlanToolHandler | None = None,
) -> list[ToolOutcome]:
    """Execute ``calls`` (in model order for the messages); emits results as they complete."""
    outcomes = await asyncio.gather(*(_run_one(state, c, plan_tools) for c in calls))
    return list(outcomes)


async def _run_one(state: RunState, call: ToolCall, plan_tools: PlanToolHandler | None) -> ToolOutcome:
    log = state.log
    if call.kind == "action":
        log.emit("action.result", {"actionId": call.id, "result": "OK"})
        return ToolOutcome(call, "OK")
    try:
        state.count_tool_call()
        args = parse_arguments(call)
        if call.kind == "unknown":
            raise ToolError(
                f"unknown tool: {call.name or '(no name)'}; it is not offered in this stage", "unknown_tool"
            )
        if call.kind == "frontend":
            outcome = await _wait_frontend(state, call, args)
        elif call.kind == "plan":
            if plan_tools is None:
                raise ToolError(f"{call.name} is only available in PLAN_EXECUTE runs", "unknown_tool")
            outcome = ToolOutcome(call, plan_tools(state, call, args))
        else:
            outcome = await _run_backend(state, call, args)
    except ToolError as exc:
        outcome = ToolOutcome(call, result_text(tool_error_payload(call.name, exc)), ok=False)
    log.emit(
        "tool.result",
        {"toolId": call.id, "result": outcome.text, "runId": state.run_id, "taskId": log.task_id},
    )
    return outcome


def _approval_policy(rules: tuple[ApprovalRule, ...], name: str, args: dict[str, Any]) -> str | None:
    for rule in rules:
        if rule.tool != name and rule.tool != "*":
            continue
        if rule.match and any(args.get(k) != v for k, v in rule.match.items()):
            continue
        return rule.policy
    return None


async def _run_backend(state: RunState, call: ToolCall, args: dict[str, Any]) -> ToolOutcome:
    tool = call.tool
    assert tool is not None
    policy = _approval_policy(state.agent.approval, call.name, args)
    if policy is None and tool.requires_approval:
        policy = "confirm"
    if policy == "deny":
        raise ToolError(f"{call.name} is denied by the agent's approval policy", "denied_by_policy")
    if policy == "confirm":
        args = await _wait_approval(state, call, args)
    args = resolve_templates(args, state.latest_results)
    timeout = state.agent.budget.tool.timeout_ms / 1000
    folders = state.settings.agent
    ctx = ToolContext(
        settings=state.settings,
        run_id=state.run_id,
        chat_id=state.chat_id,
        tool_call_id=call.id,
        skills=state.snapshot.skills,
        skills_dir=resolve_dir(folders.skill.external_dir),
        agents_dir=resolve_dir(folders.catalog.external_dir),
        http=state.http,
        emit=lambda type_, fields: _emit_from_tool(state, type_, fields),
        validate_agent=state.snapshot.validate_agent_text,
        timeout_s=timeout,
    )
    try:
        return await _execute(state, call, args, ctx, limit_s=timeout)
    finally:
        pending = state.pending.get(call.id)
        if pending is not None and pending.status == "APPROVED":
            pending.status = "EXECUTED"
            state.log.emit("tool.status", {"toolId": call.id, "runId": state.run_id, "status": "EXECUTED"})


async def _execute(
    state: RunState, call: ToolCall, args: dict[str, Any], ctx: ToolContext, limit_s: float
) -> ToolOutcome:
    tool = call.tool
    assert tool is not None
    try:
        async with asyncio.timeout(limit_s):
            if tool.tool_api:
                result = await call_http_tool(tool.tool_api, call.name, args, ctx)
            else:
                fn = BUILTINS.get(call.name)
                if fn is None:
                    raise ToolError(f"backend tool {call.name} has no implementation", "not_implemented")
                result = await fn(args, ctx)
    except TimeoutError as exc:
        raise ToolError(
            f"{call.name} timed out after {limit_s:g}s (budget.tool.timeoutMs)", "tool_timeout"
        ) from exc
    except ToolError:
        raise
    except Exception as exc:  # a tool must never crash the run
        logger.exception("tool %s failed", call.name)
        raise ToolError(f"{call.name} failed: {type(exc).__name__}: {exc}", "tool_failed") from exc
    if call.name == "_skill_run_script_":
        skill = str(args.get("skill", "")).strip().lower()
        if skill and skill not in state.disclosed_skills and skill in state.snapshot.skills:
            state.disclosed_skills.append(skill)
    state.latest_results[call.name] = result
    return ToolOutcome(
        call, result_text(result), ok=not (isinstance(result, dict) and result.get("ok") is False)
    )


def _new_pending(
    state: RunState, call: ToolCall, kind: Literal["frontend", "approval"], timeout_ms: int
) -> PendingCall:
    loop = asyncio.get_running_loop()
    return PendingCall(
        tool_id=call.id,
        tool_name=call.name,
        kind=kind,
        status="PENDING_SUBMIT" if kind == "frontend" else "PENDING_APPROVAL",
        future=loop.create_future(),
        expires_at=loop.time() + timeout_ms / 1000,
    )


async def _await_submit(state: RunState, pending: PendingCall) -> Any:
    """Wait for the submit of ``pending`` with the run timeout paused; raises TimeoutError."""
    state.pending[pending.tool_id] = pending
    state.pause_timeout()
    try:
        timeout = max(0.0, pending.expires_at - asyncio.get_running_loop().time())
        return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
    finally:
        state.resume_timeout()


async def _wait_frontend(state: RunState, call: ToolCall, args: dict[str, Any]) -> ToolOutcome:
    timeout_ms = state.settings.agent.tools.frontend.submit_timeout_ms
    pending = _new_pending(state, call, "frontend", timeout_ms)
    try:
        params = await _await_submit(state, pending)
    except TimeoutError:
        pending.status = "EXPIRED"
        text = _error_text(
            call.name,
            f"no submit for {call.name} within {timeout_ms} ms (agent.tools.frontend.submit-timeout-ms)",
            "frontend_submit_timeout",
        )
        return ToolOutcome(call, text, ok=False, timed_out=True)
    pending.status = "EXECUTED"
    result = {} if params is None else params
    state.latest_results[call.name] = result
    return ToolOutcome(call, result_text(result))


async def _wait_approval(state: RunState, call: ToolCall, args: dict[str, Any]) -> dict[str, Any]:
    timeout_ms = state.settings.agent.tools.frontend.submit_timeout_ms
    pending = _new_pending(state, call, "approval", timeout_ms)
    state.log.emit(
        "tool.status",
        {"toolId": call.id, "runId": state.run_id, "taskId": state.log.task_id, "status": "PENDING_APPROVAL"},
    )
    try:
        decision = await _await_submit(state, pending)
    except TimeoutError as exc:
        pending.status = "EXPIRED"
        state.log.emit("tool.status", {"toolId": call.id, "runId": state.run_id, "status": "EXPIRED"})
        raise ToolError(
            f"approval for {call.name} expired after {timeout_ms} ms", "approval_expired"
        ) from exc
    if not isinstance(decision, dict) or not isinstance(decision.get("approved"), bool):
        # submit() validates the shape; this is a guard for direct callers.
        raise ToolError("approval answer must be {approved: true|false}", "invalid_approval")
    if not decision["approved"]:
        pending.status = "REJECTED"
        reason = decision.get("reason") or "no reason given"
        state.log.emit(
            "tool.status",
            {"toolId": call.id, "runId": state.run_id, "status": "REJECTED", "detail": str(reason)},
        )
        raise ToolError(f"the user rejected {call.name}: {reason}", "rejected_by_user")
    pending.status = "APPROVED"
    state.log.emit("tool.status", {"toolId": call.id, "runId": state.run_id, "status": "APPROVED"})
    edited = decision.get("arguments")
    return edited if isinstance(edited, dict) else args


def _emit_from_tool(state: RunState, type_: str, fields: dict[str, Any]) -> None:
    state.log.emit(type_, {**fields, "runId": state.run_id, "taskId": state.log.task_id})
