"""``kill -9`` in the middle of a run leaves every chat file readable, and the chat goes on."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from agentgw.memory.store import SOON_S, ChatStore
from agentgw.providers.scripted import Hang, ScriptedProvider, Signal, Text
from agentgw.settings import load_settings
from tests.gateway import make_workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(cwd: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "MEMORY_", "SERVER_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentgw",
        "serve",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("gateway did not start")


async def query(port: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/api/ap/query", json=body) as resp:
            raw = await resp.read()
    return [orjson.loads(line[5:]) for line in raw.split(b"\n") if line.startswith(b"data:")]


async def test_kill_minus_nine_mid_run(tmp_path: Path, provider: ScriptedProvider) -> None:
    dirs = make_workspace(tmp_path)
    (tmp_path / "application.yml").write_text(
        "agent:\n"
        f"  providers: {{demo: {{base-url: '{provider.base_url}', api-key: k}}}}\n"
        "  auth: {enabled: false}\n"
        "  demo-provider: {enabled: false}\n"
        "memory: {chat: {dir: ./chats}}\n"
    )
    port = free_port()
    proc = await start(tmp_path, port)
    try:
        provider.enqueue([Text("first answer", chunks=2)])
        first = await query(port, {"agentKey": "demo_oneshot", "message": "remember me"})
        assert first[-1]["type"] == "run.complete"
        chat_id = first[0]["chatId"]
        await asyncio.sleep(0.3)  # the first run's lines are on disk

        # The second run streams a little, then the provider goes quiet; we kill the server.
        gate = asyncio.Event()
        provider.enqueue([Text("half an ans", chunks=3), Signal(gate), Hang()])
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{port}/api/ap/query",
                json={"agentKey": "demo_oneshot", "message": "second", "chatId": chat_id},
            ) as resp:
                await resp.content.readuntil(b'"content.delta"')
                await asyncio.wait_for(gate.wait(), 5)
                # The run's question is stored within SOON_S of its start (ChatStore.start_run).
                await asyncio.sleep(SOON_S + 0.2)
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    # Every chat file still reads; a torn line, if any, is only ever the last one.
    for path in dirs["chats"].iterdir():
        if path.suffix not in (".json", ".jsonl"):
            continue
        lines = path.read_bytes().split(b"\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                assert i >= len(lines) - 2, f"{path.name}: bad line {i} is not the last"
    store = ChatStore(load_settings(files=(), environ={}, overrides={"memory.chat.dir": str(dirs["chats"])}))
    runs = await store.load_window(chat_id, 20)
    assert [(r.query or {})["query"]["message"] for r in runs] == ["remember me", "second"]

    # A new server takes the chat up again; the next run sees the first run's exchange.
    proc = await start(tmp_path, port)
    try:
        provider.enqueue([Text("third answer")])
        third = await query(port, {"agentKey": "demo_oneshot", "message": "third", "chatId": chat_id})
        assert third[-1]["type"] == "run.complete"
        assert "chat.start" not in [e["type"] for e in third]
        sent = provider.requests[-1].body["messages"]
        assert {"role": "user", "content": "remember me"} in sent
        assert {"role": "assistant", "content": "first answer"} in sent
        assert sent[-1] == {"role": "user", "content": "third"}
    finally:
        proc.terminate()
        await proc.wait()
