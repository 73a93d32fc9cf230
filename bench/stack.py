"""The bench's processes for the side tools: a fake provider and the targets, warmed up.

``python -m bench`` builds its own (it also measures startup and memory); the tools that
look closer at one thing (``bench.burst_cpu``, ``bench.burst_scale``, ``bench.loop_profile``)
share this (and ``bench.profile``, its gateway under cProfile)::

    async with Stack(session, ("relay", "gateway")) as stack:
        stack.targets["gateway"]  # a Target, its process started and warmed up
        await one_stream(stack.client, stack.targets["gateway"], "n=10")  # the streams' client

``launch`` rewrites how a target's process is started (its ``python`` arguments, e.g.
``["-m", "agentgw", "serve", ...]``), for a tool that runs it under a wrapper.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import aiohttp

from agentgw.providers.wire import ProviderClient
from bench.__main__ import ROOT, Proc, free_port, spawn, start_provider, wait_ready, warm_up, write_workspace
from bench.client import Target

NAMES = ("relay", "relay_wire", "gateway")
Launch = Callable[[str, list[str]], list[str]]


class Stack:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        names: Sequence[str] = ("relay", "gateway"),
        *,
        quick: bool = False,
        launch: Launch | None = None,
    ) -> None:
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            raise ValueError(f"unknown target {unknown[0]!r}; known: {', '.join(NAMES)}")
        self.session = session  # readiness checks
        self.client = ProviderClient()  # the streams (bench.client.one_stream)
        self.names = tuple(names)
        self.quick = quick
        self.launch: Launch = launch or (lambda _name, args: args)
        self.workspace = Path(tempfile.mkdtemp(prefix="agentgw-bench-tool-"))
        self.procs: list[Proc] = []
        self.targets: dict[str, Target] = {}

    @property
    def provider(self) -> Proc:
        return self.procs[0]

    async def __aenter__(self) -> Stack:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        provider_port = free_port()
        provider_url = f"http://127.0.0.1:{provider_port}/v1"
        write_workspace(self.workspace, provider_url)
        self.procs.append(await start_provider(provider_port))
        upstream = f"{provider_url}/chat/completions"
        for name in self.names:
            port = free_port()
            if name == "gateway":
                args = ["-m", "agentgw", "serve", "--port", str(port), "--host", "127.0.0.1"]
                proc = await spawn(name, self.launch(name, args), self.workspace, False)
                self.procs.append(proc)
                await wait_ready(self.session, f"http://127.0.0.1:{port}")
                url = f"http://127.0.0.1:{port}/api/ap/query"
            else:
                args = ["-m", "bench.relay", "--port", str(port), "--upstream", upstream]
                if name == "relay_wire":
                    args += ["--client", "wire"]
                proc = await spawn(name, self.launch(name, args), ROOT, True)
                self.procs.append(proc)
                url = f"http://127.0.0.1:{port}/relay"
            self.targets[name] = Target(name, url, proc.pid, gateway=name == "gateway")
        for target in self.targets.values():
            await warm_up(self.client, target, self.quick)

    async def _stop(self) -> None:
        await self.client.close()
        for proc in reversed(self.procs):
            await proc.stop()
        self.procs.clear()
        shutil.rmtree(self.workspace, ignore_errors=True)
