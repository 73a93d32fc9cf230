"""``agentgw validate``: check every definition folder (SPEC §10.17).

The CLI prints each error as ``file: field: reason`` and exits 1 when there is any.
"""

from __future__ import annotations

from agentgw.catalog.registry import validate_errors
from agentgw.errors import DefinitionError
from agentgw.settings import Settings


def validate_folders(settings: Settings) -> list[DefinitionError]:
    """Load every folder named by ``settings`` as the gateway would; return every problem found.

    Nothing is written: the built-in models are checked as if they had been installed.
    """
    return validate_errors(settings)
