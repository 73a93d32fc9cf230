"""Pydantic schemas of agent and model definition files, as authors write them (SPEC §3.1, §3.2).

Every model forbids unknown fields. Fields the upstream gateway used to accept are checked
first by :func:`legacy_problems`, so an author gets "legacy field `verify` is not supported"
instead of a bare "extra field". The resolved, engine-facing values live in
:mod:`agentgw.catalog.types`; these schemas only describe files.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agentgw.catalog.types import Mode, ToolChoiceName


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def _upper_name(value: Any) -> Any:
    """``plan-execute`` / ``Plan_Execute`` → ``PLAN_EXECUTE``."""
    if isinstance(value, str):
        return value.strip().upper().replace("-", "_")
    return value


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


class ReasoningSpec(_Spec):
    """Reasoning (thinking) knobs of a model call; mapped to each protocol's parameters."""

    enabled: bool = Field(False, description="Ask the model to think before answering.")
    effort: Literal["LOW", "MEDIUM", "HIGH"] = Field("MEDIUM", description="Thinking effort.")

    _effort = field_validator("effort", mode="before")(_upper_name)


class ModelConfigSpec(_Spec):
    """Which model a stage calls and how. A stage's own ``modelConfig`` replaces the top-level one."""

    model_key: str | None = Field(None, alias="modelKey", description="A key of models/<modelKey>.json.")
    reasoning: ReasoningSpec = ReasoningSpec()
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1, validation_alias=AliasChoices("top_p", "topP"))
    max_tokens: int | None = Field(None, ge=1, validation_alias=AliasChoices("max_tokens", "maxTokens"))


class ApprovalRuleSpec(_Spec):
    """One approval rule; see :class:`ToolConfigSpec` for the semantics."""

    tool: str = Field(description='A backend tool of this agent, or "*" for every backend tool.')
    policy: Literal["auto", "confirm", "deny"]
    match: dict[str, Any] | None = Field(
        None, description="Argument name → value; the rule applies only when every listed argument equals it."
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def _approval_rules(value: Any) -> Any:
    """Accept the map form ``{"tool": "confirm" | {policy, match} | [..]}`` beside the list form."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return value
    rules: list[Any] = []
    for tool, entry in value.items():
        for item in entry if isinstance(entry, list) else [entry]:
            if isinstance(item, str):
                rules.append({"tool": tool, "policy": item})
            elif isinstance(item, dict):
                rules.append({"tool": tool, **item})
            else:
                rules.append(item)  # let validation name the bad entry
    return rules


class ToolConfigSpec(_Spec):
    """The tools a stage may call, by name, and (top level only) the approval policy.

    ``approval`` decides, per backend tool call, whether it runs at once (``auto``), waits
    for the frontend to approve it through ``/api/ap/submit`` (``confirm``) or is refused
    (``deny``, the model gets a tool error). Two spellings are accepted::

        "approval": [
          {"tool": "_bash_", "policy": "confirm"},
          {"tool": "mock_sensitive_data_detector", "policy": "deny", "match": {"mode": "export"}}
        ]
        "approval": {"_bash_": "confirm",
                     "mock_sensitive_data_detector": {"policy": "deny", "match": {"mode": "export"}}}

    Rules are tried in order; the first whose ``tool`` is the called tool (or ``"*"``) and
    whose ``match`` arguments all equal the call's arguments decides. With no matching rule
    a tool marked ``requiresApproval`` in its capability file is ``confirm``, any other
    ``auto``.
    """

    backends: list[str] = Field(default_factory=list, description="Names from tools/*.backend or built-ins.")
    frontends: list[str] = Field(default_factory=list, description="Names from tools/*.frontend.")
    actions: list[str] = Field(default_factory=list, description="Names from tools/*.action.")
    approval: list[ApprovalRuleSpec] = Field(default_factory=list)

    _lists = field_validator("backends", "frontends", "actions", mode="before")(_none_is_empty)
    _rules = field_validator("approval", mode="before")(_approval_rules)


class SkillConfigSpec(_Spec):
    """Skill ids; merged with the top-level ``skills`` (trimmed, lower-cased, de-duplicated)."""

    skills: list[str] = Field(default_factory=list)

    _lists = field_validator("skills", mode="before")(_none_is_empty)


class StageSpec(_Spec):
    """One stage block (``plain``, ``react``, ``planExecute.execute`` / ``summary``)."""

    system_prompt: str | None = Field(None, alias="systemPrompt")
    model_cfg: ModelConfigSpec | None = Field(None, alias="modelConfig")
    # Explicit null clears the stage's ordinary tools; absent inherits the top level.
    tool_cfg: ToolConfigSpec | None = Field(None, alias="toolConfig")


class ReactSpec(StageSpec):
    """The REACT stage block."""

    max_steps: int = Field(6, ge=1, le=1000, alias="maxSteps", description="Bound of the REACT loop.")


class PlanStageSpec(StageSpec):
    """``planExecute.plan``: the only stage that may set ``deepThinking``."""

    deep_thinking: bool = Field(
        False, alias="deepThinking", description="Draft the plan with reasoning on before generating it."
    )


class PlanExecuteSpec(_Spec):
    """The PLAN_EXECUTE blocks: plan and execute prompts are required, summary is optional."""

    plan: PlanStageSpec | None = None
    execute: StageSpec | None = None
    summary: StageSpec | None = None
    max_steps: int = Field(15, ge=1, le=1000, alias="maxSteps", description="Bound on tasks executed.")


class CallBudgetSpec(_Spec):
    """Limits of model or tool calls: how many, per-call timeout, retries of transient failures."""

    max_calls: int | None = Field(None, ge=1, alias="maxCalls")
    timeout_ms: int | None = Field(None, ge=1, alias="timeoutMs")
    retry_count: int | None = Field(None, ge=0, le=10, alias="retryCount")


class BudgetSpec(_Spec):
    """Run limits; fields left out take the REACT defaults (SPEC §11.5)."""

    run_timeout_ms: int | None = Field(None, ge=1, alias="runTimeoutMs")
    model: CallBudgetSpec | None = None
    tool: CallBudgetSpec | None = None
    max_tokens: int | None = Field(None, ge=1, alias="maxTokens", description="Total tokens of the run.")
    max_points: float | None = Field(None, gt=0, alias="maxPoints", description="Total points of the run.")


class PlanExecutePromptsSpec(_Spec):
    """``runtimePrompts.planExecute``."""

    task_execution_prompt_template: str | None = Field(None, alias="taskExecutionPromptTemplate")


class SkillPromptsSpec(_Spec):
    """``runtimePrompts.skill``: headers of the skill catalog and disclosure."""

    catalog_header: str | None = Field(None, alias="catalogHeader")
    disclosure_header: str | None = Field(None, alias="disclosureHeader")
    instructions_label: str | None = Field(None, alias="instructionsLabel")


class ToolAppendixPromptsSpec(_Spec):
    """``runtimePrompts.toolAppendix``: titles of the tool sections of the system prompt."""

    tool_description_title: str | None = Field(None, alias="toolDescriptionTitle")
    after_call_hint_title: str | None = Field(None, alias="afterCallHintTitle")
    callable_tools_title: str | None = Field(None, alias="callableToolsTitle")
    reference_tools_title: str | None = Field(None, alias="referenceToolsTitle")


class RuntimePromptsSpec(_Spec):
    """Per-agent overrides of the texts in ``prompts/``."""

    plan_execute: PlanExecutePromptsSpec | None = Field(None, alias="planExecute")
    skill: SkillPromptsSpec | None = None
    tool_appendix: ToolAppendixPromptsSpec | None = Field(None, alias="toolAppendix")


class AgentSpec(_Spec):
    """An agent definition file (``agents/<agentKey>.json`` or ``.yaml``)."""

    key: str | None = Field(None, description="The agent key; defaults to the file name.")
    name: str | None = Field(None, description="Display name; defaults to the key.")
    icon: str = ""
    description: str = ""
    model_cfg: ModelConfigSpec | None = Field(None, alias="modelConfig")
    tool_cfg: ToolConfigSpec | None = Field(None, alias="toolConfig")
    skill_cfg: SkillConfigSpec | None = Field(None, alias="skillConfig")
    skills: list[str] = Field(default_factory=list)
    mode: Mode
    tool_choice: ToolChoiceName | None = Field(None, alias="toolChoice")
    budget: BudgetSpec | None = None
    plain: StageSpec | None = None
    react: ReactSpec | None = None
    plan_execute: PlanExecuteSpec | None = Field(None, alias="planExecute")
    runtime_prompts: RuntimePromptsSpec | None = Field(None, alias="runtimePrompts")

    _mode = field_validator("mode", "tool_choice", mode="before")(_upper_name)
    _lists = field_validator("skills", mode="before")(_none_is_empty)


Protocol = Literal["OPENAI", "ANTHROPIC", "NEWAPI_OPENAI_COMPATIBLE"]


class PricingTierSpec(_Spec):
    """A price tier by input size; the tier holding a call's input tokens prices the whole call."""

    min_input_tokens: int = Field(0, ge=0, alias="minInputTokens")
    max_input_tokens: int | None = Field(None, ge=0, alias="maxInputTokens")
    prompt_points_per_1k: float = Field(0.0, ge=0, alias="promptPointsPer1k")
    completion_points_per_1k: float = Field(0.0, ge=0, alias="completionPointsPer1k")
    per_call_points: float = Field(0.0, ge=0, alias="perCallPoints")
    price_ratio: float = Field(1.0, ge=0, alias="priceRatio")

    @model_validator(mode="after")
    def _range(self) -> PricingTierSpec:
        if self.max_input_tokens is not None and self.max_input_tokens < self.min_input_tokens:
            raise ValueError("maxInputTokens must not be below minInputTokens")
        return self


class PricingSpec(_Spec):
    """Points per 1K tokens (10000 points = 1 RMB); a matching tier prices the whole call."""

    prompt_points_per_1k: float = Field(0.0, ge=0, alias="promptPointsPer1k")
    completion_points_per_1k: float = Field(0.0, ge=0, alias="completionPointsPer1k")
    per_call_points: float = Field(0.0, ge=0, alias="perCallPoints")
    price_ratio: float = Field(1.0, ge=0, alias="priceRatio")
    tiers: list[PricingTierSpec] = Field(default_factory=list)


class ModelSpec(_Spec):
    """A model definition file (``models/<modelKey>.json``)."""

    key: str
    name: str | None = None
    description: str | None = None
    provider: str = Field(description="A key of agent.providers (connection settings).")
    protocol: Protocol
    model_id: str = Field(alias="modelId", min_length=1)
    is_reasoner: bool = Field(False, alias="isReasoner")
    is_function: bool = Field(True, alias="isFunction")
    max_tokens: int | None = Field(None, ge=1, alias="maxTokens")
    max_input_tokens: int | None = Field(None, ge=1, alias="maxInputTokens")
    max_output_tokens: int | None = Field(None, ge=1, alias="maxOutputTokens")
    echo_reasoning: bool = Field(
        False,
        alias="echoReasoning",
        description="Send reasoning_content back on tool-call turns within one run (providers that need it).",
    )
    pricing: PricingSpec = PricingSpec()

    _protocol = field_validator("protocol", mode="before")(_upper_name)


# --- legacy fields -------------------------------------------------------------------------

_MODEL_HINT = "use modelConfig.modelKey (provider, model id and protocol come from models/<modelKey>.json)"
_STAGE_LEGACY = {
    "providerKey": _MODEL_HINT,
    "model": _MODEL_HINT,
    "reasoning": "use modelConfig.reasoning",
    "tools": "use toolConfig.backends / frontends / actions",
}
_TOP_LEGACY = {
    "verify": "there is no verify pass any more; remove it",
    "output": "remove it",
    "toolPolicy": "use toolChoice and toolConfig.approval",
    "deepThink": "use planExecute.plan.deepThinking",
    "systemPrompt": "put it in the mode's block: plain / react / planExecute.<stage>.systemPrompt",
    **_STAGE_LEGACY,
}
_MODEL_CONFIG_LEGACY = {"providerKey": _MODEL_HINT, "model": "use modelConfig.modelKey"}
_BUDGET_LEGACY = {
    "maxModelCalls": "use budget.model.maxCalls",
    "maxToolCalls": "use budget.tool.maxCalls",
    "maxSteps": "use react.maxSteps or planExecute.maxSteps",
    "timeoutMs": "use budget.runTimeoutMs, budget.model.timeoutMs or budget.tool.timeoutMs",
    "retryCount": "use budget.model.retryCount or budget.tool.retryCount",
}
_PROMPTS_LEGACY = dict.fromkeys(("verify", "finalAnswer", "oneshot", "react"), "remove it")
_PLAN_PROMPTS_LEGACY = dict.fromkeys(
    (
        "executeToolsTitle",
        "planCallableToolsTitle",
        "draftInstructionBlock",
        "generateInstructionBlockFromDraft",
        "generateInstructionBlockDirect",
        "taskRequireToolUserPrompt",
        "taskMultipleToolsUserPrompt",
        "taskUpdateNoProgressUserPrompt",
        "taskContinueUserPrompt",
        "updateRoundPromptTemplate",
        "updateRoundMultipleToolsUserPrompt",
        "allStepsCompletedUserPrompt",
    ),
    "remove it; runtimePrompts.planExecute only takes taskExecutionPromptTemplate",
)


def _take(node: Any, table: dict[str, str], prefix: str, out: list[tuple[str, str]]) -> None:
    if not isinstance(node, dict):
        return
    for name, hint in table.items():
        if name in node:
            del node[name]
            field = f"{prefix}{name}"
            out.append((field, f"legacy field `{field}` is not supported; {hint}"))


def strip_legacy(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Remove legacy fields from ``raw`` (a copy the caller owns) and name each one.

    Also rejects ``deepThinking`` outside ``planExecute.plan``. Returns ``(field, reason)``
    pairs; removing the fields keeps pydantic from reporting them a second time.
    """
    out: list[tuple[str, str]] = []
    _take(raw, _TOP_LEGACY, "", out)
    _take(raw.get("modelConfig"), _MODEL_CONFIG_LEGACY, "modelConfig.", out)
    _take(raw.get("budget"), _BUDGET_LEGACY, "budget.", out)
    prompts = raw.get("runtimePrompts")
    _take(prompts, _PROMPTS_LEGACY, "runtimePrompts.", out)
    if isinstance(prompts, dict):
        _take(prompts.get("planExecute"), _PLAN_PROMPTS_LEGACY, "runtimePrompts.planExecute.", out)
    stages: list[tuple[str, Any]] = [("plain", raw.get("plain")), ("react", raw.get("react"))]
    plan_execute = raw.get("planExecute")
    if isinstance(plan_execute, dict):
        stages += [(f"planExecute.{name}", plan_execute.get(name)) for name in ("plan", "execute", "summary")]
        if "deepThinking" in plan_execute:
            del plan_execute["deepThinking"]
            out.append(("planExecute.deepThinking", "deepThinking is only allowed in planExecute.plan"))
    for path, stage in stages:
        if not isinstance(stage, dict):
            continue
        _take(stage, _STAGE_LEGACY, f"{path}.", out)
        _take(stage.get("modelConfig"), _MODEL_CONFIG_LEGACY, f"{path}.modelConfig.", out)
        if (
            path in ("planExecute.execute", "planExecute.summary", "plain", "react")
            and "deepThinking" in stage
        ):
            del stage["deepThinking"]
            out.append((f"{path}.deepThinking", "deepThinking is only allowed in planExecute.plan"))
    return out


def copy_tree(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts and lists only), cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_tree(v) for v in value]
    return value


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Pydantic errors as ``(dotted field, reason)`` pairs an author can act on."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        parts: list[str] = []
        for part in err["loc"]:
            if isinstance(part, int):
                parts.append(f"[{part}]")
            elif part.startswith(("function-", "list[", "dict[", "literal[")) or "[" in part:
                continue  # union branch tags, not fields
            else:
                parts.append(("." if parts else "") + part)
        field = "".join(parts) or "(root)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parent, _, leaf = field.rpartition(".")
            where = f"in {parent}" if parent else "at the top level"
            reason = f"unknown field `{leaf}` {where}"
            if parent == "budget":
                reason = f"unknown budget field `{leaf}`"
        elif kind == "missing":
            reason = "is required"
        else:
            reason = err["msg"]
            if reason.startswith("Value error, "):
                reason = reason[len("Value error, ") :]
        out.append((field, reason))
    return out
