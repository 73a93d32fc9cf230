"""PLAN_EXECUTE details (§4.2, §11.4, §11.5): turns, repair, maxSteps, prompts, visibility."""

from __future__ import annotations

import asyncio
from typing import Any

from agentgw.providers.scripted import Finish, Reasoning, ScriptedProvider, Text, ToolCall
from tests.conftest import GatewayFactory
from tests.gateway import Gateway, types_of
from tests.test_query_stream import assert_contract

BASE: dict[str, Any] = {
    "mode": "PLAN_EXECUTE",
    "modelConfig": {"modelKey": "demo", "reasoning": {"enabled": True, "effort": "HIGH"}},
    "toolConfig": {"backends": ["city_datetime"]},
    "planExecute": {
        "plan": {"systemPrompt": "Plan it.", "deepThinking": False},
        "execute": {"systemPrompt": "Do it."},
    },
}


def agent(**changes: Any) -> dict[str, Any]:
    out = {**BASE, "planExecute": {**BASE["planExecute"]}}
    for key, value in changes.items():
        if key in ("plan", "execute", "summary", "maxSteps"):
            out["planExecute"][key] = value
        else:
            out[key] = value
    return out


async def run_plan(
    gw: Gateway,
    provider: ScriptedProvider,
    descriptions: list[str],
    per_task: Any,
    message: str = "go",
) -> list[dict[str, Any]]:
    """Run with a plan of ``descriptions``; ``per_task(task_ids)`` enqueues the execute scripts."""
    provider.enqueue([ToolCall("_plan_add_tasks_", {"tasks": [{"description": d} for d in descriptions]})])
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        async for event in gw.stream({"agentKey": "pe", "message": message}):
            events.append(event)
            if event["type"] == "plan.create":
                per_task([t["taskId"] for t in event["plan"]["tasks"]])
    assert_contract(events)
    return events


def update(task_id: str, status: str = "completed") -> list[Any]:
    return [ToolCall("_plan_update_task_", {"taskId": task_id, "status": status}), Finish("tool_calls")]


async def test_deep_thinking_draft_then_generate(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"pe": agent(plan={"systemPrompt": "Plan it.", "deepThinking": True})})
    provider.enqueue([Reasoning("thinking hard", chunks=2), Text("Draft: one step.")])

    def per_task(ids: list[str]) -> None:
        provider.enqueue(update(ids[0]))
        provider.enqueue([Text("Summary.")])

    events = await run_plan(gw, provider, ["only step"], per_task)
    assert events[-1]["type"] == "run.complete"
    draft, generate, work, summary = (r.body for r in provider.requests)
    # Draft: reasoning on, no tools (tool_choice none → no tools sent).
    assert draft["reasoning_effort"] == "high" and "tools" not in draft
    # Generate: reasoning off, required, only the plan tool.
    assert "reasoning_effort" not in generate
    assert generate["tool_choice"] == "required"
    assert [t["function"]["name"] for t in generate["tools"]] == ["_plan_add_tasks_"]
    # The generate turn sees the draft.
    assert generate["messages"][-1]["content"] == "Draft: one step."
    # Execute offers the ordinary tools plus _plan_update_task_, never _plan_get_tasks_ unless listed.
    assert {t["function"]["name"] for t in work["tools"]} == {"city_datetime", "_plan_update_task_"}
    assert "tools" not in summary
    # Both plan turns stream: reasoning of the draft, then the plan tool call.
    kinds = types_of(events)
    assert kinds.index("reasoning.start") < kinds.index("tool.start") < kinds.index("plan.create")


async def test_shallow_plan_turn_has_reasoning_off(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"pe": agent()})

    def per_task(ids: list[str]) -> None:
        provider.enqueue(update(ids[0]))
        provider.enqueue([Text("done")])

    await run_plan(gw, provider, ["a"], per_task)
    plan_turn = provider.requests[0].body
    assert plan_turn["tool_choice"] == "required" and "reasoning_effort" not in plan_turn
    assert provider.requests[1].body["reasoning_effort"] == "high"  # execute keeps the agent's reasoning


async def test_update_turn_gets_one_repair(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"pe": agent()})

    def per_task(ids: list[str]) -> None:
        provider.enqueue([Text("worked on it")])  # work turn without a tool → update turns follow
        provider.enqueue([ToolCall("_plan_update_task_", {"status": "completed"}), Finish("tool_calls")])
        provider.enqueue(update(ids[0]))  # the repair attempt
        provider.enqueue([Text("summary")])

    events = await run_plan(gw, provider, ["a"], per_task)
    results = [e["result"] for e in events if e["type"] == "tool.result"]
    assert "失败: 缺少 taskId" in results
    assert results[-1] == "OK"
    update_turns = [r.body for r in provider.requests if r.body.get("tool_choice") == "required"][1:]
    assert len(update_turns) == 2
    assert [t["function"]["name"] for t in update_turns[0]["tools"]] == ["_plan_update_task_"]
    assert "task.complete" in types_of(events)
    provider.assert_complete()


async def test_task_not_updated_after_repair_fails_and_stops(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"pe": agent()})

    def per_task(ids: list[str]) -> None:
        provider.enqueue([Text("no tool")])
        provider.enqueue([ToolCall("_plan_update_task_", {"taskId": ids[0]}), Finish("tool_calls")])
        provider.enqueue([ToolCall("_plan_update_task_", {"taskId": ids[0], "status": "bogus"})])
        provider.enqueue([Text("summary")])

    events = await run_plan(gw, provider, ["a", "b"], per_task)
    kinds = types_of(events)
    assert kinds.count("task.start") == 1 and kinds.count("task.fail") == 1
    fail = next(e for e in events if e["type"] == "task.fail")
    assert fail["error"]["code"] == "task_failed"
    last_plan = [e for e in events if e["type"] == "plan.update"][-1]["plan"]["tasks"]
    assert [t["status"] for t in last_plan] == ["failed", "init"]
    assert events[-1]["type"] == "run.complete"


async def test_max_steps_bounds_tasks(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"pe": agent(maxSteps=2)})

    def per_task(ids: list[str]) -> None:
        provider.enqueue(update(ids[0]))
        provider.enqueue(update(ids[1]))
        provider.enqueue([Text("summary")])

    events = await run_plan(gw, provider, ["a", "b", "c"], per_task)
    assert types_of(events).count("task.start") == 2
    provider.assert_complete()


async def test_task_prompt_override_and_default(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    custom = agent(
        runtimePrompts={
            "planExecute": {"taskExecutionPromptTemplate": "DO {{task_id}}: {{task_description}}"}
        }
    )
    gw = await make_gateway({"pe": custom})

    def per_task(ids: list[str]) -> None:
        provider.enqueue(update(ids[0]))
        provider.enqueue([Text("s")])

    events = await run_plan(gw, provider, ["water the plants"], per_task)
    task_id = next(e for e in events if e["type"] == "task.start")["taskId"]
    assert provider.requests[1].body["messages"][-1]["content"] == f"DO {task_id}: water the plants"


async def test_default_task_prompt_lists_tasks(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"pe": agent()})

    def per_task(ids: list[str]) -> None:
        provider.enqueue(update(ids[0]))
        provider.enqueue(update(ids[1]))
        provider.enqueue([Text("s")])

    events = await run_plan(gw, provider, ["first", "second"], per_task)
    ids = [e["taskId"] for e in events if e["type"] == "task.start"]
    prompt = provider.requests[2].body["messages"][-1]["content"]
    assert f"- {ids[0]} | completed | first" in prompt
    assert f"- {ids[1]} | init | second" in prompt
    assert f"Current task: {ids[1]}" in prompt


async def test_plan_get_tasks_when_listed(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"pe": agent(toolConfig={"backends": ["_plan_get_tasks_"]})})

    def per_task(ids: list[str]) -> None:
        provider.enqueue([ToolCall("_plan_get_tasks_", {}), Finish("tool_calls")])
        provider.enqueue(update(ids[0]))
        provider.enqueue([Text("s")])

    events = await run_plan(gw, provider, ["look"], per_task)
    listing = next(
        e["result"] for e in events if e["type"] == "tool.result" and e["result"].startswith("计划ID")
    )
    task_id = next(e["taskId"] for e in events if e["type"] == "task.start")
    assert f"任务列表:\n- {task_id} | init | look" in listing
    assert listing.endswith(f"当前应执行 taskId: {task_id}")
    names = {t["function"]["name"] for t in provider.requests[1].body["tools"]}
    assert names == {"_plan_get_tasks_", "_plan_update_task_"}


async def test_plan_tool_validation_texts(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    gw = await make_gateway({"pe": agent()})
    provider.enqueue([ToolCall("_plan_add_tasks_", {"tasks": [{"description": "x", "status": "running"}]})])
    provider.enqueue([Text("nothing planned")])
    events = await gw.query({"agentKey": "pe", "message": "go"})
    assert [e["result"] for e in events if e["type"] == "tool.result"] == [
        "失败: 非法状态，仅支持 init/completed/failed/canceled"
    ]
    assert "task.start" not in types_of(events)
    assert events[-1]["type"] == "run.complete"


async def test_single_task_fields_at_top_level(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"pe": agent()})
    provider.enqueue([ToolCall("_plan_add_tasks_", {"description": "just one"})])
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for event in gw.stream({"agentKey": "pe", "message": "go"}):
            events.append(event)
            if event["type"] == "plan.create":
                provider.enqueue(update(event["plan"]["tasks"][0]["taskId"], "canceled"))
                provider.enqueue([Text("s")])
    result = next(e["result"] for e in events if e["type"] == "tool.result")
    task_id, status, desc = (part.strip() for part in result.split("|"))
    assert (len(task_id), status, desc) == (8, "init", "just one")
    assert "task.cancel" in types_of(events)
    assert events[-1]["type"] == "run.complete"
