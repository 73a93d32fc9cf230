"""The LLM interaction log (SPEC §9).

When ``agent.llm.interaction-log.enabled`` is on and the ``agentgw.llm`` logger is at
DEBUG, every provider call logs its request (URL, headers, body) and then every delta —
reasoning and content text, tool-call names and argument fragments, usage, the finish
reason — with the call's trace id and stage.

Cost when off: :meth:`InteractionLog.open` checks the switch and
``logger.isEnabledFor(DEBUG)`` once per call and returns ``None``; the adapter then skips
logging with one ``is None`` test per delta.

Masking (``mask-sensitive``, default on) replaces the values of keys named like
authorization, api key, token, secret or password — in headers, in the JSON body at any
depth, and in URL query parameters. Credential headers (``Authorization``,
``x-api-key``…) are masked even when masking is switched off: a key must never reach a log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from agentgw.errors import ProviderError
from agentgw.providers.base import (
    ContentDelta,
    Finish,
    ModelCall,
    ProviderEvent,
    ReasoningDelta,
    ReasoningSignature,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from agentgw.settings import Settings

LOGGER_NAME = "agentgw.llm"
MASK = "***"

# Normalised (lower-case, no '-'/'_') key names whose values are secrets. Suffix matching
# catches access_token / client_secret / x-api-key while leaving max_tokens alone.
_SECRET_SUFFIXES = ("authorization", "apikey", "token", "secret", "password", "passwd", "credential")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxyauthorization", "xapikey", "apikey"})
_NORMALISE = re.compile(r"[-_\s]")


def _normal(key: str) -> str:
    return _NORMALISE.sub("", key.lower())


def is_sensitive_key(key: str) -> bool:
    """True for keys whose values must be masked (``Authorization``, ``apiKey``, ``x-api-key``…)."""
    return _normal(key).endswith(_SECRET_SUFFIXES)


def mask_value(value: Any) -> Any:
    """Mask every sensitive key of a JSON-like value, at any depth (a new value is returned)."""
    if isinstance(value, Mapping):
        return {k: (MASK if is_sensitive_key(str(k)) else mask_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def mask_url(url: str) -> str:
    """Mask sensitive query parameters (``?key=…`` style credentials)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, MASK if is_sensitive_key(k) or _normal(k) == "key" else v) for k, v in parse_qsl(parts.query)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def mask_headers(headers: Mapping[str, str], mask_all: bool) -> dict[str, str]:
    """Credential headers are always masked; other sensitive-looking ones when ``mask_all``."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        norm = _normal(key)
        secret = norm in _CREDENTIAL_HEADERS or (mask_all and is_sensitive_key(key))
        out[key] = MASK if secret else value
    return out


class InteractionLog:
    """Factory of per-call loggers; one instance per application (built from settings)."""

    def __init__(
        self, *, enabled: bool = True, mask_sensitive: bool = True, logger: logging.Logger | None = None
    ) -> None:
        self.enabled = enabled
        self.mask_sensitive = mask_sensitive
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    @classmethod
    def from_settings(cls, settings: Settings) -> InteractionLog:
        """Built from ``agent.llm.interaction-log.enabled`` / ``mask-sensitive``."""
        cfg = settings.agent.llm.interaction_log
        return cls(enabled=cfg.enabled, mask_sensitive=cfg.mask_sensitive)

    def open(
        self, call: ModelCall, url: str, headers: Mapping[str, str], body: Mapping[str, Any]
    ) -> CallLog | None:
        """Log the request and return the call's delta logger, or ``None`` when logging is off."""
        if not self.enabled or not self.logger.isEnabledFor(logging.DEBUG):
            return None
        clog = CallLog(self.logger, call)
        shown_body = mask_value(body) if self.mask_sensitive else body
        shown_url = mask_url(url) if self.mask_sensitive else url
        self.logger.debug(
            "llm.request trace=%s stage=%s provider=%s model=%s protocol=%s url=%s headers=%s body=%s",
            call.trace,
            call.stage,
            call.provider_key,
            call.model_id,
            call.protocol,
            shown_url,
            orjson.dumps(mask_headers(headers, self.mask_sensitive)).decode(),
            orjson.dumps(shown_body, default=str).decode(),
        )
        return clog


class CallLog:
    """Logs the deltas of one provider call (only exists while DEBUG logging is on)."""

    __slots__ = ("_logger", "_stage", "_trace")

    def __init__(self, logger: logging.Logger, call: ModelCall) -> None:
        self._logger = logger
        self._trace = call.trace
        self._stage = call.stage

    def event(self, event: ProviderEvent) -> None:
        """Log one provider event as it is yielded."""
        log = self._logger.debug
        match event:
            case ReasoningDelta(text=text):
                log("llm.delta trace=%s stage=%s reasoning=%r", self._trace, self._stage, text)
            case ContentDelta(text=text):
                log("llm.delta trace=%s stage=%s content=%r", self._trace, self._stage, text)
            case ToolCallDelta(index=index, id=call_id, name=name, arguments=args):
                log(
                    "llm.delta trace=%s stage=%s tool_call index=%d id=%s name=%s arguments=%r",
                    self._trace,
                    self._stage,
                    index,
                    call_id,
                    name,
                    args,
                )
            case ReasoningSignature():
                log("llm.delta trace=%s stage=%s reasoning_signature=<opaque>", self._trace, self._stage)
            case Usage():
                log(
                    "llm.usage trace=%s stage=%s input=%d output=%d reasoning=%d cached=%d",
                    self._trace,
                    self._stage,
                    event.input_tokens,
                    event.output_tokens,
                    event.reasoning_tokens,
                    event.cached_tokens,
                )
            case Finish(reason=reason, raw_reason=raw):
                log(
                    "llm.finish trace=%s stage=%s finish_reason=%s raw=%s",
                    self._trace,
                    self._stage,
                    reason,
                    raw,
                )

    def error(self, exc: ProviderError) -> None:
        """The call failed (logged at debug; the engine reports the failure itself)."""
        self._logger.debug(
            "llm.error trace=%s stage=%s code=%s message=%s", self._trace, self._stage, exc.code, exc.message
        )

    def closed(self, reason: str) -> None:
        """The consumer stopped reading (cancel / generator closed) before the stream ended."""
        self._logger.debug("llm.closed trace=%s stage=%s reason=%s", self._trace, self._stage, reason)
