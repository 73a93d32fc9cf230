"""Chat memory through the real gateway: history equals the live stream, replay, windows,
per-chat concurrency, usage and budgets (SPEC §5, §7, §10.5, §10.6, §10.10, §10.11)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw import appkeys
from agentgw.memory import store as store_module
from agentgw.memory.history import compact_live_events
from agentgw.providers.scripted import (
    Delay,
    Finish,
    Hang,
    ParallelToolCalls,
    Reasoning,
    ScriptedProvider,
    Signal,
    Text,
    ToolCall,
    Usage,
    WaitFor,
)
from tests.conftest import GatewayFactory
from tests.gateway import iter_sse, types_of, write_model
from tests.test_query_stream import assert_contract

REACT: dict[str, Any] = {
    "mode": "REACT",
    "modelConfig": {"modelKey": "demo"},
    "toolConfig": {"backends": ["city_datetime", "mock_city_weather"]},
    "react": {"systemPrompt": "Weather helper."},
}


def without_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]


async def test_three_runs_history_equals_live_and_replay_drops_reasoning(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"r": REACT})
    live: list[dict[str, Any]] = []
    chat_id: str | None = None
    for i in range(3):
        provider.enqueue(
            [
                Reasoning(f"secret thought {i}", chunks=2),
                Text(f"Let me look {i}. "),
                ParallelToolCalls(
                    [
                        ToolCall("city_datetime", {"city": "Tokyo"}, id=f"call_t{i}"),
                        ToolCall(
                            "mock_city_weather", {"city": "Tokyo", "date": "2026-11-24"}, id=f"call_w{i}"
                        ),
                    ]
                ),
                Finish("tool_calls"),
                Usage(40, 10),
            ]
        )
        provider.enqueue([Reasoning(f"more thought {i}"), Text(f"Answer {i}.", chunks=2), Usage(80, 5)])
        body: dict[str, Any] = {"agentKey": "r", "message": f"question {i}"}
        if chat_id:
            body["chatId"] = chat_id
        events = await gw.query(body)
        assert_contract(events)
        assert events[-1]["type"] == "run.complete"
        chat_id = events[0]["chatId"]
        live.extend(events)
        await gw.app[appkeys.RUNS].wait_idle(5)
    assert [e["type"] for e in live].count("chat.start") == 1

    code, body = await gw.get("/api/ap/chat", chatId=str(chat_id), includeRawMessages="true")
    assert code == 200
    history = body["data"]["events"]
    assert without_time(history) == without_time(compact_live_events(live))
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    stamps = [e["timestamp"] for e in history]
    assert stamps == sorted(set(stamps))
    raw = body["data"]["rawMessages"]
    assert {m["runId"] for m in raw} == {e["runId"] for e in live if e["type"] == "run.start"}

    # The third run's first model request carries runs 1 and 2, with no reasoning.
    third = provider.requests[4].body["messages"]
    text = orjson.dumps(third).decode()
    assert "reasoning_content" not in text and "secret thought" not in text and "more thought" not in text
    users = [m["content"] for m in third if m["role"] == "user"]
    assert users == ["question 0", "question 1", "question 2"]
    answers = [m["content"] for m in third if m["role"] == "assistant" and not m.get("tool_calls")]
    assert answers == ["Answer 0.", "Answer 1."]
    calls = [m for m in third if m.get("tool_calls")]
    assert [[c["id"] for c in m["tool_calls"]] for m in calls] == [
        ["call_t0", "call_w0"],
        ["call_t1", "call_w1"],
    ]
    for i, message in enumerate(third):
        if message.get("tool_calls"):  # each call is followed by its results
            ids = [c["id"] for c in message["tool_calls"]]
            assert [m["tool_call_id"] for m in third[i + 1 : i + 1 + len(ids)]] == ids


async def test_window_of_k_runs_file_keeps_all(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"r": REACT}, **{"memory.chat.k": 2})
    chat_id = str(uuid.uuid4())
    for i in range(5):
        provider.enqueue([Text(f"answer {i}")])
        events = await gw.query({"agentKey": "r", "message": f"q{i}", "chatId": chat_id})
        assert ("chat.start" in types_of(events)) == (i == 0)  # a fresh UUID creates the chat
    last = provider.requests[-1].body["messages"]
    assert [m["content"] for m in last if m["role"] == "user"] == ["q2", "q3", "q4"]
    _, body = await gw.get("/api/ap/chat", chatId=chat_id)
    assert types_of(body["data"]["events"]).count("run.complete") == 5


async def test_token_cut_keeps_calls_with_results(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_model(dirs, "tiny", maxInputTokens=400)
    gw = await make_gateway({"t": {**REACT, "modelConfig": {"modelKey": "tiny"}}})
    chat_id = str(uuid.uuid4())
    for i in range(6):
        provider.enqueue([ToolCall("city_datetime", {"city": "Tokyo"}, id=f"c{i}"), Finish("tool_calls")])
        provider.enqueue([Text(f"answer {i} " + "words " * 40)])
        await gw.query({"agentKey": "t", "message": f"q{i} " + "padding " * 20, "chatId": chat_id})
    last = provider.requests[-2].body["messages"]  # the 6th run's first request
    users = [m["content"].split()[0] for m in last if m["role"] == "user"]
    assert users[-1] == "q5" and len(users) < 6  # older runs were cut
    for i, message in enumerate(last):
        if message.get("tool_calls"):
            assert (
                last[i + 1]["role"] == "tool"
                and last[i + 1]["tool_call_id"] == message["tool_calls"][0]["id"]
            )
        if message["role"] == "tool":
            assert last[i - 1].get("tool_calls")


async def test_busy_chat_is_409_without_an_orphaned_query(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    gw = await make_gateway({"r": REACT})
    chat_id = str(uuid.uuid4())
    reached = asyncio.Event()
    provider.enqueue([Text("working"), Signal(reached), Delay(0.5), Text(" done")])
    first = asyncio.create_task(gw.query({"agentKey": "r", "message": "first", "chatId": chat_id}))
    await asyncio.wait_for(reached.wait(), 5)
    code, body = await gw.post("/api/ap/query", {"agentKey": "r", "message": "second", "chatId": chat_id})
    assert code == 409 and body["code"] == 409 and "busy" in body["msg"] and body["data"]["runId"]
    events = await first
    assert events[-1]["type"] == "run.complete"
    lines = [orjson.loads(x) for x in (dirs["chats"] / f"{chat_id}.json").read_bytes().splitlines() if x]
    queries = [x["query"]["message"] for x in lines if x["_type"] == "query"]
    assert queries == ["first"]


async def test_enqueue_runs_after_the_first(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    gw = await make_gateway({"r": REACT})
    chat_id = str(uuid.uuid4())
    reached = asyncio.Event()
    provider.enqueue([Text("one"), Signal(reached), Delay(0.3), Text(" two")])
    provider.enqueue([Text("second answer")])
    first = asyncio.create_task(gw.query({"agentKey": "r", "message": "first", "chatId": chat_id}))
    await asyncio.wait_for(reached.wait(), 5)
    second = await gw.query({"agentKey": "r", "message": "second", "chatId": chat_id}, onBusy="enqueue")
    events = await first
    assert events[-1]["type"] == second[-1]["type"] == "run.complete"
    # The second run saw the first one's whole answer.
    assert {"role": "assistant", "content": "one two"} in provider.requests[1].body["messages"]
    lines = [orjson.loads(x) for x in (dirs["chats"] / f"{chat_id}.json").read_bytes().splitlines() if x]
    run_order = [x["runId"] for x in lines]
    first_run, second_run = events[2]["runId"], second[2]["runId"]
    # No interleaving: every line of the first run comes before any line of the second.
    assert max(i for i, r in enumerate(run_order) if r == first_run) < run_order.index(second_run)


async def test_interrupt_cancels_the_first(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    gw = await make_gateway({"r": REACT})
    chat_id = str(uuid.uuid4())
    reached = asyncio.Event()
    provider.enqueue([Text("partial"), Signal(reached), Hang()])
    provider.enqueue([Text("fresh")])
    first = asyncio.create_task(gw.query({"agentKey": "r", "message": "first", "chatId": chat_id}))
    await asyncio.wait_for(reached.wait(), 5)
    second = await gw.query({"agentKey": "r", "message": "second", "chatId": chat_id}, onBusy="interrupt")
    events = await first
    assert events[-1]["type"] == "run.cancel"
    assert second[-1]["type"] == "run.complete"
    _, body = await gw.get("/api/ap/chat", chatId=chat_id)
    history = body["data"]["events"]
    assert [e["type"] for e in history if e["type"].startswith("run.") and e["type"] != "run.start"] == [
        "run.cancel",
        "run.complete",
    ]
    assert any(e["type"] == "content.snapshot" and e["text"] == "partial" for e in history)


async def test_cancel_of_a_queued_run_before_it_starts(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"r": REACT})
    chat_id = str(uuid.uuid4())
    reached = asyncio.Event()
    provider.enqueue([Text("one"), Signal(reached), Delay(0.4), Text(" two")])
    first = asyncio.create_task(gw.query({"agentKey": "r", "message": "first", "chatId": chat_id}))
    await asyncio.wait_for(reached.wait(), 5)
    runs = gw.app[appkeys.RUNS]
    second = asyncio.create_task(
        gw.query({"agentKey": "r", "message": "second", "chatId": chat_id}, onBusy="enqueue")
    )
    async with asyncio.timeout(5):
        while len(runs.runs) < 2:  # noqa: ASYNC110 (a queued run emits nothing to wait on)
            await asyncio.sleep(0.01)
    queued = next(r for r in runs.runs.values() if not r.started)
    code, body = await gw.post("/api/ap/cancel", {"runId": queued.state.run_id})
    assert code == 200 and body["data"]["cancelled"] is True
    events = await second
    assert types_of(events) == ["request.query", "run.cancel"]
    assert (await first)[-1]["type"] == "run.complete"
    assert len(provider.requests) == 1  # the cancelled run never called the provider


async def test_chat_api_lists_names_and_usage(
    make_gateway: GatewayFactory, provider: ScriptedProvider
) -> None:
    gw = await make_gateway({"r": REACT})
    provider.enqueue([Text("a"), Usage(100, 20)])
    message = "  你好，\n\n世界   this is a rather long first message indeed"
    first = await gw.query({"agentKey": "r", "message": message})
    provider.enqueue([Text("b"), Usage(1, 1)])
    await gw.query({"agentKey": "r", "message": "newer chat"})
    await gw.app[appkeys.RUNS].wait_idle(5)
    _, body = await gw.get("/api/ap/chats")
    chats = body["data"]
    assert [c["chatName"] for c in chats] == ["newer chat", " ".join(message.split())[:30]]
    assert len(chats[1]["chatName"]) == 30
    assert first[1]["chatName"] == chats[1]["chatName"]
    usage = chats[1].get("usage") or chats[1]
    assert orjson.dumps(usage).count(b"100") >= 1
    code, _ = await gw.get("/api/ap/chat", chatId="not-a-uuid")
    assert code == 400
    code, body = await gw.get("/api/ap/chat", chatId=str(uuid.uuid4()))
    assert code == 404 and "chat not found" in body["msg"]
    async with gw.session.delete(gw.url("/api/ap/chat"), params={"chatId": first[0]["chatId"]}) as resp:
        assert resp.status == 200
    code, _ = await gw.get("/api/ap/chat", chatId=first[0]["chatId"])
    assert code == 404


async def test_usage_events_estimates_and_points(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    write_model(
        dirs,
        "priced",
        pricing={
            "promptPointsPer1k": 10,
            "completionPointsPer1k": 20,
            "perCallPoints": 1,
            "priceRatio": 2,
            "tiers": [
                {
                    "minInputTokens": 1000,
                    "promptPointsPer1k": 100,
                    "completionPointsPer1k": 200,
                    "perCallPoints": 0,
                    "priceRatio": 1,
                }
            ],
        },
    )
    gw = await make_gateway({"p": {**REACT, "modelConfig": {"modelKey": "priced"}}})
    provider.enqueue([Text("hello"), Usage(500, 100)])
    events = await gw.query({"agentKey": "p", "message": "hi"})
    usage = next(e for e in events if e["type"] == "usage")
    assert (usage["inputTokens"], usage["outputTokens"], usage["estimated"]) == (500, 100, False)
    # (500/1000*10 + 100/1000*20 + 1) * 2 = 16
    assert usage["points"] == pytest.approx(16)
    provider.enqueue([Text("tier"), Usage(2000, 1000)])
    events = await gw.query({"agentKey": "p", "message": "big"})
    # the tier holds 2000 input tokens: 2000/1000*100 + 1000/1000*200 = 400
    assert next(e for e in events if e["type"] == "usage")["points"] == pytest.approx(400)
    provider.enqueue([Text("no usage reported here")])
    events = await gw.query({"agentKey": "p", "message": "estimate me"})
    usage = next(e for e in events if e["type"] == "usage")
    assert usage["estimated"] is True and usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert events[-1]["usage"]["estimated"] is True


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ({"maxTokens": 100}, "budget.maxTokens"),
        ({"maxPoints": 0.5}, "budget.maxPoints"),
        ({"tool": {"maxCalls": 1}}, "budget.tool.maxCalls"),
    ],
)
async def test_usage_budgets_end_the_run(
    make_gateway: GatewayFactory,
    provider: ScriptedProvider,
    dirs: dict[str, Path],
    budget: dict[str, Any],
    needle: str,
) -> None:
    write_model(dirs, "priced", pricing={"promptPointsPer1k": 10})
    agent = {**REACT, "modelConfig": {"modelKey": "priced"}, "budget": budget}
    gw = await make_gateway({"b": agent})
    for i in range(3):
        provider.enqueue(
            [ToolCall("city_datetime", {"city": "Tokyo"}, id=f"c{i}"), Finish("tool_calls"), Usage(60, 10)]
        )
    events = await gw.query({"agentKey": "b", "message": "loop"})
    err = events[-1]
    assert err["type"] == "run.error" and err["error"]["code"] == "budget_exceeded"
    assert needle in err["error"]["message"]


class _AtTerminal:
    """A listener that, when the terminal event is emitted, reads what is on disk by then."""

    def __init__(self, chats: Path, chat_id: str) -> None:
        self.file = chats / f"{chat_id}.json"
        self.index = chats / "_chats.jsonl"
        self.chat_id = chat_id
        self.seen: tuple[list[dict[str, Any]], dict[str, Any]] | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] in ("run.complete", "run.cancel", "run.error"):
            lines = [orjson.loads(x) for x in self.file.read_bytes().splitlines() if x]
            records = [orjson.loads(x) for x in self.index.read_bytes().splitlines() if x]
            self.seen = (lines, [r for r in records if r["chatId"] == self.chat_id][-1])

    def on_text(self, kind: str, block_id: str, text: str) -> None:
        pass


async def test_the_run_is_stored_before_its_terminal_event(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    """A client that sees run.complete finds the whole run in the chat and its usage in the list."""
    gw = await make_gateway({"r": REACT})
    gate = asyncio.Event()
    provider.enqueue([Text("stored "), WaitFor(gate), Text("first"), Usage(input=11, output=7)])
    events: list[dict[str, Any]] = []
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "r", "message": "hi"}) as resp:
        async for event in iter_sse(resp):
            events.append(event)
            if event["type"] == "run.start":
                probe = _AtTerminal(dirs["chats"], event["chatId"])
                gw.app[appkeys.RUNS].get(event["runId"]).log.add_listener(probe)
                gate.set()
    assert events[-1]["type"] == "run.complete"
    assert probe.seen is not None
    lines, record = probe.seen
    assert lines[-1]["_end"] == {"type": "run.complete", "finishReason": "end_turn"}
    answer = [
        m for line in lines if line["_type"] == "step" for m in line["messages"] if m["role"] == "assistant"
    ]
    assert [part["text"] for m in answer for part in m["content"]] == ["stored first"]
    assert record["usage"]["inputTokens"] == 11 and record["usage"]["outputTokens"] == 7
    # The answer's step and the end went out in one write: two lines, in order.
    assert [line["_type"] for line in lines] == ["query", "step", "step"]
    assert [line["_seq"] for line in lines[1:]] == [1, 2]


async def test_the_first_delta_goes_out_before_the_question_is_written_and_reads_see_it(
    make_gateway: GatewayFactory,
    provider: ScriptedProvider,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run's question waits (ChatStore.start_run) so a burst gets its first deltas before the
    disk work; a client that reads the chat meanwhile finds the question all the same."""
    monkeypatch.setattr(store_module, "SOON_S", 30.0)  # a window wide enough to look into
    gw = await make_gateway({"r": REACT})
    gate = asyncio.Event()
    provider.enqueue([Text("first part"), WaitFor(gate), Text(" and the rest")])
    events: list[dict[str, Any]] = []
    async with gw.session.post(gw.url("/api/ap/query"), json={"agentKey": "r", "message": "soon"}) as resp:
        async for event in iter_sse(resp):
            events.append(event)
            if event["type"] == "content.delta" and not gate.is_set():
                chat_id = events[0]["chatId"]
                path = dirs["chats"] / f"{chat_id}.json"
                assert not path.exists()  # the delta went out first
                code, body = await gw.get("/api/ap/chats")
                assert code == 200 and [c["chatId"] for c in body["data"]] == [chat_id]
                code, body = await gw.get("/api/ap/chat", chatId=chat_id)
                assert code == 200 and path.exists()
                queries = [line for line in path.read_bytes().splitlines() if b'"_type":"query"' in line]
                assert len(queries) == 1 and orjson.loads(queries[0])["query"]["message"] == "soon"
                gate.set()
    assert events[-1]["type"] == "run.complete"
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines() if x]
    assert [line["_type"] for line in lines] == ["query", "step", "step"]


async def test_trim_file_cuts_the_chat_to_its_window_after_each_run(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    gw = await make_gateway({"r": REACT}, **{"memory.chat.k": 1, "memory.chat.trim-file": True})
    chat_id = str(uuid.uuid4())
    for i in range(3):
        provider.enqueue([Text(f"answer {i}")])
        events = await gw.query({"agentKey": "r", "message": f"question {i}", "chatId": chat_id})
        assert events[-1]["type"] == "run.complete"
    # The file is trimmed after the terminal event (a rewrite must not delay it).
    assert await gw.app[appkeys.RUNS].wait_idle(5)
    lines = [orjson.loads(x) for x in (dirs["chats"] / f"{chat_id}.json").read_bytes().splitlines() if x]
    assert {line["runId"] for line in lines} == {events[-1]["runId"]}
    assert [line["query"]["message"] for line in lines if line["_type"] == "query"] == ["question 2"]


async def test_a_run_interrupted_while_its_opening_is_held(
    make_gateway: GatewayFactory, provider: ScriptedProvider, dirs: dict[str, Path]
) -> None:
    """A run whose provider has not answered yet holds its opening (up to 50 ms); cancelled
    then (a new query interrupts it), it still opens before its run.cancel, and the chat
    stores its question and its end."""
    gw = await make_gateway({"r": REACT})
    gw.app[appkeys.RUNS].opening_wait_s = 30.0  # held until something else is emitted
    chat_id = str(uuid.uuid4())
    sent = asyncio.Event()
    provider.enqueue([Signal(sent), Hang()])
    provider.enqueue([Text("fresh")])
    first = asyncio.create_task(gw.query({"agentKey": "r", "message": "first", "chatId": chat_id}))
    await asyncio.wait_for(sent.wait(), 5)  # its model call is out, its opening held
    second = await gw.query({"agentKey": "r", "message": "second", "chatId": chat_id}, onBusy="interrupt")
    events = await first
    assert [e["type"] for e in events] == ["request.query", "chat.start", "run.start", "run.cancel"]
    assert second[-1]["type"] == "run.complete" and "chat.start" not in [e["type"] for e in second]
    _, body = await gw.get("/api/ap/chat", chatId=chat_id)
    history = body["data"]["events"]
    queries = [e["message"] for e in history if e["type"] == "request.query"]
    assert queries == ["first", "second"]
    ends = [e["type"] for e in history if e["type"] in ("run.cancel", "run.complete")]
    assert ends == ["run.cancel", "run.complete"]
