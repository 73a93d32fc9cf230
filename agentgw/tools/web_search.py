"""``web_search {query, numResults?}``: Exa search through exa-py (SPEC §6).

Answers ``{"ok": true, "results": [{title, url, snippet, publishedDate?, author?}]}``
and emits one ``source.snapshot`` per result. Every failure of the search itself
(no key, disabled, HTTP error, timeout) is a normal answer
``{"ok": false, "error": {"code", "message"}}`` so frontends read one shape; only
malformed arguments are tool errors. exa-py is synchronous (requests), so it runs in a
worker thread under a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from agentgw.tools._args import opt_int, req_str
from agentgw.tools.base import ToolContext

DEFAULT_RESULTS = 5
MAX_RESULTS = 25
SNIPPET_CHARS = 500
_DEFAULT_TIMEOUT_S = 30.0


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def _search_sync(api_key: str, base_url: str, query: str, num_results: int, timeout_s: float) -> Any:
    from exa_py import Exa  # imported lazily: it pulls in requests and friends

    client = Exa(api_key=api_key, base_url=base_url) if base_url else Exa(api_key=api_key)
    return client.search(
        query,
        num_results=num_results,
        contents={"text": {"max_characters": SNIPPET_CHARS * 2}},
        timeout=timeout_s,
    )


def _source_id(url: str, fallback: str) -> str:
    return "src_" + hashlib.sha256((url or fallback).encode()).hexdigest()[:12]


async def web_search(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Search the web with Exa; see the module docstring."""
    query = req_str(args, "query", max_len=2000)
    num_results = opt_int(args, "numResults", default=DEFAULT_RESULTS, minimum=1, maximum=MAX_RESULTS)
    cfg = ctx.settings.agent.web_search
    if not cfg.enabled:
        return _failure("web_search_disabled", "web search is disabled (agent.web-search.enabled=false)")
    api_key = cfg.exa.api_key.strip()
    if not api_key:
        return _failure(
            "missing_api_key", "no Exa API key configured (agent.web-search.exa.api-key or EXA_API_KEY)"
        )
    timeout_s = min(ctx.timeout_s, _DEFAULT_TIMEOUT_S)
    try:
        response = await asyncio.wait_for(
            asyncio.to_thread(
                _search_sync,
                api_key,
                cfg.exa.base_url.rstrip("/"),
                query,
                num_results or DEFAULT_RESULTS,
                timeout_s,
            ),
            # exa-py's own timeout bounds each network wait; this bounds the whole call.
            timeout=timeout_s + 5,
        )
    except TimeoutError:
        return _failure("search_timeout", f"Exa search timed out after {timeout_s:g} s")
    except Exception as exc:  # exa-py raises ValueError, requests errors and its own types
        message = str(exc).replace(api_key, "***")[:500]
        return _failure("search_failed", f"Exa search failed: {type(exc).__name__}: {message}")
    results: list[dict[str, Any]] = []
    for index, item in enumerate(getattr(response, "results", None) or []):
        url = getattr(item, "url", None) or ""
        title = getattr(item, "title", None) or url
        text = (getattr(item, "text", None) or getattr(item, "summary", None) or "").strip()
        entry: dict[str, Any] = {"title": title, "url": url, "snippet": text[:SNIPPET_CHARS]}
        for attr, key in (("published_date", "publishedDate"), ("author", "author")):
            value = getattr(item, attr, None)
            if value:
                entry[key] = value
        results.append(entry)
        if ctx.emit is not None:
            snapshot: dict[str, Any] = {
                "sourceId": _source_id(url, f"{ctx.tool_call_id}:{index}"),
                "title": title,
                "url": url,
            }
            icon = getattr(item, "favicon", None)
            if icon:
                snapshot["icon"] = icon
            ctx.emit("source.snapshot", snapshot)
    return {"ok": True, "query": query, "results": results}
