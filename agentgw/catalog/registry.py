"""The live catalog: loads every folder, watches them, swaps immutable snapshots (SPEC §3, §10.8).

Usage (the app owns the instance and its lifetime)::

    catalog = Catalog(settings)
    await catalog.start()          # initial load, then watchfiles + a periodic rescan
    snap = catalog.snapshot()      # an immutable CatalogSnapshot; keep it for a whole run
    ...
    await catalog.stop()

A file change is picked up by the watcher within a fraction of a second; the periodic
rescan (the smallest ``refresh-interval-ms`` of §2) is a safety net for file systems that
do not report changes. A reload re-parses only files whose content changed, re-resolves
agents when something they depend on changed, and swaps one reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from agentgw.catalog.models import builtin_model_files, install_builtin_models
from agentgw.catalog.scan import CatalogDirs, Scanner
from agentgw.catalog.snapshot import CatalogSnapshot, empty_snapshot
from agentgw.errors import DefinitionError
from agentgw.settings import Settings

logger = logging.getLogger(__name__)

ChangeCallback = Callable[[CatalogSnapshot], None]

# Watcher tuning: changes are batched for this long before a reload (watchfiles' default is
# 1.6 s, too slow for "live within a second").
WATCH_DEBOUNCE_MS = 150
WATCH_STEP_MS = 30

__all__ = ["Catalog", "CatalogDirs", "CatalogSnapshot", "ChangeCallback"]


class Catalog:
    """Owner of the catalog snapshots and of the watcher tasks."""

    def __init__(self, settings: Settings, *, install_builtins: bool = True) -> None:
        self.settings = settings
        self.dirs = CatalogDirs.from_settings(settings)
        self._install_builtins = install_builtins
        self._scanner = Scanner(settings)
        self._snapshot = empty_snapshot()
        self._callbacks: list[ChangeCallback] = []
        self._lock = asyncio.Lock()
        self._stop_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """True once the first full load has run (readiness)."""
        return self._loaded

    def snapshot(self) -> CatalogSnapshot:
        """The current snapshot; cheap, never blocks."""
        return self._snapshot

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(new_snapshot)`` after every swap (in the event loop, or the caller of load())."""
        self._callbacks.append(callback)

    def load(self) -> CatalogSnapshot:
        """Full synchronous load: install the built-in models, scan every folder, swap.

        For startup and tools; once :meth:`start` runs, use :meth:`refresh` instead.
        """
        snapshot = self._full_scan()
        self._swap(snapshot)
        self._loaded = True
        return snapshot

    def _full_scan(self) -> CatalogSnapshot:
        if self._install_builtins:
            install_builtin_models(self.dirs.models)
        snapshot = self._scanner.scan(force=True)
        assert snapshot is not None
        return snapshot

    async def refresh(self) -> bool:
        """Rescan now (off the event loop); True when a new snapshot was swapped in."""
        async with self._lock:
            snapshot = await asyncio.to_thread(self._scanner.scan)
            if snapshot is None:
                return False
            self._swap(snapshot)
            return True

    async def start(self) -> None:
        """Initial load (unless done already), then the watcher and the periodic rescan."""
        if self._tasks:
            return
        for folder in self.dirs.all():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                logger.warning("catalog folder %s is not available: %s", folder, exc)
        if not self._loaded:
            async with self._lock:
                snapshot = await asyncio.to_thread(self._full_scan)
                self._swap(snapshot)  # in the loop, so callbacks run where they were registered
                self._loaded = True
        self._stop_event = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._watch(self._stop_event), name="catalog-watch"),
            asyncio.create_task(self._periodic(self._stop_event), name="catalog-rescan"),
        ]
        # Let the watcher register its inotify watches (done before its first await), then
        # rescan once so an edit made between the load and the registration is not missed.
        for _ in range(3):
            await asyncio.sleep(0)
        await self._safe_refresh()

    async def stop(self) -> None:
        """Stop the watcher and the rescans; waits for both tasks."""
        if self._stop_event is not None:
            self._stop_event.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stop_event = None

    # --- internals ------------------------------------------------------------------------

    def _swap(self, snapshot: CatalogSnapshot) -> None:
        previous = self._snapshot
        self._snapshot = snapshot
        _log_changes(previous, snapshot)
        for callback in list(self._callbacks):
            try:
                callback(snapshot)
            except Exception:  # one bad listener must not stop the others or the reload
                logger.exception("catalog change callback failed")

    async def _safe_refresh(self) -> None:
        try:
            await self.refresh()
        except Exception:  # the loader must never take the server down
            logger.exception("catalog reload failed; the previous catalog keeps serving")

    async def _watch(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        paths = [folder for folder in dict.fromkeys(self.dirs.all()) if folder.is_dir()]
        if not paths:
            return
        try:
            async for _changes in awatch(
                *paths,
                stop_event=stop,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                ignore_permission_denied=True,
            ):
                await self._safe_refresh()
        except Exception:  # e.g. inotify limits: the periodic rescan still works
            logger.exception("catalog watcher stopped; falling back to periodic rescans")

    async def _periodic(self, stop: asyncio.Event) -> None:
        agent = self.settings.agent
        interval_ms = min(
            agent.catalog.refresh_interval_ms,
            agent.model.refresh_interval_ms,
            agent.viewport.refresh_interval_ms,
            agent.capability.refresh_interval_ms,
            agent.skill.refresh_interval_ms,
        )
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_ms / 1000)
            except TimeoutError:
                await self._safe_refresh()


def _log_changes(previous: CatalogSnapshot, current: CatalogSnapshot) -> None:
    old = {str(e) for e in previous.errors}
    for error in current.errors:
        if str(error) not in old:
            logger.warning("definition error: %s", error)
    old_warnings = {str(w) for w in previous.warnings}
    for warning in current.warnings:
        if str(warning) not in old_warnings:
            logger.warning("definition warning: %s", warning)
    logger.info(
        "catalog v%d: %d agents, %d models, %d tools, %d skills, %d viewports, %d errors",
        current.version,
        len(current.agents),
        len(current.models),
        len(current.tools),
        len(current.skills),
        len(current.viewports),
        len(current.errors),
    )


def validate_errors(settings: Settings) -> list[DefinitionError]:
    """Every problem of the folders named by ``settings``, without writing anything.

    The built-in models are taken into account as if they had been installed.
    """
    scanner = Scanner(settings, overlay_models=builtin_model_files())
    snapshot = scanner.scan(force=True)
    assert snapshot is not None
    return list(snapshot.errors)
