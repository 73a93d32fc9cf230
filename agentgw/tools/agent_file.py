"""``agent_file_create``: create or update ``agents/<key>.json`` (SPEC §6).

Arguments: ``key`` (or ``agentId``), ``name``, ``icon``, ``description``, ``mode``
(default ``ONESHOT``; case and ``-`` are forgiven), ``modelConfig``, ``toolConfig``,
``skills``, ``skillConfig``, ``toolChoice``, ``budget``, ``plain`` / ``react`` /
``planExecute``, ``runtimePrompts``; other keys are passed through and judged by the
catalog's validation. A convenience ``systemPrompt`` goes into the mode's stage. Each
required stage prompt left out gets ``agent.tools.agent-file-create.default-system-prompt``.

The JSON is validated with ``ctx.validate_agent`` (the catalog's §3.1 rules) before it
is written; the write is atomic (temp file in the same folder, then ``os.replace``).
Answer: ``{ok, key, file, created, updated}``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

from agentgw.errors import ToolError
from agentgw.settings import resolve_dir
from agentgw.tools._args import bad, opt_str, type_name
from agentgw.tools.base import ToolContext

SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_FILE_BYTES = 256 * 1024
_MODES = ("ONESHOT", "REACT", "PLAN_EXECUTE")
_STRINGS = ("name", "icon", "description", "toolChoice")
_OBJECTS = (
    "modelConfig",
    "toolConfig",
    "skillConfig",
    "budget",
    "plain",
    "react",
    "planExecute",
    "runtimePrompts",
)
# Order of the written file: how people read agent files (SPEC §3.1).
_ORDER = (
    "key", "name", "icon", "description", "modelConfig", "toolConfig", "skillConfig", "skills", "mode",
    "toolChoice", "budget", "plain", "react", "planExecute", "runtimePrompts",
)  # fmt: skip


def _key(args: dict[str, Any]) -> str:
    field = "key" if args.get("key") is not None else "agentId"
    key = opt_str(args, field, max_len=200)
    if key is None:
        raise bad("key", "is required (a file name such as 'weather_helper')")
    if not SAFE_KEY.match(key):
        raise bad(
            field, f"must match {SAFE_KEY.pattern} (letters, digits, '_' and '-'; at most 64), got {key!r}"
        )
    return key


def _mode(args: dict[str, Any]) -> str:
    raw = opt_str(args, "mode", max_len=40, default="ONESHOT") or "ONESHOT"
    mode = raw.upper().replace("-", "_")
    if mode not in _MODES:
        raise bad("mode", f"must be one of {', '.join(_MODES)}, got {raw!r}")
    return mode


def _stage(doc: dict[str, Any], name: str) -> dict[str, Any]:
    stage = doc.get(name)
    if stage is None:
        stage = doc[name] = {}
    return stage  # type: ignore[no-any-return]


def build_agent(args: dict[str, Any], default_prompt: str) -> tuple[str, dict[str, Any]]:
    """The key and the agent document the arguments describe (without validation)."""
    # Copied so defaults filled into nested stages never leak back into the caller's args.
    args = copy.deepcopy(args)
    key = _key(args)
    mode = _mode(args)
    doc: dict[str, Any] = {"key": key}
    for name in _STRINGS:
        if args.get(name) is not None and not isinstance(args[name], str):
            raise bad(name, f"must be a string, got {type_name(args[name])}")
    for name in _OBJECTS:
        if args.get(name) is not None and not isinstance(args[name], dict):
            raise bad(name, f"must be an object, got {type_name(args[name])}")
    skills = args.get("skills")
    if skills is not None and (
        not isinstance(skills, list) or not all(isinstance(s, str) and s.strip() for s in skills)
    ):
        raise bad("skills", "must be an array of skill ids")
    for name, value in args.items():
        if name in ("key", "agentId", "mode", "systemPrompt") or value is None:
            continue
        doc[name] = value
    doc["mode"] = mode
    doc.setdefault("name", key)
    prompt = opt_str(args, "systemPrompt", max_len=100_000) or default_prompt
    explicit = args.get("systemPrompt") is not None
    stages = {"ONESHOT": ("plain",), "REACT": ("react",), "PLAN_EXECUTE": ("plan", "execute")}[mode]
    for stage_name in stages:
        if mode == "PLAN_EXECUTE":
            holder = _stage(doc, "planExecute")
            holder = holder.setdefault(stage_name, {})
            if not isinstance(holder, dict):
                raise bad(f"planExecute.{stage_name}", f"must be an object, got {type_name(holder)}")
        else:
            holder = _stage(doc, stage_name)
        current = holder.get("systemPrompt")
        if explicit or not (isinstance(current, str) and current.strip()):
            holder["systemPrompt"] = prompt
    ordered = {k: doc[k] for k in _ORDER if k in doc}
    ordered.update({k: v for k, v in doc.items() if k not in ordered})
    return key, ordered


def _write_atomic(folder: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def agent_file_create(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Create or update an agent definition; see the module docstring."""
    default_prompt = ctx.settings.agent.tools.agent_file_create.default_system_prompt
    key, doc = build_agent(args, default_prompt)
    try:
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    except TypeError as exc:
        raise ToolError(f"agent definition is not JSON-serialisable: {exc}", "invalid_argument") from None
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(
            f"agent definition is too large ({len(data)} bytes, max {MAX_FILE_BYTES})", "invalid_argument"
        )
    folder = ctx.agents_dir or resolve_dir(ctx.settings.agent.catalog.external_dir)
    for other in (f"{key}.yaml", f"{key}.yml"):
        if (folder / other).exists():
            raise ToolError(
                f"agent {key} is defined in {other}; edit that file instead", "agent_file_conflict"
            )
    if ctx.validate_agent is None:
        raise ToolError(
            "agent validation is unavailable; refusing to write an unchecked file", "validation_unavailable"
        )
    problems = ctx.validate_agent(key, data.decode())
    if problems:
        raise ToolError("invalid agent definition: " + "; ".join(problems), "invalid_agent")
    target = folder / f"{key}.json"
    existed = target.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder, target.name, data)
    except OSError as exc:
        raise ToolError(f"cannot write {target.name}: {exc.strerror or exc}", "write_failed") from None
    return {"ok": True, "key": key, "file": target.name, "created": not existed, "updated": existed}
