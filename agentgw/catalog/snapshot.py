"""The immutable view of the whole catalog at one moment (what a run keeps while it runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentgw.catalog.agents import ParsedAgent, ResolveContext, parse_agent, resolve_agent
from agentgw.catalog.files import content_version, key_problem, parse_document
from agentgw.catalog.prompts import BUILTIN_PROMPTS
from agentgw.catalog.types import (
    Agent,
    AgentStatus,
    ModelDef,
    RuntimePrompts,
    SkillDef,
    Stage,
    ToolDef,
    ViewportDef,
)
from agentgw.errors import DefinitionError


@dataclass(frozen=True, slots=True, eq=False)
class CatalogSnapshot:
    """Everything loaded from the catalog folders; a reload builds a new one and swaps it in.

    ``agents`` holds the versions serving now (for a file whose latest edit is invalid, the
    last good version); ``statuses`` has one entry per agent file, failed ones included,
    sorted by key. ``errors`` lists every current problem of every folder. ``version``
    increases with each swap.
    """

    agents: dict[str, Agent]
    statuses: dict[str, AgentStatus]
    models: dict[str, ModelDef]
    tools: dict[str, ToolDef]
    skills: dict[str, SkillDef]
    viewports: dict[str, ViewportDef]
    prompts: RuntimePrompts
    errors: tuple[DefinitionError, ...] = ()
    warnings: tuple[DefinitionError, ...] = ()
    version: int = 0
    context: ResolveContext | None = field(default=None, repr=False)
    # assemble_system_prompt's results for this snapshot alone (not copied by replace()):
    # (agent key, stage, skills used) → (agent, stage, prompt).
    prompt_cache: dict[tuple[str, str, tuple[str, ...]], tuple[Agent, Stage, str]] = field(
        default_factory=dict, init=False, repr=False
    )

    def default_agent_key(self) -> str | None:
        """The agent used when a query names none: the first by key (SPEC §11.1)."""
        return next(iter(sorted(self.agents)), None)

    def viewport(self, key: str) -> ViewportDef | None:
        """A viewport by key; the exact key first, then ignoring case (tool keys are lower-cased)."""
        found = self.viewports.get(key)
        if found is None:
            lowered = key.lower()
            found = next((vp for k, vp in self.viewports.items() if k.lower() == lowered), None)
        return found

    def validate_agent_text(self, key: str, text: str) -> list[str]:
        """Check agent definition text (JSON with comments) as the loader would, against this snapshot.

        Used by ``agent_file_create`` before it writes ``agents/<key>.json``; returns the
        problems as ``field: reason`` lines (empty when the definition is valid).
        """
        problem = key_problem(key)
        if problem:
            return [f"key: {problem}"]
        file = f"agents/{key}.json"
        doc, error = parse_document(text, file, yaml_syntax=False)
        if error is not None:
            return [f"{error.field}: {error.reason}"]
        parsed: ParsedAgent = parse_agent(doc, file, key, content_version(text.encode()))
        problems = [f"{e.field}: {e.reason}" for e in parsed.errors]
        if parsed.key != key and not problems:
            problems.append(f"key: key `{parsed.key}` does not match the file name `{key}`")
        if problems or self.context is None:
            return problems
        _, errors = resolve_agent(parsed, self.context)
        return [f"{e.field}: {e.reason}" for e in errors]


def empty_snapshot() -> CatalogSnapshot:
    """The snapshot before the first load: nothing to serve."""
    return CatalogSnapshot({}, {}, {}, {}, {}, {}, BUILTIN_PROMPTS)
