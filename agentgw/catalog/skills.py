"""Skills: ``skills/<skill-id>/SKILL.md`` with optional front matter (SPEC §3.4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from agentgw.catalog.files import FILE_FIELD, key_problem
from agentgw.catalog.types import SkillDef
from agentgw.errors import DefinitionError

SKILL_FILE = "SKILL.md"


def truncation_suffix(limit: int) -> str:
    """The marker that ends a SKILL.md body cut at ``limit`` characters (SPEC §3.4)."""
    return f"\n\n[TRUNCATED: skill prompt exceeds maxPromptChars={limit}]"


def cut_instructions(body: str, limit: int) -> str:
    """The body as the model sees it: cut at ``limit`` characters with a visible marker."""
    if len(body) <= limit:
        return body
    return body[:limit] + truncation_suffix(limit)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """``---\\n<yaml>\\n---\\n<body>`` → (yaml text, body); no front matter → (None, text)."""
    text = text.replace("\r\n", "\n")
    if not text.startswith("---\n"):
        return None, text
    end = text.find("\n---", 3)
    if end < 0:
        return None, text
    after = text.find("\n", end + 4)
    body = "" if after < 0 else text[after + 1 :]
    return text[4:end], body


def parse_skill(
    skill_id: str, text: str, file: str, folder: Path, version: str, limit: int
) -> SkillDef | DefinitionError:
    """A SKILL.md text into a :class:`SkillDef`, or the error that keeps it out."""
    meta_text, body = split_front_matter(text)
    meta: dict[str, Any] = {}
    if meta_text is not None:
        try:
            loaded = yaml.safe_load(meta_text)
        except yaml.YAMLError as exc:
            return DefinitionError(file, "(front matter)", f"invalid YAML front matter: {exc}")
        if loaded is not None and not isinstance(loaded, dict):
            return DefinitionError(
                file, "(front matter)", "front matter must be a mapping (name:, description:)"
            )
        meta = loaded or {}
    name = meta.get("name", skill_id)
    description = meta.get("description", "")
    for field, value in (("name", name), ("description", description)):
        if not isinstance(value, str | int | float):
            return DefinitionError(file, field, "must be a string")
    return SkillDef(
        id=skill_id,
        name=str(name).strip() or skill_id,
        description=" ".join(str(description).split()),
        instructions=cut_instructions(body.strip(), limit),
        path=folder,
        version=version,
    )


def iter_skill_folders(root: Path) -> Iterator[tuple[Path, DefinitionError | None, bool]]:
    """Skill folders of ``root`` sorted by name, as ``(folder, problem, is_warning)``.

    A stray file directly under ``root`` is a warning naming the expected layout; a folder
    whose name cannot be a skill id is an error.
    """
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError:
        return
    for path in entries:
        if path.name.startswith((".", "_")):
            continue  # hidden folders, __pycache__
        try:
            is_dir = path.is_dir()
        except OSError:
            continue
        if not is_dir:
            expected = f"{root.name}/{path.stem.lower() or 'skill-id'}/{SKILL_FILE}"
            reason = f"ignored: a skill lives in its own folder, expected {expected}"
            yield path, DefinitionError(f"{root.name}/{path.name}", FILE_FIELD, reason), True
            continue
        problem = key_problem(path.name)
        if problem:
            yield path, DefinitionError(f"{root.name}/{path.name}", "(skill id)", problem), False
            continue
        yield path, None, False
