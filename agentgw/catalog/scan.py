"""One pass over every catalog folder, re-parsing only files whose content changed.

:class:`Scanner` keeps per-file caches (by stat stamp, then by content hash) and the last
good version of every agent file. :meth:`Scanner.scan` returns a new
:class:`CatalogSnapshot`, or ``None`` when no file changed since the previous scan.
Nothing in here raises on bad files: each problem becomes a :class:`DefinitionError`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from agentgw.catalog.agents import AGENT_SUFFIXES, ParsedAgent, ResolveContext, parse_agent, resolve_agent
from agentgw.catalog.capabilities import (
    CAPABILITY_SUFFIXES,
    ParsedCapabilityFile,
    build_tools,
    parse_capability,
)
from agentgw.catalog.files import (
    DEFINITION_MAX_BYTES,
    FILE_FIELD,
    VIEWPORT_MAX_BYTES,
    FileStamp,
    check_inside,
    content_version,
    decode_text,
    display_path,
    iter_files,
    key_problem,
    parse_document,
    read_bytes,
    stamp_of,
)
from agentgw.catalog.models import parse_model
from agentgw.catalog.prompts import PROMPT_SUFFIXES, normalize_prompt_text, prompts_from_files
from agentgw.catalog.skills import SKILL_FILE, iter_skill_folders, parse_skill
from agentgw.catalog.snapshot import CatalogSnapshot
from agentgw.catalog.types import Agent, AgentStatus, ModelDef, RuntimePrompts, SkillDef, ViewportDef
from agentgw.catalog.viewports import VIEWPORT_SUFFIXES, parse_viewport
from agentgw.errors import DefinitionError
from agentgw.settings import Settings, resolve_dir

logger = logging.getLogger(__name__)

T = TypeVar("T")
Parser = Callable[[str, str, Path, str], Any]  # (text, version, path, display name) → result


@dataclass(frozen=True, slots=True)
class CatalogDirs:
    """The folders of SPEC §1, resolved against the working directory."""

    agents: Path
    models: Path
    tools: Path
    skills: Path
    viewports: Path
    prompts: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogDirs:
        agent = settings.agent
        return cls(
            agents=resolve_dir(agent.catalog.external_dir),
            models=resolve_dir(agent.model.external_dir),
            tools=resolve_dir(agent.capability.tools_external_dir),
            skills=resolve_dir(agent.skill.external_dir),
            viewports=resolve_dir(agent.viewport.external_dir),
            prompts=resolve_dir(agent.prompts.external_dir),
        )

    def all(self) -> tuple[Path, ...]:
        return (self.agents, self.models, self.tools, self.skills, self.viewports, self.prompts)


@dataclass(slots=True)
class _Cached:
    stamp: FileStamp | None
    version: str
    result: Any


# --- per-file parsers (pure functions of the text; their results are cached) ---------------


def _agent_file(text: str, version: str, path: Path, name: str) -> ParsedAgent:
    doc, error = parse_document(text, name, yaml_syntax=path.suffix.lower() in (".yaml", ".yml"))
    if error is not None:
        return ParsedAgent(name, path.stem, version, None, None, (error,))
    return parse_agent(doc, name, path.stem, version)


def _model_file(text: str, version: str, path: Path, name: str) -> Any:
    doc, error = parse_document(text, name, yaml_syntax=False)
    if error is not None:
        return error
    return parse_model(doc, name, Path(path.name).stem, version)


def _capability_file(text: str, version: str, path: Path, name: str) -> Any:
    doc, error = parse_document(text, name, yaml_syntax=False)
    return error if error is not None else parse_capability(doc, name, path, version)


def _viewport_file(text: str, version: str, path: Path, name: str) -> Any:
    return parse_viewport(path, text, name, version)


def _prompt_file(text: str, version: str, path: Path, name: str) -> str:
    return normalize_prompt_text(text)


def _skill_file(text: str, version: str, path: Path, name: str, *, limit: int) -> Any:
    folder = path.parent
    return parse_skill(folder.name.lower(), text, name, folder, version, limit)


class Scanner:
    """Caches and last-good state across scans of one set of folders (not thread-safe: one scan at a time)."""

    def __init__(self, settings: Settings, *, overlay_models: Mapping[str, bytes] | None = None) -> None:
        self.dirs = CatalogDirs.from_settings(settings)
        self.providers = frozenset(settings.agent.providers)
        self.max_prompt_chars = settings.agent.skill.max_prompt_chars
        self._overlay_models = dict(overlay_models or {})
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._resolved: dict[str, tuple[str, str, Agent | None, list[DefinitionError]]] = {}
        self._last_good: dict[str, Agent] = {}
        self._versions: dict[tuple[str, str], str] = {}
        self._fingerprint: str | None = None
        self._generation = 0

    # --- file access ------------------------------------------------------------------------

    def _read(self, kind: str, path: Path, root: Path, limit: int, parse: Parser) -> Any:
        """The parse result of ``path`` (or its DefinitionError), from cache when unchanged."""
        name = display_path(path, root)
        ck = (kind, str(path))
        try:
            stamp: FileStamp | None = stamp_of(path.stat())
        except OSError:
            stamp = None
        hit = self._cache.get(ck)
        if hit is not None and stamp is not None and hit.stamp == stamp:
            self._versions[ck] = hit.version
            return hit.result
        result: Any
        data, error, _ = read_bytes(path, root, limit)
        if data is None:
            result = error or DefinitionError(name, FILE_FIELD, "cannot read file")
            version = "!" + hashlib.sha256(str(result).encode()).hexdigest()[:12]
        else:
            version = content_version(data)
            if hit is not None and hit.version == version:
                result = hit.result  # touched, not changed
            else:
                text, error = decode_text(data, name)
                result = error if text is None else parse(text, version, path, name)
        self._cache[ck] = _Cached(stamp, version, result)
        self._versions[ck] = version
        return result

    def _read_overlay(self, name: str, data: bytes, root: Path) -> Any:
        ck = ("model-overlay", name)
        version = content_version(data)
        hit = self._cache.get(ck)
        if hit is None or hit.version != version:
            display = f"{root.name}/{name}"
            text, error = decode_text(data, display)
            result = error if text is None else _model_file(text, version, root / name, display)
            hit = _Cached(None, version, result)
            self._cache[ck] = hit
        self._versions[ck] = version
        return hit.result

    # --- folders ----------------------------------------------------------------------------

    def _prompts(self, errors: list[DefinitionError]) -> RuntimePrompts:
        texts: dict[str, str] = {}
        root = self.dirs.prompts
        for path in iter_files(root, PROMPT_SUFFIXES):
            if path.stem.lower() == "readme" or path.stem in texts:
                continue
            result = self._read("prompt", path, root, DEFINITION_MAX_BYTES, _prompt_file)
            if isinstance(result, DefinitionError):
                errors.append(result)
            else:
                texts[path.stem] = result
        return prompts_from_files(texts)

    def _viewports(self, errors: list[DefinitionError]) -> dict[str, ViewportDef]:
        out: dict[str, ViewportDef] = {}
        root = self.dirs.viewports
        for path in iter_files(root, VIEWPORT_SUFFIXES):
            name = display_path(path, root)
            problem = key_problem(path.stem)
            if problem:
                errors.append(DefinitionError(name, "(key)", problem))
                continue
            result = self._read("viewport", path, root, VIEWPORT_MAX_BYTES, _viewport_file)
            if isinstance(result, DefinitionError):
                errors.append(result)
            elif result.key in out:
                first = display_path(out[result.key].path, root)
                reason = f"viewport key `{result.key}` is already defined by {first}; this file is skipped"
                errors.append(DefinitionError(name, "(key)", reason))
            else:
                out[result.key] = result
        return out

    def _capabilities(self, errors: list[DefinitionError]) -> list[ParsedCapabilityFile]:
        out: list[ParsedCapabilityFile] = []
        root = self.dirs.tools
        for path in iter_files(root, tuple(CAPABILITY_SUFFIXES)):
            result = self._read("tool", path, root, DEFINITION_MAX_BYTES, _capability_file)
            if isinstance(result, DefinitionError):
                errors.append(result)
            else:
                errors.extend(result.errors)
                out.append(result)
        return out

    def _skills(self, errors: list[DefinitionError], warnings: list[DefinitionError]) -> dict[str, SkillDef]:
        out: dict[str, SkillDef] = {}
        root = self.dirs.skills
        parse = partial(_skill_file, limit=self.max_prompt_chars)
        for folder, problem, is_warning in iter_skill_folders(root):
            if problem is not None:
                (warnings if is_warning else errors).append(problem)
                continue
            skill_md = folder / SKILL_FILE
            name = display_path(skill_md, root)
            outside = check_inside(folder, root)
            if outside:
                errors.append(DefinitionError(display_path(folder, root), FILE_FIELD, outside))
                continue
            if not skill_md.is_file():
                errors.append(
                    DefinitionError(name, FILE_FIELD, "missing: every skill folder needs a SKILL.md")
                )
                continue
            result = self._read("skill", skill_md, root, DEFINITION_MAX_BYTES, parse)
            if isinstance(result, DefinitionError):
                errors.append(result)
            elif result.id in out:
                reason = (
                    f"skill id `{result.id}` is already taken by {display_path(out[result.id].path, root)}"
                )
                errors.append(DefinitionError(name, "(skill id)", reason))
            else:
                out[result.id] = result
        return out

    def _models(
        self, errors: list[DefinitionError], warnings: list[DefinitionError]
    ) -> tuple[dict[str, ModelDef], dict[str, str]]:
        root = self.dirs.models
        sources: dict[str, Path | None] = {path.name: path for path in iter_files(root, (".json",))}
        for name in self._overlay_models:
            sources[name] = None  # a built-in overwrites the file of the same name (SPEC §3.2)
        models: dict[str, ModelDef] = {}
        failed: dict[str, str] = {}
        for name in sorted(sources):
            path = sources[name]
            if path is None:
                result = self._read_overlay(name, self._overlay_models[name], root)
            else:
                result = self._read("model", path, root, DEFINITION_MAX_BYTES, _model_file)
            display = f"{root.name}/{name}"
            if isinstance(result, DefinitionError):
                errors.append(result)
                failed.setdefault(Path(name).stem, display)
                continue
            model, problems, key = result
            if key in models:
                reason = (
                    f"duplicate model key `{key}`: {models[key].file} defines it first; this file is skipped"
                )
                errors.append(DefinitionError(display, "key", reason))
                continue
            if model is None:
                errors.extend(problems)
                failed.setdefault(key, display)
                continue
            if key != Path(name).stem:
                warnings.append(DefinitionError(display, "key", f"key `{key}` differs from the file name"))
            models[key] = model
        return models, failed

    def _agent_files(self) -> list[ParsedAgent]:
        out: list[ParsedAgent] = []
        root = self.dirs.agents
        for path in iter_files(root, AGENT_SUFFIXES):
            result = self._read("agent", path, root, DEFINITION_MAX_BYTES, _agent_file)
            if isinstance(result, DefinitionError):
                version = self._versions.get(("agent", str(path)), "")
                result = ParsedAgent(result.file, path.stem, version, None, None, (result,))
            out.append(result)
        return out

    # --- the whole scan -----------------------------------------------------------------------

    def scan(self, *, force: bool = False) -> CatalogSnapshot | None:
        """Rescan every folder; a new snapshot, or None when nothing changed (unless ``force``)."""
        self._versions = {}
        errors: list[DefinitionError] = []
        warnings: list[DefinitionError] = []
        prompts = self._prompts(errors)
        viewports = self._viewports(errors)
        capability_files = self._capabilities(errors)
        tools, tool_errors = build_tools(capability_files, viewports)
        errors.extend(tool_errors)
        skills = self._skills(errors, warnings)
        models, failed_models = self._models(errors, warnings)
        deps = hashlib.sha256(repr(sorted(self._versions.items())).encode()).hexdigest()
        parsed_agents = self._agent_files()
        fingerprint = hashlib.sha256(repr(sorted(self._versions.items())).encode()).hexdigest()
        self._prune()
        if fingerprint == self._fingerprint and not force:
            return None
        self._fingerprint = fingerprint
        ctx = ResolveContext(models, failed_models, self.providers, tools, skills, prompts)
        agents, statuses = self._resolve_agents(parsed_agents, ctx, deps, errors, warnings)
        self._generation += 1
        return CatalogSnapshot(
            agents=agents,
            statuses=statuses,
            models=models,
            tools=tools,
            skills=skills,
            viewports=viewports,
            prompts=prompts,
            errors=tuple(errors),
            warnings=tuple(warnings),
            version=self._generation,
            context=ctx,
        )

    def _resolve_agents(
        self,
        parsed_agents: list[ParsedAgent],
        ctx: ResolveContext,
        deps: str,
        errors: list[DefinitionError],
        warnings: list[DefinitionError],
    ) -> tuple[dict[str, Agent], dict[str, AgentStatus]]:
        winners: dict[str, ParsedAgent] = {}
        statuses: dict[str, AgentStatus] = {}
        duplicates: list[tuple[ParsedAgent, DefinitionError]] = []
        for parsed in parsed_agents:
            warnings.extend(parsed.warnings)
            first = winners.get(parsed.key)
            if first is None:
                winners[parsed.key] = parsed
                continue
            reason = (
                f"duplicate agent key `{parsed.key}`: {first.file} defines it first; this file is skipped"
            )
            duplicates.append((parsed, DefinitionError(parsed.file, "key", reason)))
        agents: dict[str, Agent] = {}
        live_files = {parsed.file for parsed in parsed_agents}
        for key, parsed in winners.items():
            cached = self._resolved.get(parsed.file)
            if cached is not None and cached[0] == parsed.version and cached[1] == deps:
                agent, problems = cached[2], cached[3]
            else:
                agent, problems = resolve_agent(parsed, ctx)
                self._resolved[parsed.file] = (parsed.version, deps, agent, problems)
            errors.extend(problems)
            if agent is not None:
                self._last_good[parsed.file] = agent
            else:
                last = self._last_good.get(parsed.file)
                agent = last if last is not None and last.key == key else None
            if agent is not None:
                agents[key] = agent
            statuses[key] = AgentStatus(
                key=key,
                file=parsed.file,
                status="error" if problems else "ok",
                errors=tuple(str(p) for p in problems),
                agent=agent,
                raw=parsed.raw,
                version=parsed.version,
            )
        for parsed, error in duplicates:
            errors.append(error)
            status_key = parsed.key if parsed.key not in statuses else Path(parsed.file).stem
            if status_key in statuses:
                status_key = parsed.file
            statuses[status_key] = AgentStatus(
                key=status_key,
                file=parsed.file,
                status="error",
                errors=(str(error),),
                raw=parsed.raw,
                version=parsed.version,
            )
        for file in [f for f in self._last_good if f not in live_files]:
            del self._last_good[file]  # a deleted file disappears
        for file in [f for f in self._resolved if f not in live_files]:
            del self._resolved[file]
        return dict(sorted(agents.items())), dict(sorted(statuses.items()))

    def _prune(self) -> None:
        """Forget cached files that are gone."""
        for ck in [ck for ck in self._cache if ck not in self._versions]:
            del self._cache[ck]
