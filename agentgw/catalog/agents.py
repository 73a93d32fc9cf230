"""Agent definitions: parse a file into an :class:`AgentSpec`, resolve it into an :class:`Agent`.

Parsing depends only on the file (so it is cached by content); resolving looks up models,
tools, skills and the default prompts, so it runs again whenever one of those changes.
Both steps collect every problem of a file instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agentgw.catalog.capabilities import PLAN_ADD_TASKS, PLAN_TOOLS, PLAN_UPDATE_TASK
from agentgw.catalog.files import key_problem
from agentgw.catalog.prompts import apply_overrides
from agentgw.catalog.schemas import (
    AgentSpec,
    BudgetSpec,
    CallBudgetSpec,
    ModelConfigSpec,
    StageSpec,
    ToolConfigSpec,
    copy_tree,
    strip_legacy,
    validation_problems,
)
from agentgw.catalog.types import (
    Agent,
    ApprovalRule,
    Budget,
    CallBudget,
    Mode,
    ModelDef,
    ReasoningConfig,
    RuntimePrompts,
    SkillDef,
    Stage,
    StageModelConfig,
    StageName,
    ToolChoiceName,
    ToolDef,
    ToolKind,
)
from agentgw.errors import DefinitionError

AGENT_SUFFIXES = (".json", ".yaml", ".yml")

# SPEC §11.5: budgets when the agent sets none; fields missing from a given budget take REACT's.
DEFAULT_BUDGETS: dict[str, Budget] = {
    "ONESHOT": Budget(30_000, CallBudget(3, 30_000), CallBudget(5, 30_000)),
    "REACT": Budget(120_000, CallBudget(15, 60_000), CallBudget(20, 120_000)),
    "PLAN_EXECUTE": Budget(300_000, CallBudget(30, 120_000), CallBudget(50, 300_000)),
}
DEFAULT_REACT_MAX_STEPS = 6
DEFAULT_PLAN_MAX_STEPS = 15


@dataclass(frozen=True, slots=True)
class ParsedAgent:
    """An agent file after parsing and schema checks, before references are resolved."""

    file: str
    key: str
    version: str
    raw: dict[str, Any] | None
    spec: AgentSpec | None
    errors: tuple[DefinitionError, ...] = ()
    warnings: tuple[DefinitionError, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolveContext:
    """What an agent's references resolve against."""

    models: Mapping[str, ModelDef]
    failed_models: Mapping[str, str]  # key → file of a model definition that did not load
    providers: frozenset[str]
    tools: Mapping[str, ToolDef]
    skills: Mapping[str, SkillDef]
    prompts: RuntimePrompts
    tools_lower: dict[str, ToolDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tools_lower.update({name.lower(): tool for name, tool in self.tools.items()})

    def tool(self, name: str) -> ToolDef | None:
        return self.tools.get(name) or self.tools_lower.get(name.lower())


def parse_agent(doc: Any, file: str, stem: str, version: str) -> ParsedAgent:
    """Schema-check a parsed agent document; ``doc`` is not modified."""
    if not isinstance(doc, dict):
        error = DefinitionError(file, "(root)", "an agent definition must be a JSON object")
        return ParsedAgent(file, stem, version, None, None, (error,))
    raw_key = doc.get("key")
    key = raw_key.strip() if isinstance(raw_key, str) and raw_key.strip() else stem
    errors: list[DefinitionError] = []
    warnings: list[DefinitionError] = []
    problem = key_problem(key)
    if problem:
        errors.append(DefinitionError(file, "key", problem))
    elif key != stem:
        warnings.append(DefinitionError(file, "key", f"key `{key}` differs from the file name `{stem}`"))
    work = copy_tree(doc)
    errors += [DefinitionError(file, f, r) for f, r in strip_legacy(work)]
    spec: AgentSpec | None = None
    try:
        spec = AgentSpec.model_validate(work)
    except ValidationError as exc:
        errors += [DefinitionError(file, f, r) for f, r in validation_problems(exc)]
    return ParsedAgent(file, key, version, doc, spec if not errors else None, tuple(errors), tuple(warnings))


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[DefinitionError] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, field: str, reason: str) -> None:
        if (field, reason) not in self._seen:  # inherited config is checked once per stage
            self._seen.add((field, reason))
            self.items.append(DefinitionError(self.file, field, reason))


def _stage_blocks(spec: AgentSpec) -> list[tuple[StageName, str, StageSpec | None]]:
    if spec.mode == "ONESHOT":
        return [("plain", "plain", spec.plain)]
    if spec.mode == "REACT":
        return [("react", "react", spec.react)]
    pe = spec.plan_execute
    return [
        ("plan", "planExecute.plan", pe.plan if pe else None),
        ("execute", "planExecute.execute", pe.execute if pe else None),
        ("summary", "planExecute.summary", pe.summary if pe else None),
    ]


def _prompt(block: StageSpec | None) -> str:
    return (
        block.system_prompt
        if block is not None and block.system_prompt and block.system_prompt.strip()
        else ""
    )


def _model_for(
    block: StageSpec | None, path: str, spec: AgentSpec, ctx: ResolveContext, problems: _Problems
) -> StageModelConfig | None:
    cfg: ModelConfigSpec | None = spec.model_cfg
    cfg_path = "modelConfig"
    if block is not None and block.model_cfg is not None:
        cfg, cfg_path = block.model_cfg, f"{path}.modelConfig"
    key = (cfg.model_key or "").strip() if cfg is not None else ""
    if not key:
        if cfg_path != "modelConfig":
            problems.add(
                f"{cfg_path}.modelKey",
                "is required: a stage's modelConfig replaces the top-level one as a whole",
            )
        else:
            problems.add(
                f"{path}.modelConfig",
                "this stage has no model: set modelConfig.modelKey at the top level or in the stage",
            )
        return None
    model = ctx.models.get(key)
    if model is None:
        failed = ctx.failed_models.get(key)
        detail = f"its definition {failed} failed to load" if failed else f"no models/{key}.json defines it"
        problems.add(f"{cfg_path}.modelKey", f"unknown model `{key}` ({detail})")
        return None
    if model.provider not in ctx.providers:
        problems.add(
            f"{cfg_path}.modelKey",
            f"model `{key}` uses provider `{model.provider}`, which is not configured "
            f"(add agent.providers.{model.provider} to the settings)",
        )
        return None
    assert cfg is not None
    return StageModelConfig(
        model=model,
        reasoning=ReasoningConfig(enabled=cfg.reasoning.enabled, effort=cfg.reasoning.effort),
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_tokens,
    )


def _tools_for(
    block: StageSpec | None, path: str, spec: AgentSpec, ctx: ResolveContext, problems: _Problems
) -> list[ToolDef]:
    cfg: ToolConfigSpec | None = spec.tool_cfg
    cfg_path = "toolConfig"
    if block is not None and "tool_cfg" in block.model_fields_set:
        cfg, cfg_path = block.tool_cfg, f"{path}.toolConfig"  # explicit null clears ordinary tools
        if cfg is not None and cfg.approval:
            problems.add(f"{cfg_path}.approval", "approval rules are read from the top-level toolConfig only")
    if cfg is None:
        return []
    out: list[ToolDef] = []
    kinds: tuple[tuple[ToolKind, list[str]], ...] = (
        ("backend", cfg.backends),
        ("frontend", cfg.frontends),
        ("action", cfg.actions),
    )
    for kind, names in kinds:
        where = f"{cfg_path}.{kind}s"
        for written in names:
            name = written.strip()
            tool = ctx.tool(name)
            if tool is None:
                suffix = f"tools/*.{kind}"
                problems.add(where, f"unknown {kind} tool `{name}` (no {suffix} file defines it)")
            elif tool.kind != kind:
                problems.add(
                    where, f"`{tool.name}` is a {tool.kind} tool; list it under toolConfig.{tool.kind}s"
                )
            elif tool.name in PLAN_TOOLS and spec.mode != "PLAN_EXECUTE":
                problems.add(where, f"`{tool.name}` is a plan tool; it is only available in PLAN_EXECUTE")
            elif all(t.name != tool.name for t in out):
                out.append(tool)
    return out


def _with_plan_tools(stage: StageName, ordinary: list[ToolDef], ctx: ResolveContext) -> tuple[ToolDef, ...]:
    """Ordinary tools first, then the plan tools: forced ones and those the stage lists."""
    plain = [t for t in ordinary if t.name not in PLAN_TOOLS]
    listed = {t.name for t in ordinary if t.name in PLAN_TOOLS}
    if stage == "plan":
        listed.add(PLAN_ADD_TASKS)
    elif stage == "execute":
        listed.add(PLAN_UPDATE_TASK)
    plan = [ctx.tools[name] for name in PLAN_TOOLS if name in listed and name in ctx.tools]
    return (*plain, *plan)


def _call_budget(given: CallBudgetSpec | None, base: CallBudget) -> CallBudget:
    if given is None:
        return base
    return CallBudget(
        max_calls=base.max_calls if given.max_calls is None else given.max_calls,
        timeout_ms=base.timeout_ms if given.timeout_ms is None else given.timeout_ms,
        retry_count=base.retry_count if given.retry_count is None else given.retry_count,
    )


def resolve_budget(given: BudgetSpec | None, mode: Mode) -> Budget:
    """Mode defaults when no budget is set; a partial budget is completed with REACT values."""
    if given is None:
        return DEFAULT_BUDGETS[mode]
    base = DEFAULT_BUDGETS["REACT"]
    return Budget(
        run_timeout_ms=base.run_timeout_ms if given.run_timeout_ms is None else given.run_timeout_ms,
        model=_call_budget(given.model, base.model),
        tool=_call_budget(given.tool, base.tool),
        max_tokens=given.max_tokens,
        max_points=given.max_points,
    )


def _skills(spec: AgentSpec, ctx: ResolveContext, problems: _Problems) -> tuple[str, ...]:
    merged: list[str] = []
    sources = (
        ("skills", spec.skills),
        ("skillConfig.skills", spec.skill_cfg.skills if spec.skill_cfg else []),
    )
    for where, names in sources:
        for written in names:
            skill_id = written.strip().lower()
            if not skill_id:
                problems.add(where, "blank skill reference")
            elif skill_id in merged:
                continue
            elif skill_id not in ctx.skills:
                problems.add(where, f"unknown skill `{skill_id}` (no skills/{skill_id}/SKILL.md)")
            else:
                merged.append(skill_id)
    return tuple(merged)


def resolve_agent(parsed: ParsedAgent, ctx: ResolveContext) -> tuple[Agent | None, list[DefinitionError]]:
    """The engine-facing :class:`Agent`, or every reason it cannot be built."""
    spec = parsed.spec
    if spec is None:
        return None, list(parsed.errors)
    problems = _Problems(parsed.file)
    blocks = _stage_blocks(spec)
    required = {"ONESHOT": ("plain",), "REACT": ("react",), "PLAN_EXECUTE": ("plan", "execute")}[spec.mode]
    for name, path, block in blocks:
        if name in required and not _prompt(block):
            problems.add(f"{path}.systemPrompt", f"is required for mode {spec.mode}")
    has_model_key = bool(spec.model_cfg and spec.model_cfg.model_key) or any(
        block is not None and block.model_cfg is not None and block.model_cfg.model_key
        for _, _, block in blocks
    )
    if not has_model_key:
        problems.add(
            "modelConfig.modelKey", "at least one modelConfig.modelKey is required (top level or a stage)"
        )

    stages: dict[str, Stage] = {}
    execute_prompt = ""
    for name, path, block in blocks:
        model = _model_for(block, path, spec, ctx, problems) if has_model_key else None
        ordinary = [] if name == "summary" else _tools_for(block, path, spec, ctx, problems)
        tools = () if name == "summary" else _with_plan_tools(name, ordinary, ctx)
        prompt = _prompt(block)
        if name == "execute":
            execute_prompt = prompt
        if name == "summary" and not prompt:
            prompt = execute_prompt  # SPEC §4.2: the summary prompt defaults to execute's
        deep = bool(getattr(block, "deep_thinking", False))
        if model is not None:
            stages[name] = Stage(
                name=name, system_prompt=prompt, model=model, tools=tools, deep_thinking=deep
            )

    all_tools = [tool for stage in stages.values() for tool in stage.tools]
    tool_choice: ToolChoiceName
    if spec.tool_choice is not None:
        tool_choice = spec.tool_choice
    elif spec.mode == "ONESHOT":
        tool_choice = "AUTO" if all_tools else "NONE"
    else:
        tool_choice = "AUTO"
    if tool_choice == "REQUIRED" and spec.mode != "PLAN_EXECUTE" and not all_tools and stages:
        problems.add("toolChoice", "REQUIRED needs at least one tool in toolConfig")

    backend_names = {t.name for t in all_tools if t.kind == "backend"}
    approval: list[ApprovalRule] = []
    for index, rule in enumerate(spec.tool_cfg.approval if spec.tool_cfg else []):
        if rule.tool != "*" and rule.tool not in backend_names:
            problems.add(
                f"toolConfig.approval[{index}].tool",
                f"`{rule.tool}` is not a backend tool of this agent (approval applies to backend tools)",
            )
        approval.append(ApprovalRule(tool=rule.tool, policy=rule.policy, match=rule.match))

    skills = _skills(spec, ctx, problems)
    if problems.items:
        return None, problems.items
    agent = Agent(
        key=parsed.key,
        name=(spec.name or "").strip() or parsed.key,
        icon=spec.icon,
        description=spec.description,
        mode=spec.mode,
        tool_choice=tool_choice,
        budget=resolve_budget(spec.budget, spec.mode),
        stages=stages,
        skills=skills,
        runtime_prompts=apply_overrides(ctx.prompts, spec.runtime_prompts),
        react_max_steps=spec.react.max_steps if spec.react else DEFAULT_REACT_MAX_STEPS,
        plan_max_steps=spec.plan_execute.max_steps if spec.plan_execute else DEFAULT_PLAN_MAX_STEPS,
        approval=tuple(approval),
        version=parsed.version,
        file=parsed.file,
        raw=parsed.raw or {},
    )
    return agent, []
