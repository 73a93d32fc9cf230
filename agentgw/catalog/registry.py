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
import threading
from collections.abc import Callable
from typing import Any

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
WATCH_TIMEOUT_MS = 1000  # the watcher thread looks at its halt flag at least this often
WATCH_START_S = 5.0  # startup waits this long at most for the watches to be registered

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
        watching = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._watch(self._stop_event, watching), name="catalog-watch"),
            asyncio.create_task(self._periodic(self._stop_event), name="catalog-rescan"),
        ]
        # Wait until the watcher has registered its inotify watches, then rescan once so an
        # edit made between the load and the registration is not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watching.wait(), WATCH_START_S)
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

    async def _watch(self, stop: asyncio.Event, watching: asyncio.Event) -> None:
        """Refresh on every batch of file changes under the definition folders.

        The watcher (watchfiles' inotify core) blocks in a thread of its own that hands
        change batches to the loop; using it directly rather than through ``awatch``
        keeps anyio and its thread pool out of the process (about 0.9 MB resident).
        """
        paths = [str(folder) for folder in dict.fromkeys(self.dirs.all()) if folder.is_dir()]
        if not paths:
            watching.set()
            return
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        done: asyncio.Future[BaseException | None] = loop.create_future()
        halt = threading.Event()
        threading.Thread(
            target=_watch_thread,
            args=(paths, halt, loop, watching, changed, done),
            name="catalog-watch",
            daemon=True,
        ).start()
        waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                changes: asyncio.Future[Any] = asyncio.ensure_future(changed.wait())
                await asyncio.wait({changes, waiter, done}, return_when=asyncio.FIRST_COMPLETED)
                changes.cancel()
                if done.done():
                    error = done.result()
                    if error is not None:
                        # e.g. inotify limits: the periodic rescan still works
                        logger.error("catalog watcher stopped (%s); falling back to periodic rescans", error)
                    return
                if changed.is_set():
                    changed.clear()
                    await self._safe_refresh()
        finally:
            halt.set()
            waiter.cancel()

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


def _watch_thread(
    paths: list[str],
    halt: threading.Event,
    loop: asyncio.AbstractEventLoop,
    watching: asyncio.Event,
    changed: asyncio.Event,
    done: asyncio.Future[BaseException | None],
) -> None:
    """Block in watchfiles' notifier; set ``changed`` on the loop for every relevant batch."""
    import watchfiles.main as wf
    from watchfiles import Change, DefaultFilter
    from watchfiles._rust_notify import RustNotify

    keep = DefaultFilter()
    # The same environment switches as watchfiles' own watch() (WATCHFILES_FORCE_POLLING…).
    force_polling = wf._default_force_polling(None)
    poll_delay_ms = wf._default_poll_delay_ms(300)
    error: BaseException | None = None
    try:
        with RustNotify(paths, wf._default_debug(None), force_polling, poll_delay_ms, True, True) as watcher:
            loop.call_soon_threadsafe(watching.set)
            while not halt.is_set():
                raw = watcher.watch(WATCH_DEBOUNCE_MS, WATCH_STEP_MS, WATCH_TIMEOUT_MS, halt)
                if raw == "stop":
                    break
                if isinstance(raw, set) and any(keep(Change(kind), path) for kind, path in raw):
                    loop.call_soon_threadsafe(changed.set)
    except BaseException as exc:  # reported to the loop; the rescan keeps the catalog fresh
        error = exc
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(watching.set)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(_resolve, done, error)


def _resolve(done: asyncio.Future[BaseException | None], error: BaseException | None) -> None:
    if not done.done():
        done.set_result(error)
