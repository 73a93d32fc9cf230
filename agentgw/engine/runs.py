"""Live runs: start, follow, submit, cancel (§4.6, §10.1–§10.3, §10.10).

The :class:`RunManager` owns every run task. A run goes on when its client disconnects
(a disconnect is not a cancel) and is stored; ``cancel`` ends it with ``run.cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agentgw import eventloop, ids
from agentgw.catalog.types import Agent
from agentgw.engine.modes import ModeRunner, run_oneshot, run_react
from agentgw.engine.state import RunDeadline, RunState
from agentgw.engine.stream import EventLog
from agentgw.errors import ProviderError, RequestError, RunAborted
from agentgw.memory.recorder import RunRecorder
from agentgw.memory.window import build_context
from agentgw.providers.log import InteractionLog

if TYPE_CHECKING:
    import aiohttp

    from agentgw.catalog.registry import CatalogSnapshot
    from agentgw.memory.store import ChatStore
    from agentgw.providers.wire import ProviderClient
    from agentgw.settings import Settings

logger = logging.getLogger("agentgw.runs")

OnBusy = Literal["reject", "enqueue", "interrupt"]
KEEP_FINISHED_S = 60.0  # finished runs stay resumable this long (then history serves them)
# A run's first events wait this long at most for its provider's first answer (see _begin).
OPENING_WAIT_S = 0.05
# A finished run keeps only its event frames, owner and answered calls; see RunState.release.


def _mode_runner(agent: Agent) -> ModeRunner:
    if agent.mode == "ONESHOT":
        return run_oneshot
    if agent.mode == "REACT":
        return run_react
    from agentgw.engine.plan_execute import run_plan_execute

    return run_plan_execute


@dataclass(slots=True)
class Run:
    state: RunState
    task: asyncio.Task[None] | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    started: bool = False  # the task is past the chat lock and has emitted request.query
    ending: bool = False  # its end is decided: it stores its last lines, then emits it
    queued: bool = False  # it started behind the chat's previous run (it waits for its lock)

    @property
    def log(self) -> EventLog:
        return self.state.log


@dataclass(slots=True)
class SubmitResult:
    accepted: bool
    status: Literal["accepted", "unmatched"]
    run_id: str
    tool_id: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "status": self.status,
            "runId": self.run_id,
            "toolId": self.tool_id,
            "detail": self.detail,
        }


class RunManager:
    opening_wait_s = OPENING_WAIT_S  # how long a run's opening waits for its provider (_begin)

    def __init__(
        self,
        settings: Settings,
        http: aiohttp.ClientSession,
        store: ChatStore | None,
        providers: ProviderClient,
    ) -> None:
        self.settings = settings
        self.http = http  # tools' HTTP calls
        self.providers = providers  # model calls (agentgw.providers.wire)
        self.store = store
        self.runs: dict[str, Run] = {}
        self._chat_runs: dict[str, Run] = {}  # chat id → its active run
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._cancelled_early: dict[str, float] = {}  # cancels that arrived before their run
        self._reaper: asyncio.Task[None] | None = None
        self.interaction_log = InteractionLog.from_settings(settings)
        # Held openings, oldest first: (loop time due, run); one timer for all (see _begin).
        self._openings: deque[tuple[float, RunState]] = deque()
        self._openings_timer: asyncio.TimerHandle | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_loop(), name="agentgw-run-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        tasks = [r.task for r in self.runs.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            now = time.monotonic()
            for run_id in [
                k for k, r in self.runs.items() if r.finished_at and now - r.finished_at > KEEP_FINISHED_S
            ]:
                del self.runs[run_id]
            for run_id in [k for k, t in self._cancelled_early.items() if now - t > KEEP_FINISHED_S]:
                del self._cancelled_early[run_id]

    async def wait_idle(self, limit_s: float | None = None) -> bool:
        """Wait until no run task is running (graceful shutdown, tests); False on timeout."""
        tasks = [r.task for r in self.runs.values() if r.task is not None and not r.task.done()]
        if not tasks:
            return True
        _done, pending = await asyncio.wait(tasks, timeout=limit_s)
        return not pending

    def working(self) -> bool:
        """Whether a run is at work: live, and not only waiting for a submit (what the served
        process's collector waits out, ``agentgw.gctune``)."""
        return any(run.task is not None and run.state.waiting == 0 for run in self._chat_runs.values())

    def active_tasks(self) -> int:
        return sum(1 for r in self.runs.values() if r.task is not None and not r.task.done())

    # ---- starting ------------------------------------------------------------------------

    async def start_run(
        self,
        *,
        agent: Agent,
        snapshot: CatalogSnapshot,
        query: dict[str, Any],
        chat_id: str,
        new_chat: bool,
        chat_name: str,
        owner: str | None,
        on_busy: OnBusy = "reject",
        run_id: str | None = None,
    ) -> Run:
        """Register a run and start its task. Raises RequestError(409) on a busy chat."""
        busy = self._chat_runs.get(chat_id)
        # A run whose end is decided is only storing its last lines: the new run waits for
        # that on the chat lock instead of being refused.
        if busy is not None and busy.finished_at is None and not busy.ending:
            if on_busy == "reject":
                raise RequestError(
                    409,
                    f"chat {chat_id} is busy with run {busy.state.run_id}; "
                    "retry later or pass onBusy=enqueue|interrupt",
                    {"runId": busy.state.run_id},
                )
            if on_busy == "interrupt":
                self.cancel(busy.state.run_id, reason="interrupted by a new query")
        run_id = run_id or ids.uuid4_hex()
        query = {**query, "requestId": query.get("requestId") or run_id, "chatId": chat_id}
        state = RunState(
            run_id=run_id,
            chat_id=chat_id,
            request_id=query["requestId"],
            agent=agent,
            snapshot=snapshot,
            settings=self.settings,
            http=self.http,
            providers=self.providers,
            log=EventLog(run_id),
            query=query,
            owner=owner,
            new_chat=new_chat,
            chat_name=chat_name,
            interaction_log=self.interaction_log,
        )
        lock = self._chat_locks.get(chat_id)
        run = Run(state, queued=busy is not None or (lock is not None and lock.locked()))
        self.runs[run_id] = run
        self._chat_runs[chat_id] = run
        # Its first step (up to the model call) runs a few callbacks from now, with the runs
        # the next handlers start (agentgw.eventloop).
        run.task = eventloop.create_task_next(self._execute(run), name=f"agentgw-run-{run_id}")
        return run

    def _chat_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    async def _execute(self, run: Run) -> None:
        state = run.state
        lock = self._chat_lock(state.chat_id)
        try:
            # enqueue: wait for the chat's previous run; its lines are complete before ours start.
            async with lock:
                await self._execute_locked(run)
        finally:
            run.finished_at = time.monotonic()
            run.task = None  # this task is ending: a finished run keeps its frames, not its task
            state.release()
            if self._chat_runs.get(state.chat_id) is run:
                del self._chat_runs[state.chat_id]
            if not lock.locked() and state.chat_id not in self._chat_runs:
                self._chat_locks.pop(state.chat_id, None)

    def _query_payload(self, state: RunState) -> dict[str, Any]:
        """The ``request.query`` payload (what the chat stores as the query)."""
        query = state.query
        return {
            "requestId": state.request_id,
            "chatId": state.chat_id,
            "role": query.get("role", "user"),
            "message": query["message"],
            "agentKey": state.agent.key,
            "references": query.get("references"),
            "params": query.get("params"),
            "scene": query.get("scene"),
            "stream": query.get("stream"),
        }

    async def _begin(self, state: RunState, payload: dict[str, Any]) -> None:
        """The chat's context and plan, the user message; the run's opening is held.

        The opening (``request.query``, ``chat.start``, ``run.start``, the chat's plan, and
        the chat memory's start) goes out when the run first emits anything else, which is
        most often its first delta, or after ``OPENING_WAIT_S``: the run's model call is
        sent first. In a burst of queries, the loop then gets to the first deltas of the
        runs it started before the opening work of the ones it started after (measured:
        200 x 200 / 5 ms, first delta p50 about 3 ms sooner).
        """
        start = await self._prepare_memory(state, payload)
        state.messages.append({"role": payload["role"], "content": payload["message"]})
        state.query = {}  # taken over by the request event and the chat's query line
        state.log.defer_opening(functools.partial(self._open, state, payload, start))
        loop = asyncio.get_running_loop()
        self._openings.append((loop.time() + self.opening_wait_s, state))
        if self._openings_timer is None:
            self._openings_timer = loop.call_later(self.opening_wait_s, self._open_due)

    def _open_due(self) -> None:
        """The timer of the held openings: the ones due go out (most went with their first
        delta already: ``open`` is a no-op for them), and the runs' timeouts are set (a
        run's first delta does not wait for that); armed again for the next one."""
        self._openings_timer = None
        openings = self._openings
        loop = asyncio.get_running_loop()
        now = loop.time()
        while openings and openings[0][0] <= now:
            _due, state = openings.popleft()
            try:
                state.log.open()
                if state.timeout is not None:
                    state.timeout.arm()
            except Exception:  # one run's failure is not the others'
                logger.exception("run %s: emitting its opening failed", state.run_id)
        if openings:
            # The next one, or a little later: due ones within a few ms share a tick.
            self._openings_timer = loop.call_at(max(openings[0][0], now + 0.005), self._open_due)

    def _open(self, state: RunState, payload: dict[str, Any], start: Callable[[], None] | None) -> None:
        """``request.query``, the chat memory's start, ``chat.start``, ``run.start``, the plan."""
        log = state.log
        log.emit("request.query", payload)
        if state.recorder is not None:
            log.add_listener(state.recorder)
            if start is not None:
                try:
                    start()
                except Exception:  # the run goes on; its chat is not stored (as a failed write)
                    logger.exception("run %s: starting the chat's record failed", state.run_id)
        if state.new_chat:
            log.emit("chat.start", {"chatId": state.chat_id, "chatName": state.chat_name})
        log.emit(
            "run.start",
            {
                "runId": state.run_id,
                "chatId": state.chat_id,
                "agentKey": state.agent.key,
                "version": state.agent.version,
            },
        )
        if state.plan is not None and state.plan.get("tasks"):
            log.emit(
                "plan.update",
                {"planId": state.plan["planId"], "chatId": state.chat_id, "plan": state.plan},
            )

    async def _execute_locked(self, run: Run) -> None:
        state = run.state
        log = state.log
        payload = self._query_payload(state)
        run.started = True
        if run.cancel_requested or state.run_id in self._cancelled_early:
            log.emit("request.query", payload)
            log.emit("run.cancel", {"runId": state.run_id})
            return
        # How the run ends: the terminal event's type and fields. It is emitted last, after
        # the run's last lines and its index record are stored, so a client that sees it
        # finds the whole run in GET /api/ap/chat and its usage in GET /api/ap/chats.
        end: tuple[str, dict[str, Any]] | None = None
        try:
            if run.queued and state.new_chat and self.store is not None:
                # A new chat's id taken by two queries at once: the run before this one
                # made the chat (it is stored once that run opens), so this one continues it.
                state.new_chat = not await self.store.exists(state.chat_id)
            task = asyncio.current_task()
            assert task is not None
            # Counted from now; its timer is set with the held openings' (see _open_due).
            state.timeout = RunDeadline(task, state.agent.budget.run_timeout_ms / 1000)
            await self._begin(state, payload)
            runner = _mode_runner(state.agent)
            finish = await runner(state)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if state.timeout is not None and state.timeout.expired and not run.cancel_requested:
                budget = state.agent.budget.run_timeout_ms
                error = _error("run_timeout", f"run exceeded budget.runTimeoutMs={budget}")
                end = ("run.error", {"runId": state.run_id, "error": error})
            else:
                end = ("run.cancel", {"runId": state.run_id})
        except (RunAborted, ProviderError) as exc:
            end = (
                "run.error",
                {"runId": state.run_id, "error": _error(exc.code, exc.message, exc.retriable)},
            )
        except TimeoutError:
            budget = state.agent.budget.run_timeout_ms
            end = (
                "run.error",
                {
                    "runId": state.run_id,
                    "error": _error("run_timeout", f"run exceeded budget.runTimeoutMs={budget}"),
                },
            )
        except Exception as exc:
            logger.exception("run %s failed", state.run_id)
            end = (
                "run.error",
                {"runId": state.run_id, "error": _error("internal_error", f"{type(exc).__name__}: {exc}")},
            )
        else:
            end = (
                "run.complete",
                {"runId": state.run_id, "finishReason": finish or "end_turn", "usage": state.usage.to_dict()},
            )
        finally:
            if state.timeout is not None:
                state.timeout.cancel()
            log.open()  # a run that ends before it emitted anything: its opening first
            if log.seq == 0:  # _begin failed: the query is announced all the same
                log.emit("request.query", payload)
            del payload
            if end is None:  # a BaseException the run does not handle (the loop is going down)
                end = (
                    "run.error",
                    {"runId": state.run_id, "error": _error("internal_error", "run interrupted")},
                )
            run.ending = True  # a cancel from now on finds the run ended
            for pending in state.pending.values():
                if not pending.future.done():
                    pending.future.cancel()
            try:
                await self._finish_memory(state, *end)
            finally:
                log.emit(*end)
            if state.recorder is not None:
                try:
                    await state.recorder.trim()
                except Exception:
                    logger.exception("run %s: trimming the chat failed", state.run_id)

    async def _prepare_memory(self, state: RunState, query: dict[str, Any]) -> Callable[[], None] | None:
        """Load the chat's context and plan, make the run's recorder; returns the recorder's
        start (for the opening) when it is not done here."""
        store = self.store
        if store is None:
            return None
        create: dict[str, Any] | None = None
        if state.new_chat:
            create = {
                "name": state.chat_name,
                "agent_key": state.agent.key,
                "agent_name": state.agent.name,
                "owner": state.owner,
            }
        else:
            runs = await store.load_window(state.chat_id, self.settings.memory.chat.k)
            max_in = state.agent.primary_stage.model.model.max_input_tokens
            state.context = build_context(runs, max_in)
            state.plan = await store.latest_plan(state.chat_id)
        recorder = RunRecorder(store, state.chat_id, state.run_id, self.settings)
        state.recorder = recorder
        # The stored query is the request.query payload (agentKey resolved, requestId set).
        # It is written 100 ms later (ChatStore.start_run), or as soon as anything reads this
        # chat or writes its next line: a burst of queries gets its first deltas before the
        # disk work, and no reader sees the run without its question.
        stored = {k: v for k, v in query.items() if v is not None}
        if store.inline_writes:
            return functools.partial(recorder.start_soon, stored, create=create)
        await recorder.start(stored, create=create)
        return None

    async def _finish_memory(self, state: RunState, kind: str, fields: dict[str, Any]) -> None:
        recorder = state.recorder
        if recorder is None:
            return
        try:
            await recorder.finish(kind, fields, trim=False)
        except Exception:
            logger.exception("run %s: storing the chat failed", state.run_id)

    # ---- submit and cancel -------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def run_of_chat(self, chat_id: str) -> Run | None:
        """The chat's live run (started, queued or ending), if any."""
        return self._chat_runs.get(chat_id)

    def submit(self, run_id: str, tool_id: str, params: Any, principal: str | None) -> SubmitResult:
        """Deliver a frontend result or an approval; applied at most once (§4.6)."""
        run = self.runs.get(run_id)
        if run is None:
            return SubmitResult(False, "unmatched", run_id, tool_id, f"unknown run: {run_id}")
        if run.state.owner is not None and principal != run.state.owner:
            raise RequestError(403, f"run {run_id} belongs to another user")
        pending = run.state.pending.get(tool_id)
        if pending is None:
            return SubmitResult(
                False, "unmatched", run_id, tool_id, f"no pending tool call {tool_id} in run {run_id}"
            )
        if pending.future.done():
            return SubmitResult(
                False,
                "unmatched",
                run_id,
                tool_id,
                f"tool call {tool_id} is no longer pending ({pending.status})",
            )
        if pending.kind == "approval":
            if not isinstance(params, dict) or not isinstance(params.get("approved"), bool):
                return SubmitResult(
                    False,
                    "unmatched",
                    run_id,
                    tool_id,
                    'an approval answer must be {"approved": true|false, "reason"?, "arguments"?}',
                )
        pending.future.set_result(params)
        return SubmitResult(
            True, "accepted", run_id, tool_id, f"{pending.kind} result delivered to {pending.tool_name}"
        )

    def cancel(self, run_id: str, principal: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Cancel a run; idempotent; remembered when the run is not there yet."""
        run = self.runs.get(run_id)
        if run is None:
            self._cancelled_early[run_id] = time.monotonic()
            return {"runId": run_id, "cancelled": False, "status": "unknown", "detail": "no such run (yet)"}
        if run.state.owner is not None and principal is not None and principal != run.state.owner:
            raise RequestError(403, f"run {run_id} belongs to another user")
        if run.cancel_requested:
            # Idempotent: a repeated cancel reports the same outcome and changes nothing.
            status = "cancelled" if run.log.closed else "cancelling"
            return {
                "runId": run_id,
                "cancelled": True,
                "status": status,
                "detail": "cancel already requested",
            }
        if run.finished_at is not None or run.ending or run.log.closed:
            return {"runId": run_id, "cancelled": False, "status": "finished", "detail": "run already ended"}
        run.cancel_requested = True
        if run.task is not None and run.started:
            run.task.cancel(reason or "cancelled")
        return {
            "runId": run_id,
            "cancelled": True,
            "status": "cancelling",
            "detail": reason or "cancel requested",
        }


def _error(code: str, message: str, retriable: bool = False) -> dict[str, Any]:
    return {"code": code, "message": message, "retriable": retriable}
