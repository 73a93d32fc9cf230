"""Garbage collection of the bench's own servers (the relays, the fake provider) as the
served gateway's (``agentgw.gctune``): startup frozen, the automatic threshold raised, and
collections when no stream is open, so a collection does not fall inside a burst."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from agentgw.gctune import IdleCollector, tune

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OpenStreams:
    """Counts the requests being served; the collector waits until there are none."""

    def __init__(self) -> None:
        self.count = 0

    def counted(self, handler: Handler) -> Handler:
        async def counted(request: web.Request) -> web.StreamResponse:
            self.count += 1
            try:
                return await handler(request)
            finally:
                self.count -= 1

        return counted

    def collect_when_idle(self) -> None:
        """Once serving (in the running loop): :func:`tune`, and collect when idle."""
        tune()
        IdleCollector(lambda: self.count > 0).start()
