"""The state of one run, shared by the turn, tool and mode modules."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentgw import ids
from agentgw.catalog.types import Agent, ToolDef
from agentgw.engine.stream import EventLog
from agentgw.errors import RunAborted
from agentgw.usage import UsageTotals

if TYPE_CHECKING:
    import aiohttp

    from agentgw.catalog.registry import CatalogSnapshot
    from agentgw.memory.recorder import RunRecorder
    from agentgw.providers.log import InteractionLog
    from agentgw.providers.wire import ProviderClient
    from agentgw.settings import Settings

PendingStatus = Literal["PENDING_SUBMIT", "PENDING_APPROVAL", "APPROVED", "EXECUTED", "REJECTED", "EXPIRED"]


def short_id(prefix: str) -> str:
    return f"{prefix}{ids.token_hex(4)}"


class RunDeadline:
    """The run's timeout (``budget.runTimeoutMs``): cancels the run's task when it is due.

    ``asyncio.timeout`` without the context manager (a timer and a flag, set up in a few
    calls: this is on the way of every run to its model call). The run's task tells an
    expired deadline's cancellation from others by :attr:`expired`. :meth:`when` and
    :meth:`reschedule` are ``asyncio.Timeout``'s: a run waiting for a submit is not timed.
    """

    __slots__ = ("_armed", "_handle", "_loop", "_task", "_when", "expired")

    def __init__(self, task: asyncio.Task[Any], delay_s: float) -> None:
        """Due ``delay_s`` from now; it acts once :meth:`arm`-ed."""
        self._loop = asyncio.get_running_loop()
        self._task = task
        self._when: float | None = self._loop.time() + delay_s
        self._handle: asyncio.TimerHandle | None = None
        self._armed = False
        self.expired = False

    def arm(self) -> None:
        """Set the timer (at the time due, which may have passed: then at once)."""
        if not self._armed:
            self._armed = True
            self.reschedule(self._when)

    def when(self) -> float | None:
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Be due at loop time ``when``; ``None``: not at all (until rescheduled)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = when
        if when is not None and self._armed and not self.expired:
            self._handle = self._loop.call_at(when, self._expire)

    def cancel(self) -> None:
        """The run is over: the timer goes (it would hold the run until it is due)."""
        self.reschedule(None)

    def _expire(self) -> None:
        self._handle = None
        self.expired = True
        self._task.cancel("run timeout")


@dataclass(slots=True)
class PendingCall:
    """A frontend tool or an approval waiting for ``/api/ap/submit``."""

    tool_id: str
    tool_name: str
    kind: Literal["frontend", "approval"]
    status: PendingStatus
    future: asyncio.Future[Any]
    expires_at: float  # loop time


@dataclass(slots=True)
class ToolCall:
    """One tool call of a model turn, as streamed."""

    index: int
    id: str  # the event id: provider id for backend tools, t_/a_ ids for frontend tools/actions
    provider_id: str  # the id the model gave (tool_call_id in messages)
    name: str
    tool: ToolDef | None
    kind: str  # backend | frontend | action | plan | unknown
    arg_parts: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.arg_parts)


@dataclass(slots=True)
class RunState:
    run_id: str
    chat_id: str
    request_id: str
    agent: Agent
    snapshot: CatalogSnapshot
    settings: Settings
    http: aiohttp.ClientSession  # tools' HTTP calls
    providers: ProviderClient  # model calls
    log: EventLog
    query: dict[str, Any]
    owner: str | None = None
    new_chat: bool = False
    chat_name: str = ""
    context: list[dict[str, Any]] = field(default_factory=list)  # replayed history (OpenAI messages)
    messages: list[dict[str, Any]] = field(default_factory=list)  # this run's messages
    pending: dict[str, PendingCall] = field(default_factory=dict)
    latest_results: dict[str, Any] = field(default_factory=dict)  # tool name → latest result (§4.5)
    disclosed_skills: list[str] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    tool_calls: int = 0
    model_calls: int = 0
    timeout: RunDeadline | None = None
    recorder: RunRecorder | None = None
    interaction_log: InteractionLog | None = None
    plan: dict[str, Any] | None = None  # {"planId", "tasks": [...]}, the chat's plan
    finish_reason: str = "end_turn"
    started_at: float = field(default_factory=time.monotonic)
    waiting: int = 0  # calls currently waiting for a submit (run timeout paused while > 0)
    _remaining_s: float | None = None

    def release(self) -> None:
        """The run ended: drop what only the live run needed.

        A finished run stays resumable for a while (its frames, owner and calls are kept);
        its transcript, replayed context and recorder are stored by then and can go.
        """
        self.context = []
        self.messages = []
        self.latest_results = {}
        self.recorder = None
        self.timeout = None
        self.query = {}

    # ---- run timeout excluding submit waits (§11.5) ---------------------------------------

    def pause_timeout(self) -> None:
        self.waiting += 1
        if self.waiting == 1 and self.timeout is not None:
            when = self.timeout.when()
            if when is not None:
                self._remaining_s = max(0.0, when - asyncio.get_running_loop().time())
            self.timeout.reschedule(None)

    def resume_timeout(self) -> None:
        self.waiting = max(0, self.waiting - 1)
        if self.waiting == 0 and self.timeout is not None and self._remaining_s is not None:
            self.timeout.reschedule(asyncio.get_running_loop().time() + self._remaining_s)
            self._remaining_s = None

    # ---- budgets ------------------------------------------------------------------------

    def count_model_call(self) -> None:
        limit = self.agent.budget.model.max_calls
        if self.model_calls >= limit:
            raise RunAborted("budget_exceeded", f"model call budget exhausted: budget.model.maxCalls={limit}")
        self.model_calls += 1

    def count_tool_call(self) -> None:
        limit = self.agent.budget.tool.max_calls
        if self.tool_calls >= limit:
            raise RunAborted("budget_exceeded", f"tool call budget exhausted: budget.tool.maxCalls={limit}")
        self.tool_calls += 1

    def check_usage_budgets(self) -> None:
        budget = self.agent.budget
        total = self.usage.total_tokens
        if budget.max_tokens is not None and total > budget.max_tokens:
            raise RunAborted(
                "budget_exceeded",
                f"token budget exceeded: budget.maxTokens={budget.max_tokens}, used {total}",
            )
        if budget.max_points is not None and self.usage.points > budget.max_points:
            raise RunAborted(
                "budget_exceeded",
                f"points budget exceeded: budget.maxPoints={budget.max_points}, used {self.usage.points:.4f}",
            )
