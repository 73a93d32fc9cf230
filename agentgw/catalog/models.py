"""Model definitions (SPEC §3.2) and the built-in models shipped inside the package."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentgw.catalog.files import key_problem
from agentgw.catalog.schemas import ModelSpec, validation_problems
from agentgw.catalog.types import ModelDef, Pricing, PricingTier
from agentgw.errors import DefinitionError

logger = logging.getLogger(__name__)

BUILTIN_MODELS_DIR = Path(__file__).resolve().parent.parent / "builtin_models"


def builtin_model_files() -> dict[str, bytes]:
    """File name → content of every built-in model."""
    out: dict[str, bytes] = {}
    try:
        paths = sorted(BUILTIN_MODELS_DIR.glob("*.json"))
    except OSError:
        return out
    for path in paths:
        try:
            out[path.name] = path.read_bytes()
        except OSError as exc:  # a broken install should not stop the gateway
            logger.warning("cannot read built-in model %s: %s", path, exc)
    return out


def install_builtin_models(models_dir: Path) -> list[str]:
    """Copy the built-in models into ``models_dir``: same name is overwritten, others kept.

    Files whose content is already identical are left alone (no mtime churn for the
    watcher). Writes are atomic. Returns the names written.
    """
    written: list[str] = []
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("cannot create the models folder %s: %s", models_dir, exc)
        return written
    for name, data in builtin_model_files().items():
        target = models_dir / name
        try:
            if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=models_dir)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(name)
        except OSError as exc:
            logger.warning("cannot install built-in model %s into %s: %s", name, models_dir, exc)
    return written


def parse_model(
    doc: Any, file: str, stem: str, version: str
) -> tuple[ModelDef | None, list[DefinitionError], str]:
    """A parsed model file into a :class:`ModelDef`; returns (model, errors, key)."""
    if not isinstance(doc, dict):
        return None, [DefinitionError(file, "(root)", "a model definition must be a JSON object")], stem
    raw_key = doc.get("key")
    key = raw_key.strip() if isinstance(raw_key, str) and raw_key.strip() else stem
    try:
        spec = ModelSpec.model_validate(doc)
    except ValidationError as exc:
        return None, [DefinitionError(file, f, r) for f, r in validation_problems(exc)], key
    errors: list[DefinitionError] = []
    problem = key_problem(spec.key)
    if problem:
        errors.append(DefinitionError(file, "key", problem))
    if not spec.provider.strip():
        errors.append(DefinitionError(file, "provider", "must name a provider of agent.providers"))
    if errors:
        return None, errors, key
    pricing = spec.pricing
    model = ModelDef(
        key=spec.key,
        provider=spec.provider.strip(),
        protocol=spec.protocol,
        model_id=spec.model_id,
        is_reasoner=spec.is_reasoner,
        is_function=spec.is_function,
        max_tokens=spec.max_tokens,
        max_input_tokens=spec.max_input_tokens,
        max_output_tokens=spec.max_output_tokens,
        echo_reasoning=spec.echo_reasoning,
        pricing=Pricing(
            prompt_points_per_1k=pricing.prompt_points_per_1k,
            completion_points_per_1k=pricing.completion_points_per_1k,
            per_call_points=pricing.per_call_points,
            price_ratio=pricing.price_ratio,
            tiers=tuple(
                PricingTier(
                    min_input_tokens=t.min_input_tokens,
                    max_input_tokens=t.max_input_tokens,
                    prompt_points_per_1k=t.prompt_points_per_1k,
                    completion_points_per_1k=t.completion_points_per_1k,
                    per_call_points=t.per_call_points,
                    price_ratio=t.price_ratio,
                )
                for t in pricing.tiers
            ),
        ),
        version=version,
        file=file,
    )
    return model, [], spec.key
