"""The resolved, immutable catalog the rest of the gateway reads.

Loaders (``agentgw.catalog.loaders``) turn files into these values; the engine and the
HTTP layer only ever see these. A hot reload builds a new :class:`CatalogSnapshot` and
swaps one reference, so a run keeps the snapshot it started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["ONESHOT", "REACT", "PLAN_EXECUTE"]
ToolKind = Literal["backend", "frontend", "action"]
StageName = Literal["plain", "react", "plan", "execute", "summary"]
ToolChoiceName = Literal["NONE", "AUTO", "REQUIRED"]


@dataclass(frozen=True, slots=True)
class PricingTier:
    min_input_tokens: int = 0
    max_input_tokens: int | None = None
    prompt_points_per_1k: float = 0.0
    completion_points_per_1k: float = 0.0
    per_call_points: float = 0.0
    price_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class Pricing:
    prompt_points_per_1k: float = 0.0
    completion_points_per_1k: float = 0.0
    per_call_points: float = 0.0
    price_ratio: float = 1.0
    tiers: tuple[PricingTier, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelDef:
    key: str
    provider: str
    protocol: Literal["OPENAI", "ANTHROPIC", "NEWAPI_OPENAI_COMPATIBLE"]
    model_id: str
    is_reasoner: bool = False
    is_function: bool = True
    max_tokens: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    # Echo reasoning_content back to the provider on tool-call turns within one run (§10.7).
    echo_reasoning: bool = False
    pricing: Pricing = Pricing()
    version: str = ""
    file: str = ""


@dataclass(frozen=True, slots=True)
class ToolDef:
    """One tool of a capability file (§3.3)."""

    name: str
    kind: ToolKind
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    after_call_hint: str = ""
    strict: bool | None = None
    requires_approval: bool = False
    tool_api: str | None = None  # HTTP backend tool URL
    tool_key: str | None = None  # frontend: viewport key (capability file base name, lower-cased)
    tool_type: str = "function"  # backend/action: "function"; frontend: viewport type ("html", "qlc"…)
    file: str = ""
    version: str = ""  # content hash of the capability file ("builtin" for the plan tools)

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style tool schema sent to providers."""
        fn: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }
        if self.strict is not None:
            fn["strict"] = self.strict
        return {"type": "function", "function": fn}


@dataclass(frozen=True, slots=True)
class SkillDef:
    id: str
    name: str
    description: str
    instructions: str  # SKILL.md body, already cut at max-prompt-chars
    path: Path
    version: str = ""


@dataclass(frozen=True, slots=True)
class ViewportDef:
    key: str
    type: str  # html | qlc | dqlc | json_schema | custom
    path: Path
    version: str = ""
    html: str | None = None  # .html: the page, read at load time
    data: dict[str, Any] | None = None  # other types: the file's JSON object


@dataclass(frozen=True, slots=True)
class ReasoningConfig:
    enabled: bool = False
    effort: str = "MEDIUM"


@dataclass(frozen=True, slots=True)
class StageModelConfig:
    model: ModelDef
    reasoning: ReasoningConfig = ReasoningConfig()
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class CallBudget:
    max_calls: int
    timeout_ms: int
    retry_count: int = 0


@dataclass(frozen=True, slots=True)
class Budget:
    run_timeout_ms: int
    model: CallBudget
    tool: CallBudget
    max_tokens: int | None = None  # total tokens of the run (§10.6)
    max_points: float | None = None  # total points of the run (§10.6)


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """``toolConfig.approval`` entry: a policy for one tool, optionally only when arguments match."""

    tool: str
    policy: Literal["auto", "confirm", "deny"]
    match: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RuntimePrompts:
    task_execution_prompt_template: str
    skill_catalog_header: str
    skill_disclosure_header: str
    skill_instructions_label: str
    tool_description_title: str
    after_call_hint_title: str
    plan_callable_tools_title: str
    plan_reference_tools_title: str
    # Every text file of prompts/ by name without suffix (``planExecute.draftInstructions``…),
    # for engine glue texts that agents do not override.
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stage:
    name: StageName
    system_prompt: str
    model: StageModelConfig
    # Tools the model may call in this stage, in order: ordinary tools, then forced plan tools.
    tools: tuple[ToolDef, ...] = ()
    deep_thinking: bool = False


@dataclass(frozen=True, slots=True)
class Agent:
    key: str
    name: str
    icon: str
    description: str
    mode: Mode
    tool_choice: ToolChoiceName
    budget: Budget
    stages: dict[str, Stage]  # keys: plain | react | plan, execute, summary
    skills: tuple[str, ...]
    runtime_prompts: RuntimePrompts
    react_max_steps: int = 6
    plan_max_steps: int = 15
    approval: tuple[ApprovalRule, ...] = ()
    version: str = ""
    file: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the parsed definition as written

    @property
    def primary_stage(self) -> Stage:
        if self.mode == "ONESHOT":
            return self.stages["plain"]
        if self.mode == "REACT":
            return self.stages["react"]
        return self.stages["execute"]


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the agents API shows for a file, loaded or not."""

    key: str
    file: str
    status: Literal["ok", "error"]
    errors: tuple[str, ...] = ()
    agent: Agent | None = None  # the version serving now (the last good one when status is error)
    raw: Mapping[str, Any] | None = None  # the file as parsed, when it parsed (names a failed agent)
    version: str = ""  # content hash of the file as it is on disk now
