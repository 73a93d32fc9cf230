"""The served gateway's loop (``agentgw.eventloop``): provider reads go before waiting work."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from aiohttp import web

from agentgw.eventloop import NEXT_GROUP, GatewayLoop, create_task_next, expect_head, head_in, mark_urgent
from agentgw.providers.wire import ProviderClient
from tests.gateway import serve_app


def run_loop(coro_fn) -> None:  # type: ignore[no-untyped-def]
    loop = GatewayLoop()
    try:
        loop.run_until_complete(coro_fn(loop))
    finally:
        loop.close()


def _reader(order: list[str], done: asyncio.Future[None], count: int) -> Callable[[str, socket.socket], None]:
    """A read callback that takes the byte, notes whose socket it was, and ends after ``count``."""

    def reader(name: str, sock: socket.socket) -> None:
        sock.recv(100)
        order.append(name)
        if len(order) == count:
            done.set_result(None)

    return reader


def test_an_urgent_read_runs_before_the_callbacks_already_waiting() -> None:
    async def main(loop: GatewayLoop) -> None:
        urgent_r, urgent_w = socket.socketpair()
        plain_r, plain_w = socket.socketpair()
        order: list[str] = []
        done = loop.create_future()

        reader = _reader(order, done, 3)

        loop.add_reader(urgent_r.fileno(), reader, "urgent", urgent_r)
        loop.add_reader(plain_r.fileno(), reader, "plain", plain_r)
        loop.mark_urgent(urgent_r.fileno())

        def kick() -> None:
            # Both sockets readable by the next select; a callback waiting before it.
            plain_w.send(b"x")
            urgent_w.send(b"x")
            loop.call_soon(order.append, "waiting")

        loop.call_soon(kick)
        await asyncio.wait_for(done, 5)
        assert order == ["urgent", "waiting", "plain"]
        for fd in (urgent_r.fileno(), plain_r.fileno()):
            loop.remove_reader(fd)
        for s in (urgent_r, urgent_w, plain_r, plain_w):
            s.close()

    run_loop(main)


def test_a_read_awaiting_its_head_goes_before_the_streaming_ones() -> None:
    async def main(loop: GatewayLoop) -> None:
        pairs = {name: socket.socketpair() for name in ("streaming", "head", "plain")}
        order: list[str] = []
        done = loop.create_future()

        reader = _reader(order, done, 4)

        for name, (r, _w) in pairs.items():
            loop.add_reader(r.fileno(), reader, name, r)
        for name in ("streaming", "head"):
            loop.mark_urgent(pairs[name][0].fileno())
        expect_head(loop, pairs["head"][0].fileno())
        expect_head(loop, pairs["plain"][0].fileno())  # not urgent: nothing changes for it

        def kick() -> None:
            for name in ("plain", "streaming", "head"):  # the head's socket readable last
                pairs[name][1].send(b"x")
            loop.call_soon(order.append, "waiting")

        loop.call_soon(kick)
        await asyncio.wait_for(done, 5)
        assert order == ["head", "streaming", "waiting", "plain"]
        head_in(loop, pairs["head"][0].fileno())
        assert loop._heads == set()
        for r, w in pairs.values():
            loop.remove_reader(r.fileno())
            r.close()
            w.close()

    run_loop(main)


def test_provider_connections_are_urgent_while_open() -> None:
    async def main(loop: GatewayLoop) -> None:
        async def answer(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"data: one\n\n")
            await resp.write_eof()
            return resp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", answer)
        runner, port = await serve_app(app)
        client = ProviderClient()
        try:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            resp = await client.post(url, {"Content-Type": "application/json"}, b"{}", connect_timeout_s=5)
            assert await resp.read(1000) == b"data: one\n\n"
            resp.release()
            conns = list(client._open)
            assert len(conns) == 1 and loop._urgent == {conns[0]._fd}  # pooled, still urgent
            assert loop._heads == set()  # its head came: its reads are a stream's now
        finally:
            await client.close()
            await asyncio.sleep(0.05)  # the transport closes in a callback
            await runner.cleanup()
        assert loop._urgent == set()  # unmarked before its fd was closed

    run_loop(main)


async def test_other_loops_have_no_urgent_sockets() -> None:
    """Under another loop (the tests' own) nothing is marked, and nothing fails."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    transport, _protocol = await loop.connect_accepted_socket(asyncio.Protocol, a)
    assert mark_urgent(loop, transport) == -1
    transport.close()
    b.close()


def test_tasks_started_next_run_in_a_group_ahead_of_the_callbacks_waiting() -> None:
    """As queries' handlers start runs: each run's first step waits for at most
    ``NEXT_GROUP - 1`` callbacks, then the group's runs go, in order, before the rest."""

    async def main(loop: GatewayLoop) -> None:
        order: list[str] = []
        done = loop.create_future()

        async def run(i: int) -> None:
            order.append(f"run{i}")

        def handler(i: int) -> None:
            order.append(f"handler{i}")
            create_task_next(run(i), name=f"run{i}")

        def other(i: int) -> None:
            order.append(f"other{i}")
            if i == 2:
                done.set_result(None)

        def burst() -> None:
            for i in range(NEXT_GROUP + 2):
                loop.call_soon(handler, i)
            for i in range(3):
                loop.call_soon(other, i)

        loop.call_soon(burst)
        await asyncio.wait_for(done, 5)
        n = NEXT_GROUP
        first = [f"handler{i}" for i in range(n)] + [f"run{i}" for i in range(n)]
        second = [f"handler{i}" for i in range(n, n + 2)] + ["other0", "other1"]
        # the second group's runs wait for NEXT_GROUP - 1 callbacks: two handlers, two others
        assert order == [*first, *second, "run4", "run5", "other2"]

    run_loop(main)


async def test_a_task_started_next_on_another_loop_is_a_plain_task() -> None:
    order: list[str] = []

    async def step() -> None:
        order.append("task")

    asyncio.get_running_loop().call_soon(order.append, "waiting")
    task = create_task_next(step())
    await task
    assert order == ["waiting", "task"]
