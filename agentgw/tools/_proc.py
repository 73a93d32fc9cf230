"""Run a child process with a deadline and bounded output.

Shared by ``_bash_`` and ``_skill_run_script_``. The child gets its own process group
so a timeout, an output overflow or a cancelled run kills everything it started; output
is read in chunks and never held beyond a fixed number of bytes, so ``yes`` cannot fill
the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

OUTPUT_CAP_CHARS = 8000
TRUNCATED = "\n[TRUNCATED]"
# After a kill, readers get EOF at once unless a grandchild left the process group and
# kept a pipe open; don't wait for it longer than this.
_KILL_GRACE_S = 2.0


@dataclass(slots=True)
class ProcResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    overflowed: bool = False


def cap_text(text: str, cap: int = OUTPUT_CAP_CHARS) -> str:
    """Cut ``text`` at ``cap`` characters, marking the cut."""
    return text if len(text) <= cap else text[:cap] + TRUNCATED


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # The child leads its own group (start_new_session), so this reaches everything it
    # started. Not proc.kill(): Popen.send_signal() polls, and reaping the child there
    # races asyncio's child watcher, which then reports exit status 255.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return -1
    # asyncio reports "killed by signal N" as -N; shells and users know it as 128+N.
    return 128 - returncode if returncode < 0 else returncode


async def run_bounded(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    timeout_s: float,
    cap_chars: int = OUTPUT_CAP_CHARS,
) -> ProcResult:
    """Run ``argv`` (no shell) and return its exit code and capped output.

    Raises ``OSError`` when the program cannot be started. Cancellation kills the process
    group before it propagates.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    # Enough bytes for cap_chars characters of any UTF-8 text, plus one to see the overflow.
    byte_limit = cap_chars * 4 + 4
    overflowed = False

    async def drain(stream: asyncio.StreamReader | None) -> bytes:
        nonlocal overflowed
        buf = bytearray()
        if stream is None:
            return b""
        while chunk := await stream.read(65536):
            room = byte_limit - len(buf)
            if room > 0:
                buf += chunk[:room]
            if len(chunk) > room and not overflowed:
                overflowed = True
                _kill_group(proc)
            # Keep reading (and dropping) until EOF: a stream left unread pauses its pipe,
            # and asyncio only reports the exit once every pipe has seen EOF.
        return bytes(buf)

    out_task = asyncio.create_task(drain(proc.stdout))
    err_task = asyncio.create_task(drain(proc.stderr))
    wait_task = asyncio.create_task(proc.wait())
    tasks = {out_task, err_task, wait_task}
    timed_out = False
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        if pending:
            timed_out = True
            _kill_group(proc)
    finally:
        # Also on cancellation (a cancelled run): kill, then give the child watcher a moment
        # to reap the process so no zombie or stray pipe outlives the call.
        if proc.returncode is None:
            _kill_group(proc)
        leftover = {task for task in tasks if not task.done()}
        if leftover:
            await asyncio.wait(leftover, timeout=_KILL_GRACE_S)
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def text(task: asyncio.Task[bytes]) -> str:
        if task.cancelled() or task.exception() is not None:
            return ""
        return cap_text(task.result().decode("utf-8", errors="replace"), cap_chars)

    return ProcResult(
        exit_code=_exit_code(proc.returncode),
        stdout=text(out_task),
        stderr=text(err_task),
        timed_out=timed_out,
        overflowed=overflowed,
    )
