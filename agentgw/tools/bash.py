"""``_bash_ {command}``: run one command in the configured working directory (SPEC §6, §11.7).

Policy, in order, each refusal answered as ``exitCode: -1`` with the reason in stderr:

1. the command is at most ``max-command-chars`` long;
2. without ``shell-features-enabled`` it must be one plain command: no operators,
   redirections, newlines, unquoted globs, ``$`` expansions or backticks; it is split with
   :func:`shlex.split` and executed without a shell. With shell features it runs under
   ``shell-executable -c``, but expansions that hide what runs (``$(…)``, backticks,
   ``$VAR``, here-documents, brace expansion, process substitution) are still refused;
3. the program of every simple command is in ``allowed-commands`` (exact name; a path
   such as ``/bin/ls`` only if listed as such), and no ``NAME=value`` prefix is used;
4. for path-checked commands (``path-checked-commands``, default: every allowed command)
   each path-like argument — one containing ``/``, starting with ``.`` or ``~``, or naming
   an existing entry of the working directory; option values after ``=`` or attached to a
   short option too — must resolve, symlinks followed, inside ``allowed-paths`` (relative
   to the working directory; empty means the working directory itself). Redirection
   targets are always checked, and shell-mode globs are expanded and each match checked.
   ``find``'s ``-exec`` family is refused, since it runs arbitrary programs.

The child gets a minimal environment (``PATH``, ``LANG``, ``HOME`` = working directory),
its own process group, ``shell-timeout-ms`` and 8000 characters per output stream.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import itertools
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import orjson

from agentgw.settings import BashSettings, resolve_dir
from agentgw.tools._args import req_str
from agentgw.tools._proc import ProcResult, run_bounded
from agentgw.tools._shell_scan import Refused, SimpleCommand, Word, scan, split_commands
from agentgw.tools.base import ToolContext

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
_WRAPPERS = frozenset(
    {"env", "sudo", "doas", "su", "nohup", "nice", "ionice", "timeout", "stdbuf", "setsid", "chroot",
     "xargs", "exec", "eval", "command", "builtin", "source", ".", "time", "busybox", "strace"}
)  # fmt: skip
_EXEC_OPTIONS = {"find": frozenset({"-exec", "-execdir", "-ok", "-okdir"})}
_SAFE_PATHS = frozenset({"/dev/null"})
_GLOB_CHARS = re.compile(r"[*?\[]")
_MAX_GLOB_MATCHES = 10000
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def _answer(exit_code: int, mode: str, wd: str, stdout: str, stderr: str) -> str:
    wd_json = orjson.dumps(wd).decode()
    return f'exitCode: {exit_code}\nmode: {mode}\n"workingDirectory": {wd_json}\nstdout:\n{stdout}\nstderr:\n{stderr}'


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or os.path.commonpath([root, path]) == root for root in roots)


class _Policy:
    """The checks of one call, with the settings resolved once."""

    def __init__(self, cfg: BashSettings, wd: str) -> None:
        self.wd = wd
        self.allowed = {c.strip() for c in cfg.allowed_commands if c.strip()}
        checked = {c.strip() for c in cfg.path_checked_commands if c.strip()}
        self.path_checked = checked or self.allowed
        roots = cfg.allowed_paths or [wd]
        self.roots = [os.path.realpath(os.path.join(wd, os.path.expanduser(p.strip()))) for p in roots]

    # -- programs -------------------------------------------------------------------
    def check_program(self, word: Word) -> str:
        name = word.value
        if _ASSIGNMENT.match(name):
            raise Refused(f"Environment assignments are not allowed: {name.split('=', 1)[0]}=…")
        if word.glob and name != "[":
            raise Refused(f"Command name must be literal: {name}")
        if name not in self.allowed:
            hint = " (command wrappers run other programs)" if os.path.basename(name) in _WRAPPERS else ""
            raise Refused(f"Command not allowed: {name}{hint}")
        return name

    # -- paths ----------------------------------------------------------------------
    def check_path(self, text: str, cwds: list[str]) -> None:
        if text in _SAFE_PATHS:
            return
        for cwd in cwds:
            resolved = os.path.realpath(os.path.join(cwd, text))
            if not _inside(resolved, self.roots):
                raise Refused(f"Path not allowed outside authorized directories: {text}")

    def _path_like(self, text: str) -> bool:
        if not text:
            return False
        if "/" in text or text.startswith((".", "~")):
            return True
        return os.path.lexists(os.path.join(self.wd, text))

    def candidates(self, program: str, args: list[str]) -> list[str]:
        """The arguments of ``program`` that name paths."""
        out: list[str] = []
        options_done = False
        exec_options = _EXEC_OPTIONS.get(os.path.basename(program), frozenset())
        for arg in args:
            if arg in exec_options:
                raise Refused(f"Option not allowed: {program} {arg} (it runs other programs)")
            if options_done or not arg.startswith("-") or arg == "-":
                if arg != "-" and self._path_like(arg):
                    out.append(arg)
                continue
            if arg == "--":
                options_done = True
                continue
            if "=" in arg:
                value = arg.split("=", 1)[1]
            else:
                # "-I../x", "-f/etc/passwd": a value glued to a short option.
                match = re.search(r"[/.~]", arg.lstrip("-"))
                value = arg.lstrip("-")[match.start() :] if match else ""
            if self._path_like(value):
                out.append(value)
        return out

    def expand_word(self, word: Word, cwds: list[str], *, checked: bool) -> list[str]:
        """What bash will make of a shell-mode word: tilde and globs expanded.

        With ``checked``, a glob's literal pattern is checked before the file system is
        scanned, so a pattern such as ``/*/*/*`` never walks outside the allowed paths.
        """
        value = word.value
        if word.tilde:
            if value == "~" or value.startswith("~/"):
                value = self.wd + value[1:]
            else:
                raise Refused(f"Not allowed: tilde expansion of another user's home: {value}")
        if not word.glob:
            return [value]
        for part in value.split("/"):
            # bash lets ".*" match "..", which Python's glob never reports (a leading dot
            # must be written literally, so only such parts can match it).
            if part.startswith(".") and _GLOB_CHARS.search(part) and fnmatch.fnmatchcase("..", part):
                raise Refused(f"Glob pattern may match '..': {value}")
        if checked:
            self.check_path(value, cwds)
        matches: list[str] = []
        for cwd in cwds:
            found = globmod.iglob(value, root_dir=None if os.path.isabs(value) else cwd)
            matches.extend(itertools.islice(found, _MAX_GLOB_MATCHES + 1 - len(matches)))
            if len(matches) > _MAX_GLOB_MATCHES:
                raise Refused(f"Glob pattern matches more than {_MAX_GLOB_MATCHES} entries: {value}")
        # No match: bash passes the pattern on literally, so it is kept as written too.
        return [value, *matches]


def _child_env(wd: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH") or _DEFAULT_PATH, "LANG": "C.UTF-8", "HOME": wd}


def _check_strict(policy: _Policy, command: str) -> list[str]:
    scan(command, shell=False)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise Refused(f"Cannot parse command: {exc}") from None
    if not argv:
        raise Refused("Empty command")
    program = policy.check_program(Word(argv[0], argv[0]))
    if program in policy.path_checked:
        for path in policy.candidates(program, argv[1:]):
            policy.check_path(path, [policy.wd])
    else:
        policy.candidates(program, argv[1:])  # still refuses find -exec
    return argv


def _check_shell(policy: _Policy, command: str) -> None:
    commands: list[SimpleCommand] = split_commands(scan(command, shell=True))
    if not commands:
        raise Refused("Empty command")
    # Every directory a later command may run in: a `cd` may or may not have happened.
    cwds = [policy.wd]
    for simple in commands:
        for op, target in simple.redirects:
            if op.text in (">&", "<&") and (target.value.isdigit() or target.value == "-"):
                continue
            for text in policy.expand_word(target, cwds, checked=True):
                policy.check_path(text, cwds)
        if not simple.words:
            continue
        program = policy.check_program(simple.words[0])
        checked = program in policy.path_checked or program == "cd"
        args: list[str] = []
        for word in simple.words[1:]:
            args.extend(policy.expand_word(word, cwds, checked=checked))
        if program in ("pushd", "popd") or (program == "cd" and "-" in args):
            raise Refused(f"Not supported: {program} {' '.join(args)}".rstrip())
        if checked:
            for path in policy.candidates(program, args):
                policy.check_path(path, cwds)
        else:
            policy.candidates(program, args)
        if program == "cd":
            dirs = [a for a in args if not a.startswith("-")] or [policy.wd]
            for directory in dirs:
                policy.check_path(directory, cwds)
            cwds = cwds + [os.path.realpath(os.path.join(c, d)) for c in cwds for d in dirs]


class _Answer(Exception):
    """A final answer reached before anything ran (a refusal, an unknown program)."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code


def _prepare(cfg: BashSettings, command: str, mode: str, wd: str, env: dict[str, str]) -> list[str]:
    """The argv to run, or :class:`_Answer` with the refusal."""
    if len(command) > cfg.max_command_chars:
        raise _Answer(
            -1, f"Command too long: {len(command)} characters (max-command-chars={cfg.max_command_chars})"
        )
    if not Path(wd).is_dir():
        raise _Answer(-1, f"Working directory does not exist: {wd}")
    policy = _Policy(cfg, os.path.realpath(wd))
    try:
        if mode == "shell":
            _check_shell(policy, command)
            return [cfg.shell_executable, "-c", command]
        argv = _check_strict(policy, command)
    except Refused as exc:
        raise _Answer(-1, str(exc)) from None
    if os.sep not in argv[0]:
        found = shutil.which(argv[0], path=env["PATH"])
        if found is None:
            raise _Answer(127, f"Command not found: {argv[0]}")
        argv[0] = found
    return argv


async def bash_tool(args: dict[str, Any], ctx: ToolContext) -> str:
    """Run ``args["command"]`` under the ``agent.tools.bash`` policy; see the module docstring."""
    cfg = ctx.settings.agent.tools.bash
    command = req_str(args, "command", max_len=max(cfg.max_command_chars, 1) * 4 + 1024)
    mode = "shell" if cfg.shell_features_enabled else "strict"
    wd = str(resolve_dir(cfg.working_directory))
    env = _child_env(wd)
    try:
        argv = _prepare(cfg, command, mode, wd, env)
    except _Answer as answer:
        return _answer(answer.exit_code, mode, wd, "", str(answer))
    try:
        result: ProcResult = await run_bounded(argv, cwd=wd, env=env, timeout_s=cfg.shell_timeout_ms / 1000)
    except OSError as exc:
        return _answer(-1, mode, wd, "", f"Cannot start command: {exc.strerror or exc}")
    stderr = result.stderr.rstrip("\n")
    if result.timed_out:
        stderr += f"\n[TIMEOUT] killed after shell-timeout-ms={cfg.shell_timeout_ms}"
    elif result.overflowed:
        stderr += "\n[KILLED] output exceeded the cap"
    return _answer(result.exit_code, mode, wd, result.stdout.rstrip("\n"), stderr.lstrip("\n"))
