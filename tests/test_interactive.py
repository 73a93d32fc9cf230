"""Frontend tools, actions, approvals, submit, cancel and PLAN_EXECUTE through real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw import appkeys
from agentgw.providers.scripted import (
    Finish,
    Hang,
    ParallelToolCalls,
    Reasoning,
    ScriptedProvider,
    Signal,
    Text,
    ToolCall,
)
from tests.conftest import GatewayFactory
from tests.gateway import Gateway, iter_sse, types_of
from tests.test_query_stream import assert_contract

FRONT = {
    "mode": "REACT",
    "modelConfig": {"modelKey": "demo"},
    "toolConfig": {"backends": ["city_datetime"], "frontends": ["ask_user"], "actions": ["switch_theme"]},
    "react": {"systemPrompt": "Ask when unsure."},
}


def write_caps(dirs: dict[str, Path]) -> None:
    (dirs["tools"] / "ask_user.frontend").write_text(
        orjson.dumps(
            {
                "tools": [
                    {
                        "type": "function",
                        "name": "ask_user",
                        "description": "Ask the user",
                        "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
                    }
                ]
            }
        ).decode()
    )
    (dirs["viewports"] / "ask_user.html").write_text("<html><body>ask</body></html>")
    (dirs["tools"] / "mock_ops_runbook.backend").write_text(
        orjson.dumps(
            {
                "tools": [
                    {
                        "type": "function",
                        "name": "mock_ops_runbook",
                        "description": "runbook",
                        "requiresApproval": True,
                        "parameters": {"type": "object", "properties": {}},
                    }
                ]
            }
        ).decode()
    )


async def _collect_until_pending(
    stream: Any, events: list[dict[str, Any]], kind: str = "tool.end"
) -> dict[str, Any]:
    async for event in stream:
        events.append(event)
        if event["type"] == kind:
            return event
    raise AssertionError(f"stream ended before {kind}: {types_of(events)}")


async def _drain(stream: Any, events: list[dict[str, Any]]) -> None:
    async for event in stream:
        events.append(event)


async def test_frontend_tool_pauses_until_submit(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT}, **{"agent.tools.frontend.submit-timeout-ms": 5000})
    provider.enqueue([ToolCall("ask_user", {"question": "Proceed?"}, id="prov1"), Finish("tool_calls")])
    provider.enqueue([Text("Thanks, proceeding.")])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "f", "message": "do it"})
    async with asyncio.timeout(10):
        end = await _collect_until_pending(stream, events)
        start = next(e for e in events if e["type"] == "tool.start")
        assert start["toolType"] == "html" and start["toolKey"] == "ask_user"
        assert start["toolTimeout"] == 5000
        tool_id = start["toolId"]
        assert tool_id.startswith("t_") and len(tool_id) == 10 and end["toolId"] == tool_id
        run_id = start["runId"]
        # A run waiting for a human is not at work: the served process may collect garbage.
        assert not gw.app[appkeys.RUNS].working()
        # A submit for an unknown tool id changes nothing.
        code, body = await gw.post("/api/ap/submit", {"runId": run_id, "toolId": "t_00000000", "params": {}})
        assert code == 200 and body["data"]["status"] == "unmatched" and body["data"]["accepted"] is False
        _, body = await gw.post(
            "/api/ap/submit", {"runId": run_id, "toolId": tool_id, "params": {"ok": True}}
        )
        assert body["data"] == {
            "accepted": True,
            "status": "accepted",
            "runId": run_id,
            "toolId": tool_id,
            "detail": body["data"]["detail"],
        }
        code, again = await gw.post(
            "/api/ap/submit", {"runId": run_id, "toolId": tool_id, "params": {"ok": False}}
        )
        assert again["data"]["status"] == "unmatched" and again["data"]["accepted"] is False
        await _drain(stream, events)
    assert_contract(events)
    result = next(e for e in events if e["type"] == "tool.result")
    assert orjson.loads(result["result"]) == {"ok": True}
    assert provider.requests[1].body["messages"][-1]["content"] == '{"ok":true}'
    assert events[-1]["type"] == "run.complete"


async def test_two_submits_at_once_apply_once(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    provider.enqueue([ToolCall("ask_user", {"question": "?"}), Finish("tool_calls")])
    provider.enqueue([Text("ok")])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "f", "message": "go"})
    async with asyncio.timeout(10):
        end = await _collect_until_pending(stream, events)
        run_id = events[-1].get("runId") or next(e for e in events if e["type"] == "run.start")["runId"]
        answers = await asyncio.gather(
            *(
                gw.post("/api/ap/submit", {"runId": run_id, "toolId": end["toolId"], "params": {"n": i}})
                for i in range(5)
            )
        )
        await _drain(stream, events)
    accepted = [b["data"] for _, b in answers if b["data"]["accepted"]]
    assert len(accepted) == 1
    result = next(e for e in events if e["type"] == "tool.result")
    assert result["result"] in {f'{{"n":{i}}}' for i in range(5)}


async def test_frontend_submit_timeout_ends_run(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway(
        {"f": {**FRONT, "budget": {"runTimeoutMs": 100}}}, **{"agent.tools.frontend.submit-timeout-ms": 400}
    )
    provider.enqueue([ToolCall("ask_user", {}), Finish("tool_calls")])
    async with asyncio.timeout(8):
        events = await gw.query({"agentKey": "f", "message": "go"})
    assert_contract(events)
    result = orjson.loads(next(e for e in events if e["type"] == "tool.result")["result"])
    assert (
        result["ok"] is False and result["code"] == "frontend_submit_timeout" and result["tool"] == "ask_user"
    )
    # Waiting does not count against runTimeoutMs (100 ms here); no further model turn.
    assert events[-1]["type"] == "run.complete" and events[-1]["finishReason"] == "timeout"
    assert len(provider.requests) == 1


async def test_actions_answer_ok_at_once(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    provider.enqueue([ToolCall("switch_theme", {"theme": "dark"}, fragments=2), Finish("tool_calls")])
    provider.enqueue([Text("Switched.")])
    events = await gw.query({"agentKey": "f", "message": "dark mode"})
    assert_contract(events)
    actions = [e for e in events if e["type"].startswith("action.")]
    assert types_of(actions) == ["action.start", "action.args", "action.args", "action.end", "action.result"]
    action_id = actions[0]["actionId"]
    assert action_id.startswith("a_") and actions[0]["actionName"] == "switch_theme"
    assert {e["actionId"] for e in actions} == {action_id}
    assert actions[-1]["result"] == "OK"
    assert provider.requests[1].body["messages"][-1]["content"] == "OK"


@pytest.mark.parametrize("approved", [True, False])
async def test_approval_flow(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path], approved: bool
) -> None:
    write_caps(dirs)
    agent = {**FRONT, "toolConfig": {"backends": ["mock_ops_runbook"]}}
    gw = await make_gateway({"g": agent})
    provider.enqueue([ToolCall("mock_ops_runbook", {"service": "db"}, id="call_rb"), Finish("tool_calls")])
    provider.enqueue([Text("done")])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "g", "message": "restart"})
    async with asyncio.timeout(10):
        pending = await _collect_until_pending(stream, events, "tool.status")
        assert pending["status"] == "PENDING_APPROVAL" and pending["toolId"] == "call_rb"
        code, bad = await gw.post(
            "/api/ap/submit", {"runId": pending["runId"], "toolId": "call_rb", "params": {"yes": 1}}
        )
        assert code == 200 and bad["data"]["status"] == "unmatched" and "approved" in bad["data"]["detail"]
        code, body = await gw.post(
            "/api/ap/submit",
            {
                "runId": pending["runId"],
                "toolId": "call_rb",
                "params": {"approved": approved, "reason": "test"},
            },
        )
        assert code == 200 and body["data"]["accepted"] is True
        await _drain(stream, events)
    statuses = [e["status"] for e in events if e["type"] == "tool.status"]
    result = orjson.loads(next(e for e in events if e["type"] == "tool.result")["result"])
    if approved:
        assert statuses == ["PENDING_APPROVAL", "APPROVED", "EXECUTED"]
        assert result["service"] == "db"
    else:
        assert statuses == ["PENDING_APPROVAL", "REJECTED"]
        assert result["ok"] is False and result["code"] == "rejected_by_user"
    assert events[-1]["type"] == "run.complete"


async def test_approval_policy_deny_and_match(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    agent = {
        **FRONT,
        "toolConfig": {
            "backends": ["city_datetime"],
            "approval": [{"tool": "city_datetime", "policy": "deny", "match": {"city": "Paris"}}],
        },
    }
    gw = await make_gateway({"p": agent})
    provider.enqueue([ToolCall("city_datetime", {"city": "Paris"}), Finish("tool_calls")])
    provider.enqueue([ToolCall("city_datetime", {"city": "Tokyo"}), Finish("tool_calls")])
    provider.enqueue([Text("ok")])
    events = await gw.query({"agentKey": "p", "message": "time"})
    results = [orjson.loads(e["result"]) for e in events if e["type"] == "tool.result"]
    assert results[0]["code"] == "denied_by_policy"
    assert results[1]["city"] == "Tokyo"


async def test_cancel_closes_provider_and_ends_with_run_cancel(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    reached = asyncio.Event()
    provider.enqueue([Reasoning("hmm"), Text("partial answer"), Signal(reached), Hang()])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "f", "message": "slow"})
    async with asyncio.timeout(10):
        async for event in stream:
            events.append(event)
            if event["type"] == "content.delta":
                await reached.wait()
                code, body = await gw.post("/api/ap/cancel", {"runId": event["contentId"].split("_c_")[0]})
                assert code == 200 and body["data"]["cancelled"] is True
                code, again = await gw.post("/api/ap/cancel", {"runId": event["contentId"].split("_c_")[0]})
                assert code == 200 and again["data"]["cancelled"] is True  # idempotent
        await asyncio.wait_for(provider.client_closed.wait(), 5)
    assert_contract(events)
    assert events[-1]["type"] == "run.cancel"
    assert "content.end" in types_of(events)  # the open block is closed before the terminal event


async def test_cancel_before_start_and_unknown_run(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway({"f": FRONT})
    code, body = await gw.post("/api/ap/cancel", {"runId": "not-started-yet"})
    assert code == 200 and body["data"]["cancelled"] is False
    code, body = await gw.post("/api/ap/cancel", {})
    assert code == 400 and "runId" in body["msg"]
    code, body = await gw.post("/api/ap/submit", {"runId": "nope", "toolId": "t_1", "params": {}})
    assert body["data"]["status"] == "unmatched" and "unknown run" in body["data"]["detail"]
    code, body = await gw.post("/api/ap/submit", {"runId": "nope", "toolId": "t_1", "params": None})
    assert code == 400 and "params" in body["msg"]


async def test_submit_during_cancel_is_unmatched(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    provider.enqueue([ToolCall("ask_user", {}), Finish("tool_calls")])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "f", "message": "go"})
    async with asyncio.timeout(10):
        end = await _collect_until_pending(stream, events)
        run_id = next(e for e in events if e["type"] == "run.start")["runId"]
        await asyncio.gather(
            gw.post("/api/ap/cancel", {"runId": run_id}),
            gw.post("/api/ap/submit", {"runId": run_id, "toolId": end["toolId"], "params": {"x": 1}}),
        )
        await _drain(stream, events)
    assert events[-1]["type"] == "run.cancel"
    late = await gw.post("/api/ap/submit", {"runId": run_id, "toolId": end["toolId"], "params": {"x": 2}})
    assert late[1]["data"]["status"] == "unmatched"


PLAN = {
    "mode": "PLAN_EXECUTE",
    "modelConfig": {"modelKey": "demo"},
    "toolConfig": {"backends": ["city_datetime"]},
    "planExecute": {
        "plan": {"systemPrompt": "Plan the work.", "deepThinking": False},
        "execute": {"systemPrompt": "Do the work."},
        "summary": {"systemPrompt": "Summarise."},
    },
}


async def _plan_gateway(make_gateway: GatewayFactory, agent: dict[str, Any]) -> Gateway:
    gw: Gateway = await make_gateway({"pe": agent})
    return gw


async def test_plan_execute_runs_tasks_and_summary(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await _plan_gateway(make_gateway, PLAN)
    provider.enqueue(
        [
            ToolCall(
                "_plan_add_tasks_",
                {"tasks": [{"taskId": "mine", "description": "Check time"}, {"description": "Report"}]},
            ),
            Finish("tool_calls"),
        ]
    )
    ids: list[str] = []

    async def capture() -> None:
        # The task ids are fresh; read them from the plan the gateway made.
        ids.extend(t["taskId"] for t in plan_events[-1]["plan"]["tasks"])

    plan_events: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "pe", "message": "time report"})
    async with asyncio.timeout(15):
        async for event in stream:
            events.append(event)
            if event["type"] == "plan.update":
                plan_events.append(event)
                if len(plan_events) == 1:
                    await capture()
                    # task 1: a work turn with a tool, then the update; task 2: update directly.
                    provider.enqueue([ToolCall("city_datetime", {"city": "Tokyo"}), Finish("tool_calls")])
                    provider.enqueue(
                        [
                            ToolCall("_plan_update_task_", {"taskId": ids[0], "status": "completed"}),
                            Finish("tool_calls"),
                        ]
                    )
                    provider.enqueue(
                        [
                            ToolCall("_plan_update_task_", {"taskId": ids[1], "status": "completed"}),
                            Finish("tool_calls"),
                        ]
                    )
                    provider.enqueue([Text("All done.")])
    assert_contract(events)
    kinds = types_of(events)
    assert kinds.count("plan.create") == 1
    assert ids[0] != "mine" and len(ids[0]) == 8
    assert [e["taskId"] for e in events if e["type"] == "task.start"] == ids
    assert [e["taskId"] for e in events if e["type"] == "task.complete"] == ids
    # Every event inside a task carries its taskId.
    inside = [
        e
        for e in events
        if e["type"] in ("tool.start", "content.start", "reasoning.start")
        and kinds.index("task.start") < e["seq"] - 1 < kinds.index("task.complete")
    ]
    assert all(e.get("taskId") == ids[0] for e in inside)
    assert events[-1]["type"] == "run.complete"
    assert plan_events[-1]["plan"]["tasks"][1]["status"] == "completed"
    # The plan turn is forced to call the plan tool; the summary turn has no tools.
    first, last = provider.requests[0].body, provider.requests[-1].body
    assert first["tool_choice"] == "required"
    assert [t["function"]["name"] for t in first["tools"]] == ["_plan_add_tasks_"]
    assert "tools" not in last
    # The task prompt names the task.
    assert ids[0] in provider.requests[1].body["messages"][-1]["content"]


async def test_plan_failed_task_stops_execution(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await _plan_gateway(make_gateway, PLAN)
    provider.enqueue(
        [
            ToolCall("_plan_add_tasks_", {"tasks": [{"description": "A"}, {"description": "B"}]}),
            Finish("tool_calls"),
        ]
    )
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        async for event in gw.stream({"agentKey": "pe", "message": "go"}):
            events.append(event)
            if event["type"] == "plan.update" and len([e for e in events if e["type"] == "plan.update"]) == 1:
                first = event["plan"]["tasks"][0]["taskId"]
                provider.enqueue(
                    [
                        ToolCall("_plan_update_task_", {"taskId": first, "status": "failed"}),
                        Finish("tool_calls"),
                    ]
                )
                provider.enqueue([Text("It failed.")])
    kinds = types_of(events)
    assert kinds.count("task.start") == 1 and kinds.count("task.fail") == 1
    assert events[-1]["type"] == "run.complete"


async def test_plan_tool_texts(make_gateway: GatewayFactory, provider: ScriptedProvider) -> None:
    agent = {**PLAN, "toolConfig": {"backends": ["_plan_get_tasks_"]}}
    gw = await _plan_gateway(make_gateway, agent)
    provider.enqueue([ToolCall("_plan_add_tasks_", {"tasks": [{"description": ""}]}), Finish("tool_calls")])
    events = await asyncio.wait_for(_run_to_end(gw, provider), 15)
    results = [e["result"] for e in events if e["type"] == "tool.result"]
    assert results[0] == "失败: 缺少任务描述"


async def _run_to_end(gw: Gateway, provider: ScriptedProvider) -> list[dict[str, Any]]:
    provider.enqueue([Text("nothing to do")])
    return await gw.query({"agentKey": "pe", "message": "go"})


async def test_runs_api_exposes_no_state_after_finish(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    provider.enqueue([Text("hi")])
    events = await gw.query({"agentKey": "f", "message": "hi"})
    runs = gw.app[appkeys.RUNS]
    assert await runs.wait_idle(5)  # the task stores the chat after its terminal event
    run_id = events[2]["runId"]
    _, body = await gw.post("/api/ap/cancel", {"runId": run_id})
    assert body["data"]["status"] == "finished"


async def test_resume_after_disconnect_resends_pending_tool(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    """A disconnect is not a cancel; /api/ap/stream replays what was missed and tails the run."""
    write_caps(dirs)
    gw = await make_gateway({"f": FRONT})
    provider.enqueue([ToolCall("ask_user", {"question": "?"}), Finish("tool_calls")])
    provider.enqueue([Text("after the answer")])
    first: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for event in gw.stream({"agentKey": "f", "message": "go"}):
            first.append(event)
            if event["type"] == "tool.start":
                break  # the client goes away mid-run
        run_id = first[-1]["runId"]
        tool_id = first[-1]["toolId"]
        last_seen = first[-1]["seq"]
        headers = {"Last-Event-ID": str(last_seen)}
        async with gw.session.get(
            gw.url("/api/ap/stream"), params={"runId": run_id}, headers=headers
        ) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
            resumed: list[dict[str, Any]] = []
            async for event in iter_sse(resp):
                resumed.append(event)
                if event["type"] == "tool.end":
                    await gw.post("/api/ap/submit", {"runId": run_id, "toolId": tool_id, "params": {"a": 1}})
        # A second tab from the start sees the pending tool.start again, and the whole run.
        async with gw.session.get(gw.url("/api/ap/stream"), params={"runId": run_id, "after": "0"}) as resp:
            replay = [
                orjson.loads(line[5:])
                for line in (await resp.read()).split(b"\n")
                if line.startswith(b"data:")
            ]
    assert resumed[0]["seq"] == last_seen + 1
    assert resumed[-1]["type"] == "run.complete"
    assert [e["seq"] for e in replay] == list(range(1, len(replay) + 1))
    assert first == replay[: len(first)] and replay[len(first) :] == resumed
    assert any(e["type"] == "tool.start" and e["toolId"] == tool_id for e in replay)
    code, body = await gw.get("/api/ap/stream", runId="nope")
    assert code == 404 and "run not found" in body["msg"]


async def test_several_frontend_calls_pending_at_once(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    """ONESHOT allows a parallel round: two frontend calls wait side by side, each on its own."""
    write_caps(dirs)
    agent = {**FRONT, "mode": "ONESHOT", "plain": {"systemPrompt": "Ask twice."}}
    agent.pop("react")
    gw = await make_gateway({"two": agent})
    provider.enqueue(
        [
            ParallelToolCalls(
                [ToolCall("ask_user", {"question": "a?"}), ToolCall("ask_user", {"question": "b?"})]
            ),
            Finish("tool_calls"),
        ]
    )
    provider.enqueue([Text("both answered")])
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for event in gw.stream({"agentKey": "two", "message": "ask"}):
            events.append(event)
            ends = [e for e in events if e["type"] == "tool.end"]
            if event["type"] == "tool.end" and len(ends) == 2:
                run_id = next(e for e in events if e["type"] == "run.start")["runId"]
                # Answer the second first: each pending call is matched by its own id.
                for end, value in ((ends[1], "B"), (ends[0], "A")):
                    _, body = await gw.post(
                        "/api/ap/submit", {"runId": run_id, "toolId": end["toolId"], "params": value}
                    )
                    assert body["data"]["accepted"] is True
    ids = [e["toolId"] for e in events if e["type"] == "tool.start"]
    got = {e["toolId"]: e["result"] for e in events if e["type"] == "tool.result"}
    assert got == {ids[0]: "A", ids[1]: "B"}
    tool_messages = [m for m in provider.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["A", "B"]
    assert events[-1]["type"] == "run.complete"


async def test_approval_with_edited_arguments(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway({"g": {**FRONT, "toolConfig": {"backends": ["mock_ops_runbook"]}}})
    provider.enqueue([ToolCall("mock_ops_runbook", {"service": "db"}, id="call_e"), Finish("tool_calls")])
    provider.enqueue([Text("done")])
    events: list[dict[str, Any]] = []
    stream = gw.stream({"agentKey": "g", "message": "restart"})
    async with asyncio.timeout(10):
        pending = await _collect_until_pending(stream, events, "tool.status")
        _, body = await gw.post(
            "/api/ap/submit",
            {
                "runId": pending["runId"],
                "toolId": "call_e",
                "params": {"approved": True, "arguments": {"service": "cache", "severity": "P1"}},
            },
        )
        assert body["data"]["accepted"] is True
        await _drain(stream, events)
    result = orjson.loads(next(e["result"] for e in events if e["type"] == "tool.result"))
    assert (result["service"], result["severity"]) == ("cache", "P1")


async def test_approval_expires(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_caps(dirs)
    gw = await make_gateway(
        {"g": {**FRONT, "toolConfig": {"backends": ["mock_ops_runbook"]}}},
        **{"agent.tools.frontend.submit-timeout-ms": 300},
    )
    provider.enqueue([ToolCall("mock_ops_runbook", {"service": "db"}, id="call_x"), Finish("tool_calls")])
    provider.enqueue([Text("it expired")])
    async with asyncio.timeout(10):
        events = await gw.query({"agentKey": "g", "message": "restart"})
    assert [e["status"] for e in events if e["type"] == "tool.status"] == ["PENDING_APPROVAL", "EXPIRED"]
    result = orjson.loads(next(e["result"] for e in events if e["type"] == "tool.result"))
    assert result["ok"] is False and result["code"] == "approval_expired"
    assert events[-1]["type"] == "run.complete"
    late = await gw.post(
        "/api/ap/submit", {"runId": events[2]["runId"], "toolId": "call_x", "params": {"approved": True}}
    )
    assert late[1]["data"]["status"] == "unmatched"
