"""The catalog: agent, model, tool, skill, viewport and prompt definitions, hot-reloaded.

Entry points: :class:`agentgw.catalog.registry.Catalog` (the live registry),
:mod:`agentgw.catalog.types` (the resolved values the engine reads),
:func:`agentgw.catalog.prompting.assemble_system_prompt` and
:func:`agentgw.catalog.validate.validate_folders`.
"""
