"""Hot reload through the watcher: live edits, last good version, deletes, model changes (SPEC §3, §10.8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agentgw.catalog.registry import Catalog
from agentgw.catalog.snapshot import CatalogSnapshot
from tests.test_catalog_support import Workspace, react_agent

# The periodic rescan is pushed far out so only the watcher can deliver a change.
NO_RESCAN = {
    f"agent.{section}.refresh-interval-ms": 600_000
    for section in ("catalog", "model", "viewport", "capability", "skill")
}
# Generous: the watcher reacts in well under a second, but CI machines stall at times.
WAIT_S = 10.0


async def wait_until(catalog: Catalog, predicate: Callable[[CatalogSnapshot], bool]) -> CatalogSnapshot:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not predicate(snapshot := catalog.snapshot()):
        if loop.time() > deadline:
            raise AssertionError(f"catalog did not reach the expected state; version {snapshot.version}")
        await asyncio.sleep(0.02)
    return snapshot


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path).standard()
    ws.settings = ws.make_settings(**NO_RESCAN)
    return ws


@pytest.fixture
async def live(ws: Workspace) -> AsyncIterator[Catalog]:
    ws.agent("a", react_agent(description="v1"))
    catalog = Catalog(ws.settings, install_builtins=False)
    await catalog.start()
    try:
        yield catalog
    finally:
        await catalog.stop()


async def test_an_edit_is_picked_up_by_the_watcher(ws: Workspace, live: Catalog) -> None:
    first = live.snapshot()
    assert first.agents["a"].description == "v1"
    ws.agent("a", react_agent(description="v2"))
    snap = await wait_until(live, lambda s: s.agents["a"].description == "v2")
    assert snap.version > first.version
    assert snap.agents["a"].version != first.agents["a"].version
    # A run holding the old snapshot keeps the definition it started with.
    assert first.agents["a"].description == "v1"


async def test_an_invalid_edit_keeps_the_last_good_version_serving(ws: Workspace, live: Catalog) -> None:
    good = live.snapshot().agents["a"]
    ws.agent("a", '{"mode": "REACT", "react": {"systemPrompt": "x"')  # truncated mid-save
    snap = await wait_until(live, lambda s: s.statuses["a"].status == "error")
    assert snap.agents["a"] is good
    assert snap.statuses["a"].agent is good
    assert any("agents/a.json" in error for error in snap.statuses["a"].errors)
    assert [e.file for e in snap.errors] == ["agents/a.json"]

    ws.agent("a", react_agent(description="fixed"))
    snap = await wait_until(live, lambda s: s.statuses["a"].status == "ok")
    assert snap.agents["a"].description == "fixed"
    assert snap.errors == ()


async def test_a_deleted_file_disappears(ws: Workspace, live: Catalog) -> None:
    ws.agent("b", react_agent())
    await wait_until(live, lambda s: "b" in s.agents)
    (ws.dirs["agents"] / "a.json").unlink()
    snap = await wait_until(live, lambda s: "a" not in s.agents)
    assert "a" not in snap.statuses
    assert list(snap.agents) == ["b"]


async def test_a_model_change_re_resolves_the_agents_using_it(ws: Workspace, live: Catalog) -> None:
    assert live.snapshot().agents["a"].stages["react"].model.model.model_id == "m1-id"
    ws.model("m1", modelId="m1-renamed", echoReasoning=True)
    snap = await wait_until(
        live, lambda s: s.agents["a"].stages["react"].model.model.model_id == "m1-renamed"
    )
    assert snap.agents["a"].stages["react"].model.model.echo_reasoning is True
    (ws.dirs["models"] / "m1.json").unlink()
    snap = await wait_until(live, lambda s: s.statuses["a"].status == "error")
    assert "unknown model `m1`" in snap.statuses["a"].errors[0]
    assert snap.agents["a"].stages["react"].model.model.model_id == "m1-renamed"  # last good keeps serving


async def test_tools_skills_and_prompts_reload_too(ws: Workspace, live: Catalog) -> None:
    ws.skill("fresh", "---\ndescription: New skill\n---\nBody")
    ws.write("prompts/toolAppendix.toolDescriptionTitle.md", "Tools:\n")
    ws.tools("extra.action", {"type": "function", "name": "switch_theme", "description": "Theme."})
    snap = await wait_until(
        live,
        lambda s: (
            "fresh" in s.skills and "switch_theme" in s.tools and s.prompts.tool_description_title == "Tools:"
        ),
    )
    assert snap.agents["a"].runtime_prompts.tool_description_title == "Tools:"


async def test_on_change_callbacks_get_each_new_snapshot(ws: Workspace, live: Catalog) -> None:
    seen: list[int] = []
    live.on_change(lambda snap: seen.append(snap.version))
    ws.agent("c", react_agent())
    snap = await wait_until(live, lambda s: "c" in s.agents)
    assert seen and seen[-1] == snap.version


async def test_refresh_reports_whether_anything_changed(ws: Workspace) -> None:
    ws.agent("a", react_agent())
    catalog = Catalog(ws.settings, install_builtins=False)
    catalog.load()
    assert catalog.loaded
    assert await catalog.refresh() is False
    ws.agent("a", react_agent(description="changed"))
    assert await catalog.refresh() is True
    assert catalog.snapshot().agents["a"].description == "changed"


async def test_start_and_stop_are_safe_to_repeat(ws: Workspace) -> None:
    catalog = Catalog(ws.settings, install_builtins=False)
    await catalog.start()
    await catalog.start()
    await catalog.stop()
    await catalog.stop()
    assert catalog.loaded
