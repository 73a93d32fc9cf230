"""PLAN_EXECUTE (§4.2, §11.4, §11.5): plan stage → one task at a time → summary.

The plan belongs to the chat: a run starts from the chat's latest plan, ``_plan_add_tasks_``
appends to it, and execution starts at the first task that is still ``init``.
"""

from __future__ import annotations

from typing import Any

from agentgw import ids
from agentgw.catalog.types import Stage, ToolDef
from agentgw.engine.modes import record_round
from agentgw.engine.state import RunState, ToolCall
from agentgw.engine.turn import PLAN_TOOLS, model_turn

STATUSES = ("init", "completed", "failed", "canceled")
WORK_TURNS = 6
BAD_STATUS = "失败: 非法状态，仅支持 init/completed/failed/canceled"


def _norm_status(value: Any) -> str | None:
    if value is None or value == "":
        return "init"
    if not isinstance(value, str):
        return None
    status = value.strip().lower()
    if status == "in_progress":
        return "init"
    if status == "cancelled":
        status = "canceled"
    return status if status in STATUSES else None


def _plan(state: RunState) -> dict[str, Any]:
    if state.plan is None:
        state.plan = {"planId": f"plan_{ids.token_hex(4)}", "tasks": []}
    return state.plan


def _emit_plan(state: RunState, created: bool) -> None:
    plan = _plan(state)
    snapshot = {"planId": plan["planId"], "tasks": [dict(t) for t in plan["tasks"]]}
    fields = {"planId": plan["planId"], "chatId": state.chat_id, "plan": snapshot}
    if created:
        state.log.emit("plan.create", fields)
    state.log.emit("plan.update", fields)
    if state.recorder is not None:
        state.recorder.set_plan(snapshot)


def current_task(state: RunState) -> dict[str, Any] | None:
    for task in (state.plan or {}).get("tasks", []):
        if task.get("status") == "init":
            return dict(task)
    return None


def task_lines(state: RunState) -> str:
    tasks = (state.plan or {}).get("tasks", [])
    return "\n".join(f"- {t['taskId']} | {t['status']} | {t['description']}" for t in tasks)


# ---- the plan tools (§6, §11.4) ------------------------------------------------------------


def plan_tool(state: RunState, call: ToolCall, args: dict[str, Any]) -> str:
    if call.name == "_plan_add_tasks_":
        return _add_tasks(state, args)
    if call.name == "_plan_update_task_":
        return _update_task(state, args)
    return _get_tasks(state)


def _add_tasks(state: RunState, args: dict[str, Any]) -> str:
    raw = args.get("tasks")
    if raw is None and ("description" in args or "taskId" in args):
        raw = [args]  # a single task's fields at top level are accepted too
    if not isinstance(raw, list) or not raw:
        return "失败: 缺少任务描述"
    new: list[dict[str, Any]] = []
    for item in raw:
        if isinstance(item, str):
            item = {"description": item}
        if not isinstance(item, dict):
            return "失败: 缺少任务描述"
        desc = item.get("description")
        if not isinstance(desc, str) or not desc.strip():
            return "失败: 缺少任务描述"
        status = _norm_status(item.get("status"))
        if status is None:
            return BAD_STATUS
        # Fresh ids: the model's own ids are ignored (§11.4).
        new.append({"taskId": ids.token_hex(4), "description": desc.strip(), "status": status})
    created = state.plan is None or not state.plan.get("tasks")
    _plan(state)["tasks"].extend(new)
    _emit_plan(state, created)
    return "\n".join(f"{t['taskId']} | {t['status']} | {t['description']}" for t in new)


def _update_task(state: RunState, args: dict[str, Any]) -> str:
    task_id = args.get("taskId")
    if not isinstance(task_id, str) or not task_id.strip():
        return "失败: 缺少 taskId"
    status = _norm_status(args.get("status"))
    if status is None or args.get("status") in (None, ""):
        return BAD_STATUS
    for task in _plan(state)["tasks"]:
        if task["taskId"] == task_id.strip():
            task["status"] = status
            desc = args.get("description")
            if isinstance(desc, str) and desc.strip():
                task["description"] = desc.strip()
            _emit_plan(state, False)
            return "OK"
    return f"失败: 未找到任务 {task_id.strip()}"


def _get_tasks(state: RunState) -> str:
    plan = _plan(state)
    lines = [f"- {t['taskId']} | {t['status']} | {t['description']}" for t in plan["tasks"]] or ["- (空)"]
    current = current_task(state)
    return (
        f"计划ID: {plan['planId']}\n任务列表:\n"
        + "\n".join(lines)
        + f"\n当前应执行 taskId: {current['taskId'] if current else 'none'}"
    )


# ---- the mode ------------------------------------------------------------------------------


def _only(tools: tuple[ToolDef, ...], name: str) -> list[ToolDef]:
    return [t for t in tools if t.name == name]


async def run_plan_execute(state: RunState) -> str:
    agent = state.agent
    plan_stage = agent.stages["plan"]
    execute = agent.stages["execute"]
    summary = agent.stages.get("summary") or execute
    await _plan_stage(state, plan_stage)
    finish = await _execute_stage(state, execute)
    if finish == "timeout":
        return finish
    state.log.task_id = None
    turn = await model_turn(state, summary, tools=[], tool_choice=None, stage_label="summary")
    await record_round(state, summary, turn)
    return "end_turn"


async def _plan_stage(state: RunState, stage: Stage) -> None:
    # Ordinary tools are shown to the planner "for reference, not callable" (§11.5).
    tools = [t for t in stage.tools if t.name in PLAN_TOOLS]
    if stage.deep_thinking:
        draft = await model_turn(state, stage, tools=[], tool_choice=None, reasoning=True, stage_label="plan")
        await record_round(state, stage, draft)
        tools = _only(stage.tools, "_plan_add_tasks_")
    turn = await model_turn(
        state, stage, tools=tools, tool_choice="required", reasoning=False, stage_label="plan"
    )
    await record_round(state, stage, turn, plan_tool)


async def _execute_stage(state: RunState, stage: Stage) -> str:
    steps = 0
    template = state.agent.runtime_prompts.task_execution_prompt_template
    update_only = _only(stage.tools, "_plan_update_task_")
    while steps < state.agent.plan_max_steps:
        task = current_task(state)
        if task is None:
            break
        steps += 1
        task_id = task["taskId"]
        state.log.task_id = None
        state.log.emit(
            "task.start",
            {
                "taskId": task_id,
                "runId": state.run_id,
                "taskName": task["description"][:60],
                "description": task["description"],
            },
        )
        state.log.task_id = task_id
        prompt = (
            template.replace("{{task_list}}", task_lines(state))
            .replace("{{task_id}}", task_id)
            .replace("{{task_description}}", task["description"])
        )
        state.messages.append({"role": "user", "content": prompt})
        if state.recorder is not None:
            state.recorder.add_user_message(prompt)
        finish = await _work_on_task(state, stage, task_id, update_only)
        if finish == "timeout":
            return finish
        status = _status_of(state, task_id)
        state.log.task_id = None
        if status == "completed":
            state.log.emit("task.complete", {"taskId": task_id, "runId": state.run_id})
        elif status == "canceled":
            state.log.emit("task.cancel", {"taskId": task_id, "runId": state.run_id})
        else:
            if status == "init":
                _set_status(state, task_id, "failed")
            state.log.emit(
                "task.fail",
                {
                    "taskId": task_id,
                    "runId": state.run_id,
                    "error": {"code": "task_failed", "message": f"task {task_id} ended as {status}"},
                },
            )
            break  # failed interrupts execution at once
    state.log.task_id = None
    return "end_turn"


async def _work_on_task(state: RunState, stage: Stage, task_id: str, update_only: list[ToolDef]) -> str:
    tools = list(stage.tools)
    for _ in range(WORK_TURNS):
        turn = await model_turn(state, stage, tools=tools, tool_choice="auto", stage_label="execute")
        outcomes = await record_round(state, stage, turn, plan_tool, only_first=True)
        if any(o.timed_out for o in outcomes):
            return "timeout"
        if _status_of(state, task_id) != "init":
            return "end_turn"
        if not outcomes:
            break
    # Update turns: the model must call _plan_update_task_ (one repair attempt).
    for attempt in range(2):
        if attempt:
            state.messages.append(
                {
                    "role": "user",
                    "content": f"请调用 _plan_update_task_ 更新任务 {task_id} 的状态（completed/failed）。",
                }
            )
        turn = await model_turn(
            state, stage, tools=update_only, tool_choice="required", stage_label="execute"
        )
        await record_round(state, stage, turn, plan_tool, only_first=True)
        if _status_of(state, task_id) != "init":
            break
    return "end_turn"


def _status_of(state: RunState, task_id: str) -> str:
    for task in (state.plan or {}).get("tasks", []):
        if task["taskId"] == task_id:
            return str(task["status"])
    return "failed"


def _set_status(state: RunState, task_id: str, status: str) -> None:
    for task in (state.plan or {}).get("tasks", []):
        if task["taskId"] == task_id:
            task["status"] = status
    _emit_plan(state, False)
