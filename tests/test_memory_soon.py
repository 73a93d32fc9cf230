"""A run's first write is done soon, not at once (``ChatStore.start_run``), and nothing sees
the difference: every read and write of the chat does the waiting write first, the timer
does it when nobody asks, and closing the store does what is left."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentgw.memory import store as store_module
from agentgw.memory.store import INDEX_NAME, ChatStore
from agentgw.usage import UsageTotals
from tests.test_memory_store import make_settings, query_line, step_line

CREATE = {"name": "a question", "agent_key": "demo", "agent_name": "Demo", "owner": None}


@pytest.fixture
def wide_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the waiting writes waiting for the length of a test (unless something asks)."""
    monkeypatch.setattr(store_module, "SOON_S", 30.0)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]


@pytest.mark.usefixtures("wide_window")
async def test_the_start_waits_and_every_read_writes_it_first(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path))
    reads = {
        "exists": lambda c: store.exists(c),
        "get_chat": lambda c: store.get_chat(c),
        "read_lines": lambda c: store.read_lines(c),
        "load_window": lambda c: store.load_window(c),
        "latest_plan": lambda c: store.latest_plan(c),
        "list_chats": lambda _c: store.list_chats(),
    }
    for name, read in reads.items():
        chat_id = str(uuid.uuid4())
        await store.start_run(chat_id, query_line(chat_id, "r1", name), CREATE)
        assert not store.chat_path(chat_id).exists(), name  # waiting
        await read(chat_id)
        assert [line["query"]["message"] for line in lines_of(store.chat_path(chat_id))] == [name]
        record = await store.get_chat(chat_id)
        assert record is not None and record["chatName"] == "a question", name
    await store.close()


@pytest.mark.usefixtures("wide_window")
async def test_the_next_lines_of_the_run_come_after_its_question(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path))
    chat_id = str(uuid.uuid4())
    await store.start_run(chat_id, query_line(chat_id, "r1", "first"), CREATE)
    await store.append_lines(chat_id, [step_line(chat_id, "r1", 1, "answer")])
    await store.record_run_end(chat_id, UsageTotals())
    # A second run of the same chat (the chat exists now: no create).
    await store.start_run(chat_id, query_line(chat_id, "r2", "second"), None)
    await store.append_lines(chat_id, [step_line(chat_id, "r2", 1, "again")])
    kinds = [(line["runId"], line["_type"]) for line in lines_of(store.chat_path(chat_id))]
    assert kinds == [("r1", "query"), ("r1", "step"), ("r2", "query"), ("r2", "step")]
    await store.close()


async def test_the_timer_writes_it_when_nobody_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SOON_S", 0.02)
    monkeypatch.setattr(store_module, "SOON_SLICE", 4)  # 10 starts: three slices
    store = ChatStore(make_settings(tmp_path))
    chats = [str(uuid.uuid4()) for _ in range(10)]
    for chat_id in chats:
        await store.start_run(chat_id, query_line(chat_id, "r1"), CREATE)
    assert not any(store.chat_path(c).exists() for c in chats)
    for _ in range(200):
        if all(store.chat_path(c).exists() for c in chats):
            break
        await asyncio.sleep(0.01)
    assert all(len(lines_of(store.chat_path(c))) == 1 for c in chats)
    index = lines_of(store.dir / INDEX_NAME)
    assert [r["chatId"] for r in index] == chats  # each created once, in the order asked
    await store.close()


@pytest.mark.usefixtures("wide_window")
async def test_close_writes_what_waits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = ChatStore(settings)
    chat_id = str(uuid.uuid4())
    await store.start_run(chat_id, query_line(chat_id, "r1", "kept"), CREATE)
    await store.close()
    other = ChatStore(settings)  # another process would see the same files
    assert [run.query["query"]["message"] for run in await other.load_window(chat_id) if run.query] == [
        "kept"
    ]


@pytest.mark.usefixtures("wide_window")
async def test_a_chat_deleted_before_its_start_is_written_stays_deleted(tmp_path: Path) -> None:
    store = ChatStore(make_settings(tmp_path))
    chat_id = str(uuid.uuid4())
    await store.start_run(chat_id, query_line(chat_id, "r1"), CREATE)
    assert await store.delete_chat(chat_id) is True  # it existed, for every reader
    await store.close()
    assert not store.chat_path(chat_id).exists()
    assert await store.get_chat(chat_id) is None


@pytest.mark.usefixtures("wide_window")
async def test_a_failed_start_write_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ChatStore(make_settings(tmp_path))
    chat_id = str(uuid.uuid4())
    await store.start_run(chat_id, query_line(chat_id, "r1"), None)  # an append to a chat ...
    shutil.rmtree(store.dir)  # ... whose folder is a file when the write is done
    store.dir.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="agentgw.memory.store"):
        await store.close()
    assert any(
        chat_id in r.getMessage() and "start of a run failed" in r.getMessage() for r in caplog.records
    )


async def test_without_inline_writes_the_start_is_written_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"memory.chat.inline-writes": False})
    store = ChatStore(settings)
    chat_id = str(uuid.uuid4())
    await store.start_run(chat_id, query_line(chat_id, "r1", "now"), CREATE)
    assert [line["query"]["message"] for line in lines_of(store.chat_path(chat_id))] == ["now"]
    await store.close()
