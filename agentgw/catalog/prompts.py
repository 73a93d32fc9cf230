"""Default runtime prompt texts (SPEC §1 ``prompts/``, §11.5).

Layout: one text file per prompt, named after the agent field that overrides it::

    prompts/planExecute.taskExecutionPromptTemplate.md   ({{task_list}}, {{task_id}}, {{task_description}})
    prompts/skill.catalogHeader.md
    prompts/skill.disclosureHeader.md
    prompts/skill.instructionsLabel.md
    prompts/toolAppendix.toolDescriptionTitle.md
    prompts/toolAppendix.afterCallHintTitle.md
    prompts/toolAppendix.callableToolsTitle.md          (plan stage: the tools it can call)
    prompts/toolAppendix.referenceToolsTitle.md         (plan stage: execute tools, not callable)

A missing file falls back to the text built into this module; an agent's
``runtimePrompts`` overrides either. Other ``.md``/``.txt`` files land in
``RuntimePrompts.extra`` by name; ``README.md`` is documentation and skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentgw.catalog.schemas import RuntimePromptsSpec
from agentgw.catalog.types import RuntimePrompts

PROMPT_SUFFIXES = (".md", ".txt")

# file name (without suffix) → RuntimePrompts field
PROMPT_FILES: dict[str, str] = {
    "planExecute.taskExecutionPromptTemplate": "task_execution_prompt_template",
    "skill.catalogHeader": "skill_catalog_header",
    "skill.disclosureHeader": "skill_disclosure_header",
    "skill.instructionsLabel": "skill_instructions_label",
    "toolAppendix.toolDescriptionTitle": "tool_description_title",
    "toolAppendix.afterCallHintTitle": "after_call_hint_title",
    "toolAppendix.callableToolsTitle": "plan_callable_tools_title",
    "toolAppendix.referenceToolsTitle": "plan_reference_tools_title",
}

BUILTIN_PROMPTS = RuntimePrompts(
    task_execution_prompt_template=(
        "Plan tasks:\n"
        "{{task_list}}\n"
        "\n"
        "Current task: {{task_id}}\n"
        "Task description: {{task_description}}\n"
        "\n"
        "Work on the current task only, calling at most one tool per turn. When it is done, call "
        '_plan_update_task_ with taskId "{{task_id}}" and status "completed"; if it cannot be done, '
        'use status "failed" and say why in the description.'
    ),
    skill_catalog_header=(
        "Available skills (a catalog summary: use a skill only when it helps, through "
        "_skill_run_script_, and never invent a skill or script that does not exist):"
    ),
    skill_disclosure_header="Full instructions of the skills used in this run:",
    skill_instructions_label="instructions:",
    tool_description_title="Tool descriptions:",
    after_call_hint_title="After calling a tool, follow its guidance:",
    plan_callable_tools_title="Plan tools (call them to record the plan):",
    plan_reference_tools_title=(
        "Tools of the execution stage (for reference only, not callable now; plan tasks that use them):"
    ),
)


def prompts_from_files(texts: Mapping[str, str]) -> RuntimePrompts:
    """Defaults from the prompt files (name without suffix → text), built-ins for the rest."""
    values = {field: getattr(BUILTIN_PROMPTS, field) for field in PROMPT_FILES.values()}
    extra: dict[str, str] = {}
    for name, text in texts.items():
        field = PROMPT_FILES.get(name)
        if field is None:
            extra[name] = text
        elif text.strip():
            values[field] = text
    return RuntimePrompts(**values, extra=extra)


def apply_overrides(defaults: RuntimePrompts, spec: RuntimePromptsSpec | None) -> RuntimePrompts:
    """An agent's ``runtimePrompts`` over the defaults; unset fields keep the default."""
    if spec is None:
        return defaults
    overrides: dict[str, str | None] = {}
    if spec.plan_execute is not None:
        overrides["task_execution_prompt_template"] = spec.plan_execute.task_execution_prompt_template
    if spec.skill is not None:
        overrides["skill_catalog_header"] = spec.skill.catalog_header
        overrides["skill_disclosure_header"] = spec.skill.disclosure_header
        overrides["skill_instructions_label"] = spec.skill.instructions_label
    if spec.tool_appendix is not None:
        overrides["tool_description_title"] = spec.tool_appendix.tool_description_title
        overrides["after_call_hint_title"] = spec.tool_appendix.after_call_hint_title
        overrides["plan_callable_tools_title"] = spec.tool_appendix.callable_tools_title
        overrides["plan_reference_tools_title"] = spec.tool_appendix.reference_tools_title
    values = {field: getattr(defaults, field) for field in PROMPT_FILES.values()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RuntimePrompts(**values, extra=defaults.extra)


def normalize_prompt_text(text: str) -> str:
    """Files end with a newline an author does not mean as part of the prompt."""
    return text.replace("\r\n", "\n").rstrip("\n")
