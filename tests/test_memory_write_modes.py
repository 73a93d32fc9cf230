"""Both write modes of the chat store (``memory.chat.inline-writes``) keep lines whole and ordered."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from agentgw.memory.store import ChatStore
from agentgw.settings import load_settings
from agentgw.usage import UsageTotals


@pytest.mark.parametrize("inline", [True, False])
async def test_concurrent_appends_and_index(tmp_path: Path, inline: bool) -> None:
    settings = load_settings(
        files=(),
        environ={},
        overrides={"memory.chat.dir": str(tmp_path), "memory.chat.inline-writes": inline},
    )
    store = ChatStore(settings)
    chat_id = str(uuid.uuid4())
    await store.create_chat(chat_id, "name", "agent", "Agent", None)
    big = "x" * (100 * 1024)  # above the inline limit: always written from a thread

    async def writer(n: int) -> None:
        for i in range(20):
            text = big if i == 10 else f"line {n}-{i}"
            await store.append_line(
                chat_id,
                {
                    "_type": "step",
                    "chatId": chat_id,
                    "runId": f"r{n}",
                    "_seq": i,
                    "messages": [{"role": "assistant", "content": text}],
                },
            )

    await asyncio.gather(*(writer(n) for n in range(5)))
    lines = [orjson.loads(x) for x in store.chat_path(chat_id).read_bytes().splitlines() if x]
    assert len(lines) == 100
    for n in range(5):
        assert [x["_seq"] for x in lines if x["runId"] == f"r{n}"] == list(range(20))  # each writer in order
    usage = UsageTotals(input_tokens=7, output_tokens=3, calls=1)
    await store.record_run_end(chat_id, usage)
    record = await store.get_chat(chat_id)
    assert record is not None and record["usage"]["inputTokens"] == 7
    assert await store.exists(chat_id) is True
