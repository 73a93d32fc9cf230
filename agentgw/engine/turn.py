"""One model turn: build the provider call, stream it, turn every delta into one event.

This is the hot path of the gateway (§4.1): each provider event is handled with a type
check and one emit; nothing is buffered for later.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from agentgw.catalog.prompting import assemble_system_prompt
from agentgw.catalog.types import Stage, ToolDef
from agentgw.engine.state import RunState, ToolCall, short_id
from agentgw.errors import ProviderError
from agentgw.providers import stream_into
from agentgw.providers.base import (
    ContentDelta,
    Finish,
    ModelCall,
    ProviderEvent,
    ReasoningDelta,
    ReasoningSignature,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from agentgw.usage import estimate_tokens, usage_payload

logger = logging.getLogger("agentgw.engine")

PLAN_TOOLS = frozenset({"_plan_add_tasks_", "_plan_update_task_", "_plan_get_tasks_"})


@dataclass(slots=True)
class TurnResult:
    content: str = ""
    reasoning: str = ""
    signature: str | None = None
    calls: list[ToolCall] = field(default_factory=list)
    finish: str = "stop"
    usage: Usage | None = None


def tool_kind(name: str, tools: dict[str, ToolDef]) -> tuple[str, ToolDef | None]:
    if name in PLAN_TOOLS:
        return "plan", tools.get(name)
    tool = tools.get(name)
    if tool is None:
        return "unknown", None
    return tool.kind, tool


def _provider_for(state: RunState, stage: Stage) -> tuple[str, str, str]:
    model = stage.model.model
    provider = state.settings.agent.providers.get(model.provider)
    if provider is None:
        raise ProviderError(
            "provider_not_configured",
            f"provider {model.provider!r} of model {model.key!r} is not configured (agent.providers)",
            provider=model.provider,
            model=model.model_id,
        )
    return provider.base_url, provider.api_key, provider.new_api_path


def build_call(
    state: RunState,
    stage: Stage,
    system_prompt: str,
    tools: list[ToolDef],
    tool_choice: ToolChoice | None,
    reasoning: bool | None,
    extra_messages: list[dict[str, Any]] | None = None,
) -> ModelCall:
    cfg = stage.model
    model = cfg.model
    base_url, api_key, new_api_path = _provider_for(state, stage)
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.extend(state.context)
    messages.extend(state.messages)
    if extra_messages:
        messages.extend(extra_messages)
    send_tools = bool(tools) and tool_choice not in (None, "none")
    max_tokens = cfg.max_tokens or model.max_output_tokens or 4096
    return ModelCall(
        protocol=model.protocol,
        provider_key=model.provider,
        base_url=base_url,
        api_key=api_key,
        model_id=model.model_id,
        messages=messages,
        tools=[t.schema() for t in tools] if send_tools else [],
        tool_choice=tool_choice if send_tools else None,
        parallel_tool_calls=(False if state.agent.mode != "ONESHOT" else None) if send_tools else None,
        max_tokens=max_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        reasoning_enabled=cfg.reasoning.enabled if reasoning is None else reasoning,
        reasoning_effort=cfg.reasoning.effort,
        is_reasoner=model.is_reasoner,
        new_api_path=new_api_path,
        idle_timeout_s=state.agent.budget.model.timeout_ms / 1000,
        trace=state.run_id,
        stage=stage.name,
    )


def system_snapshot(call: ModelCall) -> dict[str, Any]:
    """The ``system`` member of a stored step (§11.8)."""
    return {
        "model": call.model_id,
        "messages": [m for m in call.messages[:1] if m["role"] == "system"],
        "tools": call.tools,
        "stream": True,
    }


async def model_turn(
    state: RunState,
    stage: Stage,
    *,
    tools: list[ToolDef],
    tool_choice: ToolChoice | None,
    reasoning: bool | None = None,
    extra_messages: list[dict[str, Any]] | None = None,
    stage_label: str | None = None,
) -> TurnResult:
    """Stream one model call; returns what the model said. Raises ProviderError / RunAborted."""
    state.count_model_call()
    system_prompt = assemble_system_prompt(state.agent, stage, state.snapshot, state.disclosed_skills)
    call = build_call(state, stage, system_prompt, tools, tool_choice, reasoning, extra_messages)
    if state.recorder is not None:
        state.recorder.begin_stage(stage_label or stage.name, system_snapshot(call), state.log.task_id)
    by_name = {t.name: t for t in tools}
    retries = state.agent.budget.model.retry_count
    attempt = 0
    while True:
        emitted_before = state.log.seq
        try:
            result = await _stream_turn(state, call, by_name)
            break
        except ProviderError as exc:
            # Retries only for transient errors, and only before the first delta went out (§4.3).
            if not exc.retriable or attempt >= retries or state.log.seq != emitted_before:
                raise
            attempt += 1
            logger.warning("run %s: retrying model call (%d/%d): %s", state.run_id, attempt, retries, exc)
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    _account_usage(state, stage, call, result)
    return result


async def _stream_turn(state: RunState, call: ModelCall, tools: dict[str, ToolDef]) -> TurnResult:
    log = state.log
    result = TurnResult()
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, ToolCall] = {}

    def on_batch(batch: list[ProviderEvent]) -> None:
        log.cork()
        try:
            for ev in batch:
                kind = type(ev)
                if kind is ContentDelta:
                    text = ev.text  # type: ignore[union-attr]
                    log.text_delta("content", text)
                    content.append(text)
                elif kind is ReasoningDelta:
                    text = ev.text  # type: ignore[union-attr]
                    log.text_delta("reasoning", text)
                    reasoning.append(text)
                elif kind is ToolCallDelta:
                    assert isinstance(ev, ToolCallDelta)
                    tc = calls.get(ev.index)
                    if tc is None:
                        tc = _open_call(state, ev, tools, len(calls))
                        calls[ev.index] = tc
                    if ev.arguments:
                        chunk = len(tc.arg_parts)
                        tc.arg_parts.append(ev.arguments)
                        if tc.kind == "action":
                            log.emit("action.args", {"actionId": tc.id, "delta": ev.arguments})
                        else:
                            log.emit(
                                "tool.args", {"toolId": tc.id, "delta": ev.arguments, "chunkIndex": chunk}
                            )
                elif kind is Usage:
                    assert isinstance(ev, Usage)
                    result.usage = ev
                elif kind is Finish:
                    assert isinstance(ev, Finish)
                    result.finish = ev.reason
                elif kind is ReasoningSignature:
                    assert isinstance(ev, ReasoningSignature)
                    result.signature = ev.signature
        finally:
            log.uncork()

    # The events of one provider read go out in one send, each its own SSE event: on_batch
    # runs in the read callback of the provider connection, as soon as the chunk is in.
    await stream_into(state.providers, call, on_batch, log=state.interaction_log)
    log.close_block()
    result.content = "".join(content)
    result.reasoning = "".join(reasoning)
    result.calls = [calls[i] for i in sorted(calls)]
    # A turn's tool.end / action.end go out when the model turn ends, before its tools run.
    for tc in result.calls:
        if tc.kind == "action":
            log.emit("action.end", {"actionId": tc.id})
        else:
            log.emit("tool.end", {"toolId": tc.id})
    return result


def _open_call(state: RunState, ev: ToolCallDelta, tools: dict[str, ToolDef], ordinal: int) -> ToolCall:
    name = ev.name or ""
    kind, tool = tool_kind(name, tools)
    provider_id = ev.id or f"call_{state.run_id[:8]}_{len(state.messages)}_{ordinal}"
    log = state.log
    if kind == "action":
        tc = ToolCall(ev.index, short_id("a_"), provider_id, name, tool, kind)
        log.emit(
            "action.start",
            {
                "actionId": tc.id,
                "runId": state.run_id,
                "taskId": log.task_id,
                "actionName": name,
                "description": tool.description if tool else None,
            },
        )
        return tc
    if kind == "frontend":
        assert tool is not None
        tc = ToolCall(ev.index, short_id("t_"), provider_id, name, tool, kind)
        fields: dict[str, Any] = {
            "toolId": tc.id,
            "runId": state.run_id,
            "taskId": log.task_id,
            "toolName": name,
            "toolType": tool.tool_type,
            "toolKey": tool.tool_key,
            "toolTimeout": state.settings.agent.tools.frontend.submit_timeout_ms,
            "description": tool.description or None,
        }
    else:
        tc = ToolCall(ev.index, provider_id, provider_id, name, tool, kind)
        fields = {
            "toolId": tc.id,
            "runId": state.run_id,
            "taskId": log.task_id,
            "toolName": name,
            "toolType": "function",
            "toolApi": tool.tool_api if tool else None,
            "description": (tool.description or None) if tool else None,
        }
    log.emit("tool.start", fields)
    return tc


def _account_usage(state: RunState, stage: Stage, call: ModelCall, result: TurnResult) -> None:
    usage = result.usage
    estimated = False
    if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
        estimated = True
        out_text = result.reasoning + result.content + "".join(tc.arguments for tc in result.calls)
        usage = Usage(
            input_tokens=estimate_tokens(call.messages),
            output_tokens=estimate_tokens(out_text),
            estimated=True,
        )
    model = stage.model.model
    result.usage = usage
    payload = usage_payload(
        state.run_id,
        model.key,
        model.pricing,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        estimated=estimated,
    )
    state.usage.add_call(payload)
    state.log.emit("usage", {**payload, "taskId": state.log.task_id, "stage": stage.name})
    state.check_usage_budgets()


def assistant_messages(state: RunState, result: TurnResult, echo_reasoning: bool) -> list[dict[str, Any]]:
    """The assistant message of a turn, in the OpenAI form the providers take."""
    msg: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.calls:
        msg["tool_calls"] = [
            {
                "id": tc.provider_id,
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments or "{}"},
            }
            for tc in result.calls
        ]
    if echo_reasoning and result.reasoning:
        msg["reasoning_content"] = result.reasoning
        if result.signature:
            msg["_thinking_signature"] = result.signature
    return [msg]
