"""``_skill_run_script_``: run a skill's script, or inline Python, inside the skill folder.

Arguments (SPEC §6): ``skill``; exactly one of ``script`` (a ``.py`` or ``.sh`` file
under ``skills/<skill>/scripts/``, written ``scripts/calc.py`` or ``calc.py``) and
``pythonCode`` (at most 64 KiB); ``args`` (strings; numbers are turned into strings);
``timeoutMs`` (default 10000, 1…120000).

Answer (SPEC §11.7): ``{tool, skill, scriptSource: file|inline, script, timeoutMs, ok,
timedOut, exitCode, stdout, stderr}`` plus ``error`` when the script was refused. A
missing or unknown skill and malformed arguments are tool errors instead.
Scripts get a minimal environment: ``PATH``, ``LANG``, ``HOME`` (the skill folder),
``PYTHON`` (the gateway's interpreter, for ``.sh`` scripts that call Python) and
``SKILL_DIR``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from agentgw.errors import ToolError
from agentgw.settings import resolve_dir
from agentgw.tools._args import bad, opt_int, opt_str, req_str, type_name
from agentgw.tools._proc import run_bounded
from agentgw.tools.base import ToolContext

TOOL_NAME = "_skill_run_script_"
DEFAULT_TIMEOUT_MS = 10000
MAX_TIMEOUT_MS = 120000
MAX_INLINE_BYTES = 64 * 1024
MAX_ARGS = 256
MAX_ARGS_CHARS = 64 * 1024
_SKILL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def _skill_dir(skill: str, ctx: ToolContext) -> Path:
    if not _SKILL_ID.match(skill) or ".." in skill:
        raise ToolError(f"unknown skill: {skill}", "unknown_skill")
    key = skill.lower()
    if ctx.skills:
        found = ctx.skills.get(key) or ctx.skills.get(skill)
        if found is None:
            known = ", ".join(sorted(ctx.skills)) or "none"
            raise ToolError(f"unknown skill: {skill} (known: {known})", "unknown_skill")
        # The catalog may record the folder or its SKILL.md.
        path = Path(found.path)
        path = path.parent if path.name.upper() == "SKILL.MD" else path
        if not path.is_dir():
            raise ToolError(f"skill folder is missing: {skill}", "unknown_skill")
        return path
    base = ctx.skills_dir or resolve_dir(ctx.settings.agent.skill.external_dir)
    for candidate in (base / skill, base / key):
        real = Path(os.path.realpath(candidate))
        if (candidate / "SKILL.md").is_file() and real.is_relative_to(os.path.realpath(base)):
            return candidate
    raise ToolError(f"unknown skill: {skill}", "unknown_skill")


def _args_list(args: dict[str, Any]) -> list[str]:
    raw = args.get("args")
    if raw is None:
        return []
    if isinstance(raw, str):
        raise bad("args", 'must be an array of strings, e.g. ["--op", "add"], got a string')
    if not isinstance(raw, list):
        raise bad("args", f"must be an array of strings, got {type_name(raw)}")
    if len(raw) > MAX_ARGS:
        raise bad("args", f"has too many items ({len(raw)}, max {MAX_ARGS})")
    out: list[str] = []
    for index, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise bad(f"args[{index}]", f"must be a string, got {type_name(item)}")
        text = str(item)
        if "\x00" in text:
            raise bad(f"args[{index}]", "must not contain NUL characters")
        out.append(text)
    if sum(len(a) for a in out) > MAX_ARGS_CHARS:
        raise bad("args", f"are too long (max {MAX_ARGS_CHARS} characters in total)")
    return out


def _resolve_script(skill_dir: Path, script: str) -> tuple[Path | None, str, str]:
    """(file, display name, refusal reason); the file is None when refused."""
    name = script.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None, script, f"script must be a path relative to the skill's scripts/ folder: {script}"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, script, f"script path must not contain '..': {script}"
    if parts and parts[0] == "scripts":
        parts = parts[1:]
    if not parts:
        return None, script, "script names no file"
    display = "scripts/" + "/".join(parts)
    scripts_root = os.path.realpath(skill_dir / "scripts")
    if not Path(scripts_root).is_relative_to(os.path.realpath(skill_dir)):
        return None, display, "the skill's scripts/ folder points outside the skill folder"
    real = os.path.realpath(os.path.join(scripts_root, *parts))
    if os.path.commonpath([scripts_root, real]) != scripts_root:
        return None, display, f"script resolves outside the skill folder: {script}"
    if not os.path.isfile(real):
        return None, display, f"script not found: {display}"
    if not real.endswith((".py", ".sh")):
        return None, display, f"unsupported script type (only .py and .sh): {display}"
    return Path(real), display, ""


def _env(skill_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "HOME": str(skill_dir),
        "PYTHON": sys.executable,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SKILL_DIR": str(skill_dir),
    }


def _command(path: Path, argv: list[str]) -> list[str]:
    if path.suffix == ".sh":
        return [shutil.which("bash") or "/bin/bash", str(path), *argv]
    # -s: no user site-packages; -B: no __pycache__ written into the skill folder.
    return [sys.executable, "-s", "-B", str(path), *argv]


async def skill_run_script(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Run a skill script or inline Python; see the module docstring."""
    skill = req_str(args, "skill", max_len=128)
    script = opt_str(args, "script", max_len=512)
    code = args.get("pythonCode")
    if code is not None and not isinstance(code, str):
        raise bad("pythonCode", f"must be a string, got {type_name(code)}")
    if code is not None and not code.strip():
        code = None
    if (script is None) == (code is None):
        raise ToolError("give exactly one of script or pythonCode", "invalid_argument")
    timeout_ms = (
        opt_int(args, "timeoutMs", default=DEFAULT_TIMEOUT_MS, minimum=1, maximum=MAX_TIMEOUT_MS)
        or DEFAULT_TIMEOUT_MS
    )
    argv = _args_list(args)
    skill_dir = _skill_dir(skill, ctx)
    source = "file" if script is not None else "inline"
    answer: dict[str, Any] = {
        "tool": TOOL_NAME,
        "skill": skill.lower(),
        "scriptSource": source,
        "script": script or "inline.py",
        "timeoutMs": timeout_ms,
        "ok": False,
        "timedOut": False,
        "exitCode": -1,
        "stdout": "",
        "stderr": "",
    }

    def refuse(reason: str) -> dict[str, Any]:
        return {**answer, "stderr": reason, "error": reason}

    tmp_dir: str | None = None
    try:
        if code is None:
            path, answer["script"], reason = _resolve_script(skill_dir, script or "")
            if path is None:
                return refuse(reason)
        else:
            size = len(code.encode("utf-8", errors="surrogatepass"))
            if size > MAX_INLINE_BYTES:
                return refuse(f"pythonCode is too large ({size} bytes, max {MAX_INLINE_BYTES})")
            tmp_dir = tempfile.mkdtemp(prefix="agentgw-skill-inline-")  # mode 0700
            path = Path(tmp_dir) / "inline.py"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as fh:
                fh.write(code)
        try:
            result = await run_bounded(
                _command(path, argv),
                cwd=str(skill_dir),
                env=_env(skill_dir),
                timeout_s=timeout_ms / 1000,
            )
        except OSError as exc:
            return refuse(f"cannot start script: {exc.strerror or exc}")
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    stderr = result.stderr
    if result.timed_out:
        stderr = (stderr + f"\n[TIMEOUT] killed after timeoutMs={timeout_ms}").lstrip("\n")
    elif result.overflowed:
        stderr = (stderr + "\n[KILLED] output exceeded the cap").lstrip("\n")
    return {
        **answer,
        "ok": result.exit_code == 0 and not result.timed_out and not result.overflowed,
        "timedOut": result.timed_out,
        "exitCode": result.exit_code,
        "stdout": result.stdout,
        "stderr": stderr,
    }
