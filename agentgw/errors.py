"""The error families of agentgw.

::

    AgentGwError
    ├── SettingsError        a setting is invalid; startup stops (names the dotted key)
    ├── DefinitionError      a definition file is wrong; raised at load time, never mid-stream
    ├── RequestError         an HTTP request is wrong; becomes the JSON envelope (status, msg)
    ├── ProviderError        a provider call failed (status, provider, model, body excerpt);
    │                        before the SSE response it is an envelope, after it a ``run.error``
    ├── ToolError            a tool failed; returned to the model as a tool result, never raised out
    └── RunAborted           the run must stop with ``run.error`` (budget, timeout) — carries the code
"""

from __future__ import annotations

from typing import Any


class AgentGwError(Exception):
    """Base of every error agentgw raises on purpose."""


class SettingsError(AgentGwError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid setting {key}: {reason}")
        self.key = key
        self.reason = reason


class DefinitionError(AgentGwError):
    """One problem of one definition file: ``file: field: reason``."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(f"{file}: {field}: {reason}")
        self.file = file
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "field": self.field, "reason": self.reason}


class RequestError(AgentGwError):
    """A bad HTTP request, answered with the envelope and this status."""

    def __init__(self, status: int, msg: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.data = data or {}


class ProviderError(AgentGwError):
    """A provider call failed. ``retriable`` marks transient failures (connect, 429, 5xx)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        body: str = "",
        retriable: bool = False,
    ) -> None:
        detail = message
        where = "/".join(p for p in (provider, model) if p)
        if where:
            detail = f"{where}: {detail}"
        if status is not None:
            detail = f"{detail} (HTTP {status})"
        if body:
            detail = f"{detail}: {body[:300]}"
        super().__init__(detail)
        self.code = code
        self.message = detail
        self.provider = provider
        self.model = model
        self.status = status
        self.body = body
        self.retriable = retriable


class ToolError(AgentGwError):
    """A tool failed; the engine turns it into ``{"tool", "ok": false, "code"?, "error"}`` (§11.7)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RunAborted(AgentGwError):
    """Ends a run with ``run.error``; ``code`` names the cause (``budget_exceeded``, ``run_timeout``…)."""

    def __init__(self, code: str, message: str, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable
