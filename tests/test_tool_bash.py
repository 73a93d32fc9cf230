"""``_bash_``: allowed commands run; every escape is refused with a clear reason (SPEC §6, §11.7)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from agentgw.settings import load_settings
from agentgw.tools import execute_builtin
from agentgw.tools.base import ToolContext

COMMANDS = "ls,cat,echo,yes,sleep,find,grep,head,wc,cd,true"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """work/ (the working directory) with data/ allowed; secrets and an outside dir beside it."""
    work = tmp_path / "work"
    data = work / "data"
    data.mkdir(parents=True)
    (data / "notes.txt").write_text("hello world\nsecond line\n")
    (data / "sub").mkdir()
    (data / "sub" / "deep.txt").write_text("deep\n")
    (work / "private.txt").write_text("not in allowed paths\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET\n")
    (data / "link").symlink_to(outside)
    (data / "file_link.txt").symlink_to(tmp_path / "secret.txt")
    return work


def make_ctx(work: Path, **overrides: Any) -> ToolContext:
    base: dict[str, Any] = {
        "agent.tools.bash.working-directory": str(work),
        "agent.tools.bash.allowed-paths": "data",
        "agent.tools.bash.allowed-commands": COMMANDS,
        "agent.tools.bash.shell-timeout-ms": 20000,
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    settings = load_settings(files=(), environ={}, overrides=base)
    return ToolContext(settings=settings, run_id="run1", chat_id="chat1", tool_call_id="call1")


_ANSWER = re.compile(
    r"^exitCode: (?P<code>-?\d+)\nmode: (?P<mode>strict|shell)\n\"workingDirectory\": \"(?P<wd>[^\"]*)\"\n"
    r"stdout:\n(?P<stdout>.*)\nstderr:\n(?P<stderr>.*)$",
    re.S,
)


async def run(ctx: ToolContext, command: str) -> dict[str, Any]:
    text, ok = await execute_builtin("_bash_", {"command": command}, ctx)
    assert ok, text
    match = _ANSWER.match(text)
    assert match, f"answer does not follow §11.7: {text!r}"
    out: dict[str, Any] = match.groupdict()
    out["code"] = int(out["code"])
    return out


async def test_allowed_command_runs_in_working_directory(ws: Path) -> None:
    res = await run(make_ctx(ws), "ls data")
    assert res["code"] == 0
    assert res["mode"] == "strict"
    assert res["wd"] == str(ws)
    assert res["stdout"].split("\n") == sorted(os.listdir(ws / "data"))
    assert res["stderr"] == ""


async def test_quoted_arguments_are_passed_literally(ws: Path) -> None:
    res = await run(make_ctx(ws), "echo 'a;b|c && $HOME `x`' \"two words\"")
    assert res["code"] == 0
    assert res["stdout"] == "a;b|c && $HOME `x` two words"


async def test_nonzero_exit_and_stderr(ws: Path) -> None:
    res = await run(make_ctx(ws), "cat data/missing.txt")
    assert res["code"] != 0
    assert "missing.txt" in res["stderr"]


async def test_default_settings_refuse_every_command(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.allowed-commands": ""})
    res = await run(ctx, "ls data")
    assert res["code"] == -1
    assert res["stderr"] == "Command not allowed: ls"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("rm -rf data", "Command not allowed: rm"),
        ("/bin/cat data/notes.txt", "Command not allowed: /bin/cat"),
        ("cat ../secret.txt", "Path not allowed outside authorized directories: ../secret.txt"),
        (
            "cat data/../../secret.txt",
            "Path not allowed outside authorized directories: data/../../secret.txt",
        ),
        ("cat private.txt", "Path not allowed outside authorized directories: private.txt"),
        ("cat /etc/passwd", "Path not allowed outside authorized directories: /etc/passwd"),
        ("ls data/link", "Path not allowed outside authorized directories: data/link"),
        ("cat data/link/secret.txt", "Path not allowed outside authorized directories: data/link/secret.txt"),
        ("cat data/file_link.txt", "Path not allowed outside authorized directories: data/file_link.txt"),
        ("cat -- ../secret.txt", "Path not allowed outside authorized directories: ../secret.txt"),
        ("grep -f/etc/passwd data/notes.txt", "Path not allowed outside authorized directories: /etc/passwd"),
        (
            "grep --file=../secret.txt x data",
            "Path not allowed outside authorized directories: ../secret.txt",
        ),
        ("ls ~", "Path not allowed outside authorized directories: ~"),
        ("echo $(cat ../secret.txt)", "command substitution"),
        ("echo `id`", "Command substitution not allowed"),
        ('echo "$(id)"', "command substitution"),
        ("ls data; cat ../secret.txt", "Shell syntax not allowed: ';'"),
        ("ls data | cat", "Shell syntax not allowed: '|'"),
        ("ls data && cat ../secret.txt", "Shell syntax not allowed: '&&'"),
        ("ls nothing || cat ../secret.txt", "Shell syntax not allowed: '||'"),
        ("echo pwned > data/pwned.txt", "Shell syntax not allowed: '>'"),
        ("cat < data/notes.txt", "Shell syntax not allowed: '<'"),
        ("sleep 1 &", "Shell syntax not allowed: '&'"),
        ("ls data\ncat ../secret.txt", "Shell syntax not allowed: a newline"),
        ("FOO=1 ls data", "Environment assignments are not allowed: FOO="),
        ("env ls", "Command not allowed: env (command wrappers run other programs)"),
        ("sudo ls", "Command not allowed: sudo"),
        ("echo $HOME", "variable expansion $HOME"),
        ("echo ${HOME}", "parameter expansion"),
        ("cat data/*", "Glob patterns are not expanded"),
        ("find data -exec cat {} \\;", "Option not allowed: find -exec"),
        ("cat 'unterminated", "Unterminated single quote"),
        ("echo <(id)", "Process substitution not allowed"),
    ],
)
async def test_escapes_are_refused(ws: Path, command: str, reason: str) -> None:
    res = await run(make_ctx(ws), command)
    assert res["code"] == -1
    assert res["stdout"] == ""
    assert reason in res["stderr"]
    assert not (ws / "data" / "pwned.txt").exists()


async def test_command_over_max_chars_is_refused(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.max-command-chars": 40})
    ok = await run(ctx, "echo " + "x" * 35)
    assert ok["code"] == 0
    res = await run(ctx, "echo " + "x" * 36)
    assert res["code"] == -1
    assert res["stderr"] == "Command too long: 41 characters (max-command-chars=40)"


async def test_endless_output_is_capped_and_killed(ws: Path) -> None:
    res = await run(make_ctx(ws), "yes")
    assert res["stdout"].endswith("\n[TRUNCATED]")
    assert len(res["stdout"]) == 8000 + len("\n[TRUNCATED]")
    assert set(res["stdout"][:8000].split("\n")) <= {"y", ""}
    assert "[KILLED] output exceeded the cap" in res["stderr"]
    assert "[TIMEOUT]" not in res["stderr"]
    assert res["code"] == 128 + 9


async def test_long_finite_output_is_truncated(ws: Path) -> None:
    (ws / "data" / "big.txt").write_text("abcdefghij" * 2000)
    res = await run(make_ctx(ws), "cat data/big.txt")
    assert res["code"] == 0
    assert res["stdout"] == "abcdefghij" * 800 + "\n[TRUNCATED]"


async def test_timeout_kills_the_command(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.shell-timeout-ms": 300})
    res = await run(ctx, "sleep 5")
    assert res["code"] == 128 + 9
    assert res["stderr"] == "[TIMEOUT] killed after shell-timeout-ms=300"


async def test_child_environment_is_minimal(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTGW_TEST_SECRET", "s3cr3t-value")
    ctx = make_ctx(ws, **{"agent.tools.bash.allowed-commands": "env"})
    res = await run(ctx, "env")
    assert res["code"] == 0
    names = {line.split("=", 1)[0] for line in res["stdout"].split("\n") if line}
    assert names == {"PATH", "LANG", "HOME"}
    assert f"HOME={ws}" in res["stdout"].split("\n")
    assert "s3cr3t-value" not in res["stdout"]


async def test_unknown_program_is_reported(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.allowed-commands": "no_such_program_agentgw"})
    res = await run(ctx, "no_such_program_agentgw")
    assert res["code"] == 127
    assert res["stderr"] == "Command not found: no_such_program_agentgw"


async def test_only_path_checked_commands_have_their_paths_checked(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.path-checked-commands": "cat"})
    listed = await run(ctx, f"ls {ws.parent}")
    assert listed["code"] == 0
    assert "secret.txt" in listed["stdout"].split("\n")
    refused = await run(ctx, f"cat {ws.parent}/secret.txt")
    assert refused["code"] == -1
    assert "Path not allowed outside authorized directories" in refused["stderr"]


async def test_empty_allowed_paths_mean_the_working_directory(ws: Path) -> None:
    ctx = make_ctx(ws, **{"agent.tools.bash.allowed-paths": ""})
    res = await run(ctx, "cat private.txt")
    assert res["stdout"] == "not in allowed paths"
    refused = await run(ctx, "cat ../secret.txt")
    assert refused["code"] == -1


async def test_missing_working_directory_is_refused(tmp_path: Path) -> None:
    res = await run(make_ctx(tmp_path / "nowhere"), "ls")
    assert res["code"] == -1
    assert "Working directory does not exist" in res["stderr"]


async def test_bad_arguments_are_tool_errors(ws: Path) -> None:
    for args, field in (({}, "command: is required"), ({"command": ["ls"]}, "command: must be a string")):
        text, ok = await execute_builtin("_bash_", args, make_ctx(ws))
        assert not ok
        assert field in text
        assert '"tool":"_bash_"' in text


# -- shell features -------------------------------------------------------------------


def shell_ctx(ws: Path, **overrides: Any) -> ToolContext:
    return make_ctx(ws, **{"agent.tools.bash.shell-features-enabled": True, **overrides})


async def test_shell_mode_runs_pipes_lists_and_redirects(ws: Path) -> None:
    ctx = shell_ctx(ws)
    res = await run(ctx, "cat data/notes.txt | grep second && echo done > data/out.txt; cat data/out.txt")
    assert res["mode"] == "shell"
    assert res["code"] == 0
    assert res["stdout"] == "second line\ndone"
    assert (ws / "data" / "out.txt").read_text() == "done\n"
    merged = await run(ctx, "cat data/missing 2>&1 | grep -c missing")
    assert merged["stdout"] == "1"
    quiet = await run(ctx, "cat data/missing 2>/dev/null || echo fallback")
    assert quiet["stdout"] == "fallback"
    assert quiet["stderr"] == ""


async def test_shell_mode_globs_are_expanded_and_checked(ws: Path) -> None:
    ctx = shell_ctx(ws)
    ok = await run(ctx, "cat data/n*.txt data/s?b/*")
    assert ok["code"] == 0
    assert ok["stdout"] == "hello world\nsecond line\ndeep"
    for pattern in ("data/*", "data/*.txt"):  # both match a symlink that leaves data/
        refused = await run(ctx, f"cat {pattern}")
        assert refused["code"] == -1
        assert "Path not allowed outside authorized directories: data/" in refused["stderr"]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("ls data | rm -rf data", "Command not allowed: rm"),
        ("true && cat ../secret.txt", "Path not allowed outside authorized directories: ../secret.txt"),
        ("echo x > ../escaped.txt", "Path not allowed outside authorized directories: ../escaped.txt"),
        ("cat < /etc/passwd", "Path not allowed outside authorized directories: /etc/passwd"),
        ("echo $(id)", "command substitution"),
        ("echo `id`", "Command substitution not allowed"),
        ("cat $HOME/../secret.txt", "variable expansion $HOME"),
        ("X=../secret.txt; cat x", "Environment assignments are not allowed: X="),
        ("FOO=1 ls", "Environment assignments are not allowed: FOO="),
        ("cat <<EOF\nx\nEOF", "Here-documents"),
        ("cat <(id)", "Process substitution not allowed"),
        ("cat {data,..}/secret.txt", "Brace expansion"),
        ("ls ~root", "tilde expansion of another user's home"),
        ("cd .. && ls", "Path not allowed outside authorized directories: .."),
        (
            "cd data && cat ../../secret.txt",
            "Path not allowed outside authorized directories: ../../secret.txt",
        ),
        ("cd data/sub && cat ../../private.txt", "Path not allowed outside authorized directories"),
        ("ls data/link/*", "Path not allowed outside authorized directories"),
        ("ls data/.*", "Glob pattern may match '..': data/.*"),
        ("ls data/.?", "Glob pattern may match '..'"),
        ("cat /*/*/*", "Path not allowed outside authorized directories: /*/*/*"),
        ("cd data && cat ../*", "Path not allowed outside authorized directories"),
        ("find data -execdir id \\;", "Option not allowed: find -execdir"),
        ("( env )", "Command not allowed: env"),
    ],
)
async def test_shell_mode_escapes_are_refused(ws: Path, command: str, reason: str) -> None:
    res = await run(shell_ctx(ws), command)
    assert res["code"] == -1
    assert reason in res["stderr"]
    assert not (ws.parent / "escaped.txt").exists()


async def test_shell_mode_cd_inside_allowed_paths(ws: Path) -> None:
    res = await run(shell_ctx(ws), "cd data/sub && cat deep.txt")
    assert res["code"] == 0
    assert res["stdout"] == "deep"


async def test_shell_mode_endless_pipeline_is_killed(ws: Path) -> None:
    res = await run(shell_ctx(ws), "yes | cat")
    assert res["stdout"].endswith("\n[TRUNCATED]")
    assert "[KILLED]" in res["stderr"]


async def test_shell_mode_timeout_kills_the_process_group(ws: Path) -> None:
    ctx = shell_ctx(ws, **{"agent.tools.bash.shell-timeout-ms": 300})
    res = await run(ctx, "sleep 5 | sleep 5; echo never")
    assert "never" not in res["stdout"]
    assert "[TIMEOUT] killed after shell-timeout-ms=300" in res["stderr"]
