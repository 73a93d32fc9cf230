"""The LLM interaction log (SPEC §9): deltas with trace and stage, masking, zero cost when off."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from agentgw.providers import scripted as s
from agentgw.providers import stream_call
from agentgw.providers.base import ModelCall, Protocol
from agentgw.providers.log import MASK, InteractionLog, is_sensitive_key, mask_headers, mask_url, mask_value
from agentgw.providers.wire import ProviderClient
from agentgw.settings import load_settings

SECRET = "sk-very-secret-0123456789"


@pytest.fixture
async def server() -> AsyncIterator[s.ScriptedProvider]:
    async with s.ScriptedProvider(demo_delay_s=0) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    async with ProviderClient() as c:
        yield c


def make_call(base_url: str, protocol: Protocol = "OPENAI") -> ModelCall:
    return ModelCall(
        protocol=protocol,
        provider_key="acme",
        base_url=base_url,
        api_key=SECRET,
        model_id="acme-1",
        messages=[{"role": "user", "content": "weather?"}],
        trace="run-42",
        stage="react",
    )


SCRIPT: list[s.Step] = [
    s.Reasoning("think", chunks=1),
    s.Text("Sure", chunks=1),
    s.ToolCall("mock_city_weather", '{"city":"Paris"}', id="call_9", fragments=2),
    s.Usage(10, 5),
]


@pytest.mark.parametrize("protocol", ["OPENAI", "ANTHROPIC"])
async def test_debug_log_has_request_and_every_delta(server, client, caplog, protocol) -> None:
    caplog.set_level(logging.DEBUG, logger="agentgw.llm")
    server.enqueue(SCRIPT)
    log = InteractionLog()
    events = [e async for e in stream_call(client, make_call(server.base_url, protocol), log=log)]
    lines = [r.getMessage() for r in caplog.records if r.name == "agentgw.llm"]
    text = "\n".join(lines)
    assert SECRET not in text
    request = lines[0]
    assert request.startswith("llm.request trace=run-42 stage=react provider=acme model=acme-1")
    assert server.base_url in request
    assert '"***"' in request  # the credential header is shown masked
    deltas = [line for line in lines if line.startswith("llm.delta")]
    assert all("trace=run-42 stage=react" in line for line in deltas)
    assert "reasoning='think'" in text
    assert "content='Sure'" in text
    assert "name=mock_city_weather" in text and "id=call_9" in text
    assert 'arguments=\'{"city"' in text
    assert "llm.usage trace=run-42 stage=react input=10 output=5" in text
    assert "finish_reason=tool_calls" in text
    # one log line per event, in addition to the request line
    assert len(lines) == 1 + len(events)


async def test_errors_and_early_stops_are_logged(server, client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="agentgw.llm")
    server.enqueue([s.HttpError(429, {"error": {"message": "slow down"}})])
    with pytest.raises(Exception, match="slow down"):
        async for _ in stream_call(client, make_call(server.base_url), log=InteractionLog()):
            pass
    assert any(
        "llm.error" in r.getMessage() and "provider_http_error" in r.getMessage() for r in caplog.records
    )
    server.enqueue([s.Text("a"), s.Hang()])
    gen = stream_call(client, make_call(server.base_url), log=InteractionLog())
    await anext(gen)
    await gen.aclose()
    assert any(r.getMessage().startswith("llm.closed trace=run-42") for r in caplog.records)


async def test_nothing_logged_when_not_debug_or_disabled(server, client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="agentgw.llm")
    log = InteractionLog()
    assert log.open(make_call(server.base_url), "http://x", {}, {}) is None
    server.enqueue([s.Text("hi")])
    [e async for e in stream_call(client, make_call(server.base_url), log=log)]
    caplog.set_level(logging.DEBUG, logger="agentgw.llm")
    off = InteractionLog(enabled=False)
    assert off.open(make_call(server.base_url), "http://x", {}, {}) is None
    server.enqueue([s.Text("hi")])
    [e async for e in stream_call(client, make_call(server.base_url), log=off)]
    assert [r for r in caplog.records if r.name == "agentgw.llm"] == []


def test_from_settings_reads_both_switches() -> None:
    settings = load_settings(
        environ={
            "AGENT_LLM_INTERACTION_LOG_ENABLED": "false",
            "AGENT_LLM_INTERACTION_LOG_MASK_SENSITIVE": "false",
        }
    )
    log = InteractionLog.from_settings(settings)
    assert log.enabled is False and log.mask_sensitive is False
    default = InteractionLog.from_settings(load_settings())
    assert default.enabled is True and default.mask_sensitive is True


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "apiKey",
        "api_key",
        "api-key",
        "x-api-key",
        "token",
        "access_token",
        "refreshToken",
        "secret",
        "client_secret",
        "password",
        "PASSWORD",
        "db-passwd",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["max_tokens", "budget_tokens", "model", "content", "tokenizer", "messages"])
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)


def test_mask_value_at_any_depth() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "apiKey": SECRET,
        "extra": {"nested": [{"password": "hunter2", "keep": 1}], "client_secret": "cs"},
        "messages": [{"role": "user", "content": "my token is visible as content"}],
    }
    masked = mask_value(body)
    assert masked == {
        "model": "m",
        "max_tokens": 10,
        "apiKey": MASK,
        "extra": {"nested": [{"password": MASK, "keep": 1}], "client_secret": MASK},
        "messages": [{"role": "user", "content": "my token is visible as content"}],
    }
    assert body["apiKey"] == SECRET  # the request itself is untouched


def test_mask_url_and_headers() -> None:
    url = mask_url("https://gen.example.com/v1beta/models?key=AIzaSECRET&alt=sse&api_key=x")
    assert "AIzaSECRET" not in url and "alt=sse" in url and url.count("***") == 2
    assert mask_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    headers = {
        "Authorization": "Bearer " + SECRET,
        "x-api-key": SECRET,
        "X-Session-Token": "t",
        "Accept": "a",
    }
    assert mask_headers(headers, mask_all=True) == {
        "Authorization": MASK,
        "x-api-key": MASK,
        "X-Session-Token": MASK,
        "Accept": "a",
    }
    # credentials stay hidden even with masking switched off
    assert mask_headers(headers, mask_all=False) == {
        "Authorization": MASK,
        "x-api-key": MASK,
        "X-Session-Token": "t",
        "Accept": "a",
    }


async def test_mask_switch_off_shows_body_but_never_the_key(server, client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="agentgw.llm")
    server.enqueue([s.Text("x")])
    call = make_call(server.base_url)
    call.messages = [{"role": "user", "content": "hi", "password": "shown-when-unmasked"}]
    [e async for e in stream_call(client, call, log=InteractionLog(mask_sensitive=False))]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "shown-when-unmasked" in text
    assert SECRET not in text
