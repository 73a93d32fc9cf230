"""ChatStore on real files: ids, index, appends, torn lines, concurrency, old names, windows."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.errors import RequestError, SettingsError
from agentgw.memory.store import INDEX_NAME, ChatNotFound, ChatStore, chat_name, parse_chat_id
from agentgw.settings import Settings, load_settings
from agentgw.usage import UsageTotals

REPO = Path(__file__).resolve().parent.parent


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"memory.chat.dir": str(tmp_path / "chats")}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(files=(), environ={}, overrides=values)


@pytest.fixture
def store(tmp_path: Path) -> ChatStore:
    return ChatStore(make_settings(tmp_path))


def query_line(chat_id: str, run_id: str, message: str = "hi") -> dict[str, Any]:
    return {
        "_type": "query",
        "chatId": chat_id,
        "runId": run_id,
        "updatedAt": 1,
        "query": {"message": message},
    }


def step_line(chat_id: str, run_id: str, seq: int, text: str, **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": [{"type": "text", "text": text}], "_msgId": "m_00000001"}
    return {
        "_type": "step",
        "chatId": chat_id,
        "runId": run_id,
        "_stage": "oneshot",
        "_seq": seq,
        "updatedAt": 2,
        "messages": [message],
        **extra,
    }


def test_parse_chat_id_accepts_uuids_only() -> None:
    upper = "123E4567-E89B-12D3-A456-426614174000"
    assert parse_chat_id(upper) == upper.lower()
    for bad in (
        "",
        "abc",
        "../../etc/passwd",
        "123e4567e89b12d3a456426614174000",
        None,
        42,
        "123e4567-e89b-12d3-a456-426614174000/../x",
        "123e4567-e89b-12d3-a456-42661417400g",
    ):
        with pytest.raises(RequestError) as info:
            parse_chat_id(bad)
        assert info.value.status == 400 and "invalid chatId" in info.value.msg


def test_chat_name_collapses_whitespace_and_cuts_to_30_code_points() -> None:
    assert chat_name("  hello \n\t  world  ") == "hello world"
    assert chat_name("你好" * 20) == "你好" * 15
    emoji = "🙂" * 40
    assert chat_name(emoji) == "🙂" * 30 and len(chat_name(emoji)) == 30
    assert chat_name("") == ""


async def test_round_trip_index_and_lines(store: ChatStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await store.create_chat(first, "First chat", "demo", "Demo", "alice")
    await asyncio.sleep(0.002)
    await store.create_chat(second, "Second chat", "react", "React", None)
    assert await store.exists(first) and await store.exists(second)
    assert await store.owner_of(first) == "alice" and await store.owner_of(second) is None

    await store.append_line(first, query_line(first, "r1", "héllo 世界"))
    await store.append_line(first, step_line(first, "r1", 1, "answer"))
    lines = await store.read_lines(first)
    assert [line["_type"] for line in lines] == ["query", "step"]
    assert lines[0]["query"]["message"] == "héllo 世界"
    raw = store.chat_path(first).read_bytes().splitlines()
    assert len(raw) == 2 and orjson.loads(raw[1])["messages"][0]["content"][0]["text"] == "answer"

    usage = UsageTotals()
    usage.add_call({"inputTokens": 10, "outputTokens": 5, "points": 0.25})
    await asyncio.sleep(0.002)  # updatedAt has millisecond resolution; inline writes are faster
    await store.record_run_end(first, usage)
    await store.record_run_end(first, usage)
    chats = await store.list_chats()
    assert [c["chatId"] for c in chats] == [first, second]  # first was updated last
    assert chats[0]["chatName"] == "First chat" and chats[0]["firstAgentKey"] == "demo"
    assert chats[0]["firstAgentName"] == "Demo" and chats[0]["createdAt"] <= chats[0]["updatedAt"]
    assert chats[0]["usage"]["inputTokens"] == 20 and chats[0]["usage"]["points"] == pytest.approx(0.5)
    assert chats[1]["usage"]["calls"] == 0
    assert "owner" not in chats[0]
    # Creating an existing chat changes nothing.
    await store.create_chat(first, "other", "x", "X", "bob")
    assert (await store.get_chat(first) or {})["chatName"] == "First chat"
    assert await store.owner_of(first) == "alice"
    # With a principal, other owners' chats are hidden (ownerless ones stay visible).
    assert [c["chatId"] for c in await store.list_chats("bob")] == [second]

    # A second store on the same folder (another process) sees the same index.
    other = ChatStore(store_settings(store))
    assert [c["chatId"] for c in await other.list_chats()] == [first, second]

    assert await store.delete_chat(first)
    assert not await store.exists(first)
    assert [c["chatId"] for c in await store.list_chats()] == [second]
    assert [c["chatId"] for c in await other.list_chats()] == [second]
    assert not await store.delete_chat(first)
    with pytest.raises(ChatNotFound):
        await store.read_lines(first)
    with pytest.raises(ChatNotFound):
        await store.append_line(first, step_line(first, "r1", 2, "late"))


def store_settings(store: ChatStore) -> Settings:
    return load_settings(files=(), environ={}, overrides={"memory.chat.dir": str(store.dir)})


async def test_torn_last_line_is_skipped_and_next_append_is_clean(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    await store.append_line(chat_id, query_line(chat_id, "r1"))
    with store.chat_path(chat_id).open("ab") as fh:
        fh.write(
            b'{"_type":"step","chatId":"' + chat_id.encode() + b'","runId":"r1","messa'
        )  # crash mid-write
    lines = await store.read_lines(chat_id)
    assert [line["_type"] for line in lines] == ["query"]
    assert [r.run_id for r in await store.load_window(chat_id, 5)] == ["r1"]

    await store.append_line(chat_id, step_line(chat_id, "r1", 1, "after crash"))
    lines = await store.read_lines(chat_id)
    assert [line["_type"] for line in lines] == ["query", "step"]
    assert lines[1]["messages"][0]["content"][0]["text"] == "after crash"
    runs = await store.load_window(chat_id, 5)
    assert len(runs) == 1 and len(runs[0].steps) == 1


async def test_append_lines_writes_several_lines_at_once(store: ChatStore) -> None:
    """A run's last step and its end go in one append; after a torn line, both still land
    whole, in order, and a plan among them marks the chat as having one."""
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    await store.append_line(chat_id, query_line(chat_id, "r1"))
    with store.chat_path(chat_id).open("ab") as fh:
        fh.write(b'{"_type":"step","chatI')  # crash mid-write
    plan = {"planId": "p1", "tasks": [{"taskId": "t1", "description": "d", "status": "init"}]}
    last = step_line(chat_id, "r1", 1, "answer", plan=plan)
    end = {**step_line(chat_id, "r1", 2, ""), "messages": [], "_end": {"type": "run.complete"}}
    await store.append_lines(chat_id, [last, end])
    lines = await store.read_lines(chat_id)
    assert [(line["_type"], line.get("_seq")) for line in lines] == [
        ("query", None),
        ("step", 1),
        ("step", 2),
    ]
    assert lines[2]["_end"] == {"type": "run.complete"}
    assert (await store.get_chat(chat_id) or {})["hasPlan"] is True
    assert await store.latest_plan(chat_id) == plan


async def test_concurrent_appends_never_interleave(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    payload = "x" * 20000  # lines far larger than PIPE_BUF

    async def writer(n: int) -> None:
        for i in range(10):
            await store.append_line(chat_id, step_line(chat_id, f"run{n}", i, f"{n}:{i}:{payload}"))

    await asyncio.gather(*(writer(n) for n in range(20)))
    raw = store.chat_path(chat_id).read_bytes().split(b"\n")
    assert raw[-1] == b""
    parsed = [orjson.loads(line) for line in raw[:-1]]
    assert len(parsed) == 200
    seen = {m["messages"][0]["content"][0]["text"].split(":", 2)[0] + ":" + str(m["_seq"]) for m in parsed}
    assert len(seen) == 200


def child_script(body: str, **values: str) -> str:
    """A second process on the same chat folder: it prints ``ready``, waits for a line on
    stdin (so both start together), then runs ``body`` (indented, with ``store`` in scope)."""
    head = (
        "import asyncio, sys, uuid\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from agentgw.memory.store import ChatStore\n"
        "from agentgw.settings import load_settings\n"
        "from agentgw.usage import UsageTotals\n"
        "async def main():\n"
        f"    store = ChatStore(load_settings(files=(), environ={{}}, overrides={{'memory.chat.dir': {values['dir']!r}}}))\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    return (
        head
        + "".join(f"    {line}\n" for line in body.format(**values).splitlines())
        + "asyncio.run(main())\n"
    )


async def start_child(code: str) -> asyncio.subprocess.Process:
    """Start ``code`` (see :func:`child_script`) and release it once it is ready."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    return child


_APPENDS = """
for i in range(150):
    line = {{"_type": "step", "chatId": {chat!r}, "runId": "child", "_stage": "react", "_seq": i,
            "updatedAt": 1, "messages": [{{"role": "assistant", "content": [{{"type": "text", "text": "c" * 30000}}]}}]}}
    await store.append_line({chat!r}, line)
"""


async def test_appends_from_two_processes_never_interleave(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    child = await start_child(child_script(_APPENDS, dir=str(store.dir), chat=chat_id))
    for i in range(150):
        await store.append_line(chat_id, step_line(chat_id, "parent", i, "p" * 30000))
    _out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    lines = store.chat_path(chat_id).read_bytes().split(b"\n")
    parsed = [orjson.loads(line) for line in lines if line]
    writers = [line["runId"] for line in parsed]
    assert sum(a != b for a, b in itertools.pairwise(writers)) > 1  # the writes did overlap
    assert sorted(line["_seq"] for line in parsed if line["runId"] == "child") == list(range(150))
    assert sorted(line["_seq"] for line in parsed if line["runId"] == "parent") == list(range(150))
    for line in parsed:
        text = line["messages"][0]["content"][0]["text"]
        assert text == ("c" if line["runId"] == "child" else "p") * 30000


async def test_old_field_names_are_read(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "legacy", "demo", "Demo")
    legacy_step = {
        "_type": "step",
        "chatId": chat_id,
        "runId": "r1",
        "_stage": "execute",
        "_seq": 1,
        "updatedAt": 5,
        "planSnapshot": {
            "planId": "p1",
            "plan": [{"taskId": "t1", "description": "d", "status": "in_progress"}],
        },
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "_toolId": "call_1",
                        "function": {"name": "x", "arguments": "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "name": "x",
                "tool_call_id": "call_1",
                "content": [{"type": "text", "text": "ok"}],
            },
        ],
    }
    path = store.chat_path(chat_id)
    path.write_bytes(orjson.dumps(query_line(chat_id, "r1")) + b"\n" + orjson.dumps(legacy_step) + b"\n")
    lines = await store.read_lines(chat_id)
    step = lines[1]
    assert "planSnapshot" not in step
    assert step["plan"] == {
        "planId": "p1",
        "tasks": [{"taskId": "t1", "description": "d", "status": "in_progress"}],
    }
    assert step["messages"][0]["_toolId"] == "call_1"
    # Files and index written by another gateway: an index line without ``hasPlan`` (or no
    # line at all) means "unknown", so latest_plan reads the file.
    index = store.dir / INDEX_NAME
    expected = {"planId": "p1", "tasks": [{"taskId": "t1", "description": "d", "status": "init"}]}
    index.write_bytes(
        orjson.dumps({"chatId": chat_id, "chatName": "legacy", "createdAt": 1, "updatedAt": 1}) + b"\n"
    )
    fresh = ChatStore(store_settings(store))
    assert await fresh.latest_plan(chat_id) == expected
    index.write_bytes(b"")
    fresh = ChatStore(store_settings(store))
    assert await fresh.latest_plan(chat_id) == expected
    runs = await fresh.load_window(chat_id, 3)
    assert runs[0].steps[0]["plan"]["tasks"][0]["taskId"] == "t1"
    assert (
        runs[0].steps[0]["plan"]["tasks"][0]["status"] == "in_progress"
    )  # as stored; only latest_plan maps it


async def test_latest_plan_is_none_without_plans_and_reads_nothing(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    await store.append_line(chat_id, query_line(chat_id, "r1"))
    await store.append_line(chat_id, step_line(chat_id, "r1", 1, "plain answer"))
    before = store.bytes_read
    assert await store.latest_plan(chat_id) is None
    assert store.bytes_read == before
    await store.append_line(chat_id, step_line(chat_id, "r1", 2, "x", plan={"planId": "p", "tasks": []}))
    await store.append_line(chat_id, step_line(chat_id, "r1", 3, "y"))
    assert await store.latest_plan(chat_id) == {"planId": "p", "tasks": []}


async def test_window_read_is_bounded_for_10000_runs(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path), block_size=16 * 1024)
    small, big = str(uuid.uuid4()), str(uuid.uuid4())
    for chat_id, runs in ((small, 20), (big, 10_000)):
        await store.create_chat(chat_id, "c", "demo", "Demo")
        blob = bytearray()
        for i in range(runs):
            blob += orjson.dumps(query_line(chat_id, f"run{i}", f"question {i}")) + b"\n"
            blob += orjson.dumps(step_line(chat_id, f"run{i}", 1, f"answer {i} " + "z" * 200)) + b"\n"
        with store.chat_path(chat_id).open("ab") as fh:
            fh.write(bytes(blob))
    big_size = store.chat_path(big).stat().st_size
    assert big_size > 3_000_000

    store.bytes_read = 0
    small_runs = await store.load_window(small, 20)
    small_read = store.bytes_read
    store.bytes_read = 0
    big_runs = await store.load_window(big, 20)
    big_read = store.bytes_read

    assert [r.run_id for r in small_runs] == [f"run{i}" for i in range(20)]
    assert [r.run_id for r in big_runs] == [f"run{i}" for i in range(9980, 10_000)]
    assert all(r.query is not None and len(r.steps) == 1 for r in big_runs)
    # The window of the 10,000-run chat costs about what the whole 20-run chat costs:
    # at most one extra block, nowhere near the file size.
    assert big_read <= small_read + 2 * store.block_size
    assert big_read < big_size // 50


async def test_window_with_a_huge_line(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path), block_size=4096)
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    for i in range(3):
        await store.append_line(chat_id, query_line(chat_id, f"r{i}"))
        await store.append_line(chat_id, step_line(chat_id, f"r{i}", 1, str(i) * 100_000))
    runs = await store.load_window(chat_id, 2)
    assert [r.run_id for r in runs] == ["r1", "r2"]
    assert runs[1].steps[0]["messages"][0]["content"][0]["text"] == "2" * 100_000


async def test_index_survives_many_updates_and_a_torn_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = ChatStore(settings)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for chat_id in ids:
        await store.create_chat(chat_id, f"chat {chat_id[:4]}", "demo", "Demo")
    usage = UsageTotals(input_tokens=1, points=0.001, calls=1)
    for _ in range(150):
        await store.record_run_end(ids[0], usage)
    index = store.dir / INDEX_NAME
    # Compaction keeps the file small: stale lines never outnumber live ones by much.
    assert len(index.read_bytes().splitlines()) <= 2 * 3 + 64 + 1
    with index.open("ab") as fh:
        fh.write(b'{"chatId": "torn')
    fresh = ChatStore(settings)
    chats = {c["chatId"]: c for c in await fresh.list_chats()}
    assert set(chats) == set(ids)
    assert chats[ids[0]]["usage"]["inputTokens"] == 150 and chats[ids[0]]["usage"]["calls"] == 150
    await fresh.delete_chat(ids[1])
    assert {c["chatId"] for c in await ChatStore(settings).list_chats()} == {ids[0], ids[2]}
    for line in index.read_bytes().splitlines():
        if line.strip() and not line.startswith(b'{"chatId": "torn'):
            orjson.loads(line)


_RUN_ENDS = """
for i in range(300):
    await store.record_run_end({chat!r}, UsageTotals(input_tokens=1, calls=1))
    if i % 50 == 0:
        await store.create_chat(str(uuid.uuid4()), "child chat", "demo", "Demo")
"""


async def test_index_updates_from_two_processes_are_never_lost(tmp_path: Path) -> None:
    """Both processes keep the index open between updates and compact it in turn; every
    run end of both is counted once, and each sees the other's chats."""
    store = ChatStore(make_settings(tmp_path))
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "shared", "demo", "Demo")
    child = await start_child(child_script(_RUN_ENDS, dir=str(store.dir), chat=chat_id))
    for i in range(300):
        await store.record_run_end(chat_id, UsageTotals(input_tokens=1, calls=1))
        if i % 50 == 0:
            await store.create_chat(str(uuid.uuid4()), "parent chat", "demo", "Demo")
    _out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    for reader in (store, ChatStore(make_settings(tmp_path))):
        chats = await reader.list_chats()
        names = [c["chatName"] for c in chats]
        assert names.count("child chat") == 6 and names.count("parent chat") == 6
        shared = next(c for c in chats if c["chatId"] == chat_id)
        assert shared["usage"]["calls"] == 600 and shared["usage"]["inputTokens"] == 600
    lines = (store.dir / INDEX_NAME).read_bytes().splitlines()
    assert len(lines) <= 2 * 13 + 64 + 1  # compacted along the way
    assert all(orjson.loads(line)["chatId"] for line in lines)


async def test_index_reads_records_back_and_sees_other_writers(tmp_path: Path) -> None:
    """The index keeps positions, not records: what another instance wrote is what is read,
    also right after this instance wrote the same chat, and across a compaction."""
    a, b = ChatStore(make_settings(tmp_path)), ChatStore(make_settings(tmp_path))
    chat_id = str(uuid.uuid4())
    await a.create_chat(chat_id, "shared", "demo", "Demo")
    await a.record_run_end(chat_id, UsageTotals(input_tokens=1, calls=1))
    await b.record_run_end(chat_id, UsageTotals(input_tokens=10, calls=1))
    record = await a.get_chat(chat_id)
    assert record is not None and record["usage"]["inputTokens"] == 11 and record["usage"]["calls"] == 2
    others = [str(uuid.uuid4()) for _ in range(5)]
    for other in others:
        await b.create_chat(other, "other", "demo", "Demo")
    for _ in range(100):  # enough stale lines for b to compact the file under a
        await b.record_run_end(others[0], UsageTotals(calls=1))
    assert len((a.dir / INDEX_NAME).read_bytes().splitlines()) < 100
    listed = {c["chatId"]: c for c in await a.list_chats()}
    assert set(listed) == {chat_id, *others}
    assert listed[others[0]]["usage"]["calls"] == 100 and listed[chat_id]["usage"]["calls"] == 2
    await a.record_run_end(chat_id, UsageTotals(calls=1))
    shared = await b.get_chat(chat_id)
    assert shared is not None and shared["usage"]["calls"] == 3


async def test_trim_to_window(store: ChatStore) -> None:
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "c", "demo", "Demo")
    for i in range(5):
        await store.append_line(chat_id, query_line(chat_id, f"r{i}"))
        await store.append_line(chat_id, step_line(chat_id, f"r{i}", 1, f"a{i}"))
    assert await store.trim_to_window(chat_id, 2)
    lines = await store.read_lines(chat_id)
    assert [line["runId"] for line in lines] == ["r3", "r3", "r4", "r4"]
    assert not await store.trim_to_window(chat_id, 2)
    await store.append_line(chat_id, query_line(chat_id, "r5"))
    assert [line["runId"] for line in await store.read_lines(chat_id)][-1] == "r5"


def test_charset_must_be_known_and_ascii_compatible(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"memory\.chat\.charset"):
        ChatStore(make_settings(tmp_path, memory__chat__charset="no-such-charset"))
    with pytest.raises(SettingsError, match="ASCII-compatible"):
        ChatStore(make_settings(tmp_path, memory__chat__charset="UTF-16"))


async def test_non_utf8_charset_round_trip(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path, memory__chat__charset="GBK"))
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "天气", "demo", "Demo")
    await store.append_line(chat_id, query_line(chat_id, "r1", "上海天气怎么样"))
    assert "上海天气怎么样".encode("gbk") in store.chat_path(chat_id).read_bytes()
    lines = await store.read_lines(chat_id)
    assert lines[0]["query"]["message"] == "上海天气怎么样"
    runs = await store.load_window(chat_id, 1)
    assert runs[0].query is not None and runs[0].query["query"]["message"] == "上海天气怎么样"
    assert (await store.list_chats())[0]["chatName"] == "天气"
