"""Viewports: what a frontend tool renders (SPEC §3.5).

``.html`` files are served as ``{"html": …}``; ``.qlc``, ``.dqlc``, ``.json_schema`` and
``.custom`` files are JSON objects served as they are. Content is parsed at load time, so
a broken viewport is reported to the author instead of failing in the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgw.catalog import jsonc
from agentgw.catalog.files import SYNTAX_FIELD
from agentgw.catalog.types import ViewportDef
from agentgw.errors import DefinitionError

VIEWPORT_SUFFIXES = (".html", ".qlc", ".dqlc", ".json_schema", ".custom")


def parse_viewport(path: Path, text: str, file: str, version: str) -> ViewportDef | DefinitionError:
    """A viewport file into a :class:`ViewportDef`; the key is the base name, the type the suffix."""
    kind = path.suffix.lower().lstrip(".")
    if kind == "html":
        return ViewportDef(key=path.stem, type="html", path=path, version=version, html=text)
    try:
        data: Any = jsonc.loads(text)
    except jsonc.JsoncError as exc:
        return DefinitionError(file, SYNTAX_FIELD, str(exc))
    if not isinstance(data, dict):
        return DefinitionError(file, "(root)", f"a .{kind} viewport must be a JSON object")
    return ViewportDef(key=path.stem, type=kind, path=path, version=version, data=data)


def viewport_payload(viewport: ViewportDef) -> dict[str, Any]:
    """The ``data`` of ``GET /api/ap/viewport``."""
    if viewport.type == "html":
        return {"html": viewport.html or ""}
    return dict(viewport.data or {})
