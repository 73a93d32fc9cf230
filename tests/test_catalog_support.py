"""Helpers shared by the catalog tests: real catalog folders in a temp directory.

(No tests here; the name keeps the file within the catalog's ``tests/test_catalog_*`` set.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentgw.catalog.registry import Catalog
from agentgw.catalog.snapshot import CatalogSnapshot
from agentgw.settings import Settings, load_settings

FOLDERS = ("agents", "models", "tools", "skills", "viewports", "prompts")

WEATHER_TOOL = {
    "type": "function",
    "name": "mock_city_weather",
    "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "date": {"type": "string"}}},
    "afterCallHint": "Mention the mock tag.",
}
DATETIME_TOOL = {
    "type": "function",
    "name": "city_datetime",
    "description": "Date and time of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class Workspace:
    """A throwaway set of catalog folders plus the settings that point at them."""

    def __init__(self, root: Path, providers: tuple[str, ...] = ("p1",)) -> None:
        self.root = root
        self.dirs = {name: root / name for name in FOLDERS}
        for folder in self.dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        self.providers = providers
        self.settings = self.make_settings()

    def make_settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "agent.catalog.external-dir": str(self.dirs["agents"]),
            "agent.model.external-dir": str(self.dirs["models"]),
            "agent.capability.tools-external-dir": str(self.dirs["tools"]),
            "agent.skill.external-dir": str(self.dirs["skills"]),
            "agent.viewport.external-dir": str(self.dirs["viewports"]),
            "agent.prompts.external-dir": str(self.dirs["prompts"]),
            "agent.providers": {name: {"base-url": "http://127.0.0.1:9/v1"} for name in self.providers},
        }
        base.update(overrides)
        return load_settings(files=(), environ={}, overrides=base)

    def write(self, relative: str, content: str | bytes | dict[str, Any]) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            content = json.dumps(content, ensure_ascii=False, indent=2)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def model(self, key: str, provider: str = "p1", **fields: Any) -> Path:
        doc = {"key": key, "provider": provider, "protocol": "OPENAI", "modelId": f"{key}-id", **fields}
        return self.write(f"models/{key}.json", doc)

    def tools(self, filename: str, *tools: dict[str, Any]) -> Path:
        return self.write(f"tools/{filename}", {"tools": list(tools)})

    def skill(self, skill_id: str, text: str) -> Path:
        return self.write(f"skills/{skill_id}/SKILL.md", text)

    def agent(self, key: str, doc: dict[str, Any] | str, suffix: str = ".json") -> Path:
        return self.write(f"agents/{key}{suffix}", doc)

    def standard(self) -> Workspace:
        """Two models and the weather tools: enough for most agent tests."""
        self.model("m1")
        self.model("m2")
        self.tools("weather.backend", WEATHER_TOOL, DATETIME_TOOL)
        return self

    def catalog(self) -> Catalog:
        return Catalog(self.settings, install_builtins=False)

    def load(self) -> CatalogSnapshot:
        return self.catalog().load()


def react_agent(**fields: Any) -> dict[str, Any]:
    """A valid REACT agent document, with ``fields`` merged on top."""
    doc: dict[str, Any] = {
        "mode": "REACT",
        "modelConfig": {"modelKey": "m1"},
        "react": {"systemPrompt": "You are helpful."},
    }
    doc.update(fields)
    return doc


def plan_agent(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "mode": "PLAN_EXECUTE",
        "modelConfig": {"modelKey": "m1"},
        "planExecute": {"plan": {"systemPrompt": "Plan."}, "execute": {"systemPrompt": "Execute."}},
    }
    doc.update(fields)
    return doc


def errors_of(snapshot: CatalogSnapshot, file_part: str) -> list[tuple[str, str]]:
    """(field, reason) of every error whose file contains ``file_part``."""
    return [(e.field, e.reason) for e in snapshot.errors if file_part in e.file]
