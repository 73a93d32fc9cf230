"""The mode loops (§4.2): ONESHOT and REACT here, PLAN_EXECUTE in ``plan_execute.py``.

A mode drives model turns and tool rounds and returns the run's finish reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agentgw.catalog.types import Stage, ToolDef
from agentgw.engine.state import RunState
from agentgw.engine.toolexec import PlanToolHandler, ToolOutcome, run_tool_calls, tool_message
from agentgw.engine.turn import TurnResult, assistant_messages, model_turn
from agentgw.errors import RunAborted
from agentgw.providers.base import ToolChoice

ModeRunner = Callable[[RunState], Awaitable[str]]

_CHOICE: dict[str, ToolChoice] = {"NONE": "none", "AUTO": "auto", "REQUIRED": "required"}


def echo_reasoning(stage: Stage) -> bool:
    model = stage.model.model
    # Anthropic requires the signed thinking block back on tool-use turns (§10.7).
    return model.echo_reasoning or (model.protocol == "ANTHROPIC" and stage.model.reasoning.enabled)


async def record_round(
    state: RunState,
    stage: Stage,
    turn: TurnResult,
    plan_tools: PlanToolHandler | None = None,
    only_first: bool = False,
    ends_run: bool = False,
) -> list[ToolOutcome]:
    """Append the turn to the run's messages, run its tools, append their results.

    ``ends_run``: a turn without tool calls is the run's last; its step is then stored
    with the run's end (one write, right before the terminal event), not here.
    """
    state.messages.extend(assistant_messages(state, turn, echo_reasoning(stage)))
    if not turn.calls:
        if state.recorder is not None and not ends_run:
            await state.recorder.flush_step()
        return []
    calls = turn.calls
    skipped = []
    if only_first and len(calls) > 1:
        calls, skipped = calls[:1], calls[1:]
    outcomes = await run_tool_calls(state, calls, plan_tools)
    for extra in skipped:
        # Every call needs an answer in the transcript; this mode runs one tool per step.
        text = (
            f'{{"tool": "{extra.name}", "ok": false, "code": "one_tool_per_step", '
            '"error": "only one tool runs per step; call it again in the next step"}'
        )
        state.log.emit("tool.result", {"toolId": extra.id, "result": text, "runId": state.run_id})
        outcomes.append(ToolOutcome(extra, text, ok=False))
    by_id = {o.call.id: o for o in outcomes}
    for call in turn.calls:
        state.messages.append(tool_message(call, by_id[call.id].text))
    if state.recorder is not None:
        await state.recorder.flush_step()
    return outcomes


def _stage_choice(state: RunState, has_tools: bool) -> ToolChoice | None:
    if not has_tools:
        return None
    return _CHOICE[state.agent.tool_choice]


async def run_oneshot(state: RunState) -> str:
    stage = state.agent.stages["plain"]
    tools = list(stage.tools)
    choice = _stage_choice(state, bool(tools))
    turn = await _turn_with_repair(state, stage, tools, choice, "oneshot")
    outcomes = await record_round(state, stage, turn, ends_run=True)
    if any(o.timed_out for o in outcomes):
        return "timeout"
    if not outcomes:
        return "end_turn"
    # One round of tools is allowed, then the final answer turn without tools.
    final = await model_turn(state, stage, tools=[], tool_choice=None, stage_label="oneshot")
    await record_round(state, stage, final, ends_run=True)
    return "end_turn"


async def run_react(state: RunState) -> str:
    stage = state.agent.stages["react"]
    tools = list(stage.tools)
    choice = _stage_choice(state, bool(tools))
    for _step in range(state.agent.react_max_steps):
        turn = await _turn_with_repair(state, stage, tools, choice, "react")
        outcomes = await record_round(state, stage, turn, only_first=True, ends_run=True)
        if any(o.timed_out for o in outcomes):
            return "timeout"
        if not outcomes:
            return "end_turn"
    # Steps are used up: one last turn without tools writes the answer.
    final = await model_turn(state, stage, tools=[], tool_choice=None, stage_label="react")
    await record_round(state, stage, final, ends_run=True)
    return "end_turn"


async def _turn_with_repair(
    state: RunState,
    stage: Stage,
    tools: list[ToolDef],
    choice: ToolChoice | None,
    label: str,
) -> TurnResult:
    """A turn; when ``REQUIRED`` produced no tool call, up to ``model.retryCount`` repair turns (§11.5)."""
    turn = await model_turn(state, stage, tools=tools, tool_choice=choice, stage_label=label)
    repairs = state.agent.budget.model.retry_count
    while choice == "required" and not turn.calls and repairs > 0:
        repairs -= 1
        state.messages.extend(assistant_messages(state, turn, False))
        state.messages.append(
            {"role": "user", "content": "A tool call is required here: call one of the offered tools."}
        )
        turn = await model_turn(state, stage, tools=tools, tool_choice=choice, stage_label=label)
    if choice == "required" and not turn.calls and not tools:
        raise RunAborted("no_tools", "toolChoice REQUIRED but the stage has no tools")
    return turn
