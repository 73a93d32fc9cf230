"""The system prompt a stage sends (SPEC §11.5).

Order, parts joined by a blank line, empty parts left out:

1. the stage prompt;
2. the skill catalog (``catalogHeader``, then ``skillId:`` / ``name:`` / ``description:``
   per skill, skills separated by ``---``);
3. the instructions of the skills used so far in the run (``disclosureHeader``, then per
   skill ``skillId:`` / ``name:`` / ``instructionsLabel`` / the instructions);
4. the tool appendix (``toolDescriptionTitle``, ``- <name>: <description>`` for the stage's
   backend tools, sorted by name); plan stages then list the execute stage's other tools
   under the "for reference, not callable" title and their plan tools under the
   callable-tools title;
5. the after-call hints (``afterCallHintTitle``, ``- <name>: <hint>``), except in plan stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from agentgw.catalog.capabilities import PLAN_TOOLS
from agentgw.catalog.types import Agent, SkillDef, Stage, ToolDef

if TYPE_CHECKING:
    from agentgw.catalog.snapshot import CatalogSnapshot

SKILL_SEPARATOR = "---"
PROMPT_CACHE_LIMIT = 1024  # assembled prompts kept per catalog snapshot


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tool_lines(tools: Iterable[ToolDef], attr: str = "description") -> list[str]:
    return [
        f"- {tool.name}: {_one_line(getattr(tool, attr))}" for tool in sorted(tools, key=lambda t: t.name)
    ]


def _section(title: str, lines: list[str]) -> str:
    if not lines:
        return ""
    return "\n".join([title, *lines]) if title.strip() else "\n".join(lines)


def _skill_catalog(agent: Agent, skills: dict[str, SkillDef]) -> str:
    blocks = []
    for skill_id in agent.skills:
        skill = skills.get(skill_id)
        if skill is None:
            continue
        blocks.append(f"skillId: {skill.id}\nname: {skill.name}\ndescription: {_one_line(skill.description)}")
    if not blocks:
        return ""
    return agent.runtime_prompts.skill_catalog_header + "\n" + f"\n{SKILL_SEPARATOR}\n".join(blocks)


def _skill_disclosure(agent: Agent, skills: dict[str, SkillDef], disclosed: Sequence[str]) -> str:
    prompts = agent.runtime_prompts
    blocks: list[str] = []
    seen: set[str] = set()
    for raw in disclosed:
        skill_id = raw.strip().lower()
        skill = skills.get(skill_id)
        if skill is None or skill_id in seen:
            continue  # once per skill per run
        seen.add(skill_id)
        blocks.append(
            f"skillId: {skill.id}\nname: {skill.name}\n{prompts.skill_instructions_label}\n{skill.instructions}"
        )
    if not blocks:
        return ""
    return prompts.skill_disclosure_header + "\n" + f"\n{SKILL_SEPARATOR}\n".join(blocks)


def _backends(stage: Stage | None) -> list[ToolDef]:
    return [tool for tool in stage.tools if tool.kind == "backend"] if stage is not None else []


def tool_appendix(agent: Agent, stage: Stage) -> list[str]:
    """The tool parts of the prompt (appendix and hints) for ``stage``."""
    prompts = agent.runtime_prompts
    backends = _backends(stage)
    if stage.name != "plan":
        return [
            _section(prompts.tool_description_title, _tool_lines(backends)),
            _section(
                prompts.after_call_hint_title,
                _tool_lines([t for t in backends if t.after_call_hint], "after_call_hint"),
            ),
        ]
    own = [t for t in backends if t.name not in PLAN_TOOLS]
    plan_tools = [t for t in backends if t.name in PLAN_TOOLS]
    callable_names = {t.name for t in own}
    # Execute tools the plan stage cannot call itself: described so tasks can use them.
    execute = [
        t
        for t in _backends(agent.stages.get("execute"))
        if t.name not in PLAN_TOOLS and t.name not in callable_names
    ]
    return [
        _section(prompts.tool_description_title, _tool_lines(own)),
        _section(prompts.plan_reference_tools_title, _tool_lines(execute)),
        _section(prompts.plan_callable_tools_title, _tool_lines(plan_tools)),
    ]


def assemble_system_prompt(
    agent: Agent, stage: Stage, snapshot: CatalogSnapshot, disclosed_skills: Sequence[str] = ()
) -> str:
    """The full system prompt of ``stage``; ``disclosed_skills`` are the skills used so far in the run.

    Skills are looked up in ``snapshot`` (the run's snapshot), so a run keeps the texts it
    started with. Everything it reads is immutable, so the result is kept in the snapshot.
    """
    key = (agent.key, stage.name, tuple(disclosed_skills))
    cache = snapshot.prompt_cache
    hit = cache.get(key)
    if hit is not None and hit[0] is agent and hit[1] is stage:
        return hit[2]
    prompt = _assemble(agent, stage, snapshot, disclosed_skills)
    if len(cache) >= PROMPT_CACHE_LIMIT:
        cache.clear()  # many skill combinations in one snapshot: start over, never grow unbounded
    cache[key] = (agent, stage, prompt)
    return prompt


def _assemble(agent: Agent, stage: Stage, snapshot: CatalogSnapshot, disclosed_skills: Sequence[str]) -> str:
    parts = [
        stage.system_prompt.strip("\n"),
        _skill_catalog(agent, snapshot.skills),
        _skill_disclosure(agent, snapshot.skills, disclosed_skills),
        *tool_appendix(agent, stage),
    ]
    return "\n\n".join(part for part in parts if part.strip())
