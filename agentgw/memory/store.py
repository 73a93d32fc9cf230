"""The chat store: one JSONL file per chat plus an index (SPEC §7, §11.8).

Layout under ``memory.chat.dir``::

    {chatId}.json     the chat, JSON Lines, append-only (format V3.1, see ``format.py``)
    _chats.jsonl      the index: one JSON object per line, the last line of a chatId wins
    _chats.jsonl.lock flock(2) target serialising index writers across processes

Durability and concurrency:

- Every line is written with one ``os.write`` on an ``O_APPEND`` descriptor, so lines from
  several tasks or processes never interleave (Linux serialises appends to a regular file).
  Within a process one asyncio lock per chat orders the writers.
- No fsync per line: a crash may lose or tear the last line. A torn last line is skipped on
  read, and the next append starts with a newline so it never glues onto the fragment.
  Rewrites (index compaction, ``trim-file``) go to a temp file that is fsynced and then
  ``os.replace``-d, so a reader sees the old file or the new one, never a mix.
- Index updates are rare (chat created, run ended, chat deleted). A writer takes an
  exclusive flock, re-reads the index tail, appends one full record (or a ``_deleted``
  tombstone), and compacts the file when stale lines outnumber live ones. Readers take no
  lock: they only ever consume complete lines.
- ``trim-file`` and deletion replace or remove a chat file; across instances the per-chat
  run lock (one run per chat at a time) is what keeps them from racing an append.
- A run's first write (its ``query`` line, and the chat's file and index record for a new
  chat) is done *soon*, not now (:meth:`ChatStore.start_run`): ``SOON_S`` later, so a burst
  of queries gets its first deltas before the disk work (a new chat file alone costs
  10-40 µs of CPU). Every other call that reads or writes that chat in this process does
  the waiting write first, so no reader here sees a run without its question and the lines
  stay in order; other processes see it up to ``SOON_S`` late. A crash inside that window
  loses the run's question along with the run.

The window is read backwards from the end of the file, so loading the last ``k`` runs costs
the same for a chat of 20 runs as for one of 10,000.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import functools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from agentgw.errors import RequestError, SettingsError
from agentgw.memory.format import normalize_line, normalize_plan, now_ms
from agentgw.settings import Settings, resolve_dir
from agentgw.usage import UsageTotals

log = logging.getLogger(__name__)

INDEX_NAME = "_chats.jsonl"
CHAT_NAME_MAX = 30
_BLOCK_SIZE = 64 * 1024
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PUBLIC_FIELDS = ("chatId", "chatName", "firstAgentKey", "firstAgentName", "createdAt", "updatedAt")


class ChatNotFound(RequestError):
    """The chat has no file (never created, or deleted). Answered as 404."""

    def __init__(self, chat_id: str) -> None:
        super().__init__(404, f"chat not found: {chat_id}")
        self.chat_id = chat_id


def parse_chat_id(value: object) -> str:
    """Validate a chat id: a UUID in its 8-4-4-4-12 hex form, returned lower-cased.

    Only this form is accepted, so a chat id can never name a path outside the chat folder.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not _UUID_RE.match(text):
        shown = repr(value) if not isinstance(value, str) else repr(value[:80])
        raise RequestError(
            400, f"invalid chatId {shown}: expected a UUID like 123e4567-e89b-12d3-a456-426614174000"
        )
    return text.lower()


def chat_name(message: str) -> str:
    """A chat's name from its first message: whitespace runs collapsed, cut to 30 code points."""
    return " ".join(message.split())[:CHAT_NAME_MAX]


chat_name_of = chat_name  # the name the query route imports


def can_access(owner: str | None, principal: str | None) -> bool:
    """Whether ``principal`` may read a chat owned by ``owner``.

    Without auth (no principal) every chat is reachable. A chat created while auth was off
    has no owner and stays reachable (the query route treats it the same way); otherwise
    only the owner's.
    """
    return principal is None or owner is None or owner == principal


@dataclass(slots=True)
class StoredRun:
    """The lines of one run, in file order."""

    run_id: str
    query: dict[str, Any] | None = None  # the ``query`` line (``None`` for a run whose query line is lost)
    steps: list[dict[str, Any]] = field(default_factory=list)


def group_runs(lines: list[dict[str, Any]]) -> list[StoredRun]:
    """Group lines by ``runId`` in order of first appearance."""
    runs: dict[str, StoredRun] = {}
    for line in lines:
        run_id = line.get("runId")
        if not isinstance(run_id, str):
            continue
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = StoredRun(run_id)
        kind = line.get("_type")
        if kind == "query":
            if run.query is None:
                run.query = line
        elif kind == "step":
            run.steps.append(line)
    return list(runs.values())


def _check_charset(name: str) -> str:
    try:
        codec = codecs.lookup(name)
    except LookupError as exc:
        raise SettingsError("memory.chat.charset", f"unknown charset {name!r}") from exc
    # Lines are split on b"\n" and JSON punctuation is matched as bytes: the charset must
    # encode ASCII as ASCII (UTF-16/32 do not).
    if "{\n".encode(codec.name) != b"{\n":
        raise SettingsError("memory.chat.charset", f"charset {name!r} is not ASCII-compatible")
    return codec.name


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _in_turn(*calls: Callable[[], object]) -> None:
    for call in calls:
        call()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_atomically(target: Path, write: Callable[[int], None]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


class _Codec:
    """JSON lines in the configured charset (UTF-8 takes the fast path)."""

    def __init__(self, charset: str) -> None:
        self.charset = charset
        self.utf8 = charset == "utf-8"

    def encode(self, obj: Any) -> bytes:
        raw = orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
        if not self.utf8:
            raw = raw.decode("utf-8").encode(self.charset, errors="replace")
        return raw + b"\n"

    def decode(self, raw: bytes) -> dict[str, Any] | None:
        raw = raw.strip()
        if not raw:
            return None
        try:
            obj = orjson.loads(raw if self.utf8 else raw.decode(self.charset))
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            return None
        return obj if isinstance(obj, dict) else None


class _ChatIndex:
    """``_chats.jsonl``: where each chat's latest record is, kept current by reading only
    what was appended.

    Memory holds a position per chat (offset and length of its latest line), not the
    record: a record is read back (one ``pread``) when it is asked for, except the few
    hundred this process wrote last. Measured: 224 bytes per chat instead of 801 for the
    parsed records, so 100,000 chats take 22 MB, not 80. The lock file and
    the index stay open between updates (an update is a flock, a stat, a read, one
    write); a compaction here or in another process replaces the index file, which the
    inode in the stat shows, and the index is then reopened and read again. Readers keep
    the descriptor they read positions from, so a concurrent compaction elsewhere cannot
    shift a record under them.
    """

    def __init__(self, path: Path, codec: _Codec) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.codec = codec
        self._where: dict[str, tuple[int, int]] = {}  # chatId → (offset, length) of its latest line
        # The records this process wrote last, by chat: a run's end reads what its start wrote.
        self._recent: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._ino: int | None = None  # inode of the file the positions are in
        self._offset = 0  # bytes of it consumed (always just after a newline)
        self._size = 0  # its size at the last refresh
        self._lines = 0
        self._fd: int | None = None  # the index, O_APPEND, for reading and appending
        self._fd_ino: int | None = None
        self._lock_fd: int | None = None
        self._mutex = threading.Lock()

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._where, self._ino, self._offset, self._size, self._lines = {}, None, 0, 0, 0
            self._recent = {}
            return
        if st.st_ino != self._ino or st.st_size < self._offset:
            # Replaced by a compaction (here or in another process): read it again whole.
            self._where, self._ino, self._offset, self._lines = {}, st.st_ino, 0, 0
            self._recent = {}
        self._size = st.st_size
        fd = self._index_fd(st.st_ino)
        if self._fd_ino != st.st_ino:
            return self._refresh()  # replaced again between the stat and the open
        if st.st_size <= self._offset:
            return
        data = os.pread(fd, st.st_size - self._offset, self._offset)
        end = data.rfind(b"\n")
        if end < 0:
            return  # only an incomplete line so far: wait for its newline
        pos = self._offset
        for raw in data[:end].split(b"\n"):
            self._apply(raw, pos)
            pos += len(raw) + 1
        self._offset += end + 1

    def _index_fd(self, ino: int | None) -> int:
        """The open index file, reopened when the file at the path is another one."""
        if self._fd is not None and self._fd_ino == ino and ino is not None:
            return self._fd
        self._close_fd()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._fd, self._fd_ino = fd, os.fstat(fd).st_ino
        return fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = self._fd_ino = None

    def _lock(self) -> int:
        fd = self._lock_fd
        if fd is not None and os.fstat(fd).st_nlink == 0:
            os.close(fd)  # the folder was emptied under us: lock the file that is there now
            fd = None
        if fd is None:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._lock_fd = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def close(self) -> None:
        with self._mutex:
            self._close_fd()
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
                self._lock_fd = None

    def __del__(self) -> None:
        self.close()

    def _apply(self, raw: bytes, pos: int) -> None:
        record = self.codec.decode(raw)
        if record is None:
            return
        chat_id = record.get("chatId")
        if not isinstance(chat_id, str):
            return
        self._lines += 1
        if record.get("_deleted"):
            self._where.pop(chat_id, None)
        else:
            self._where[chat_id] = (pos, len(raw))

    def _read(self, chat_id: str) -> dict[str, Any] | None:
        """The chat's latest record (a fresh dict the caller may change), or ``None``."""
        where = self._where.get(chat_id)
        if where is None or self._fd is None:
            return None
        recent = self._recent.get(chat_id)
        if recent is not None and recent[0] == where:
            return dict(recent[1])
        return self.codec.decode(os.pread(self._fd, where[1], where[0]))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._mutex:
            self._refresh()
            if self._fd is None or not self._where:
                return {}
            data = os.pread(self._fd, self._offset, 0)
            out: dict[str, dict[str, Any]] = {}
            for chat_id, (pos, length) in self._where.items():
                record = self.codec.decode(data[pos : pos + length])
                if record is not None:
                    out[chat_id] = record
            return out

    def get(self, chat_id: str) -> dict[str, Any] | None:
        with self._mutex:
            self._refresh()
            return self._read(chat_id)

    def update(
        self, chat_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to the current record and append the result (``None`` deletes).

        ``change`` may return the very record it was given to mean "no change".
        """
        with self._mutex:
            lock_fd = self._lock()
            try:
                self._refresh()
                current = self._read(chat_id)
                result = change(dict(current) if current is not None else None)
                if result is None:
                    if current is None:
                        return None
                    line: dict[str, Any] = {"chatId": chat_id, "_deleted": True, "updatedAt": now_ms()}
                elif result == current:
                    return dict(result)
                else:
                    line = result
                self._append(chat_id, line)
                if self._lines > 2 * len(self._where) + 64:
                    self._compact()
                return dict(result) if result is not None else None
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def _append(self, chat_id: str, line: dict[str, Any]) -> None:
        """Append one record (the lock is held and the view was just refreshed)."""
        data = self.codec.encode(line)
        start = self._size
        if self._size > self._offset:
            # A torn last line (a crash mid-write): never glue the record onto it.
            data = b"\n" + data
            start += 1
        fd = self._index_fd(self._ino)
        if self._ino is None:
            self._ino = self._fd_ino  # the file was just created
        _write_all(fd, data)
        # Nobody else appends while the lock is held: what was written is what follows.
        self._size += len(data)
        self._offset = self._size
        self._lines += 1
        recent = self._recent
        recent.pop(chat_id, None)
        if line.get("_deleted"):
            self._where.pop(chat_id, None)
        else:
            where = self._where[chat_id] = (start, self._size - 1 - start)
            recent[chat_id] = (where, dict(line))
            if len(recent) > _RECENT_RECORDS:
                del recent[next(iter(recent))]  # the least recently written

    def _compact(self) -> None:
        """Rewrite the index with one line per chat (the lock is held)."""
        assert self._fd is not None
        data = os.pread(self._fd, self._offset, 0)
        live = [(chat_id, data[pos : pos + length]) for chat_id, (pos, length) in self._where.items()]

        def write(fd: int) -> None:
            _write_all(fd, b"".join(raw + b"\n" for _chat_id, raw in live))

        _replace_atomically(self.path, write)
        where: dict[str, tuple[int, int]] = {}
        pos = 0
        for chat_id, raw in live:
            where[chat_id] = (pos, len(raw))
            pos += len(raw) + 1
        self._close_fd()
        st = os.stat(self.path)
        self._index_fd(st.st_ino)
        self._where, self._ino, self._offset, self._size, self._lines = where, st.st_ino, pos, pos, len(live)
        self._recent = {}


_RECENT_RECORDS = 512  # records kept parsed (the chats with runs going on, typically)
_INLINE_LIMIT = 64 * 1024
# A run's first write waits SOON_S (unless the chat is read or written first); the due
# ones are written SOON_SLICE at a time, each slice after what the loop has waiting.
SOON_S = 0.1
SOON_SLICE = 16
SOON_RETRY_S = 0.005
_T = TypeVar("_T")


class ChatStore:
    """Chat files and their index under ``memory.chat.dir``.

    ``bytes_read`` counts the bytes read from chat files; it lets tests check that a window
    load reads a bounded amount whatever the chat's length.
    """

    def __init__(self, settings: Settings, *, block_size: int = _BLOCK_SIZE) -> None:
        cfg = settings.memory.chat
        self.dir = resolve_dir(cfg.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._dir_prefix = os.path.join(self.dir, "")
        self.k = cfg.k
        self.trim_file = cfg.trim_file
        self.inline_writes = cfg.inline_writes
        self.action_tools = frozenset(cfg.action_tools)
        self.codec = _Codec(_check_charset(cfg.charset))
        self.block_size = block_size
        self.bytes_read = 0
        self._index = _ChatIndex(self.dir / INDEX_NAME, self.codec)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # chatId → (when, write) of a run start not written yet, oldest first; see start_run.
        self._soon: dict[str, tuple[float, Callable[[], object]]] = {}
        self._soon_timer: asyncio.TimerHandle | None = None

    # ---- paths and locks --------------------------------------------------------------

    def chat_path(self, chat_id: str) -> Path:
        """The file of a chat; ``chat_id`` is validated first, so the path stays in the folder."""
        return self.dir / f"{parse_chat_id(chat_id)}.json"

    def _file(self, chat_id: str) -> str:
        """:meth:`chat_path` as a string, for an id already validated by ``parse_chat_id``."""
        return f"{self._dir_prefix}{chat_id}.json"

    def lock(self, chat_id: str) -> asyncio.Lock:
        """The asyncio lock ordering this process's writers of one chat file."""
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[chat_id] = lock
        return lock

    # ---- run starts written soon --------------------------------------------------------

    def _settle(self, chat_id: str, *, holder: bool = False) -> None:
        """Do the chat's waiting run-start write, if any, now.

        ``holder``: the caller holds the chat's lock. Without it, a chat whose lock is held
        is left alone: the holder may be working on the file in a thread, and the write
        waits for the timer or the next caller.
        """
        if chat_id not in self._soon:
            return
        if not holder:
            lock = self._locks.get(chat_id)
            if lock is not None and lock.locked():
                return
        _when, write = self._soon.pop(chat_id)
        try:
            write()
        except ChatNotFound:
            log.info("chat %s was deleted before its run's question was stored", chat_id)
        except Exception:
            log.exception("chat %s: storing the start of a run failed", chat_id)

    def settle(self) -> None:
        """Do every waiting run-start write now (before listing chats, at shutdown)."""
        for chat_id in list(self._soon):
            self._settle(chat_id)

    def _write_due(self) -> None:
        """The timer: do the run-start writes that have waited SOON_S, a slice at a time."""
        self._soon_timer = None
        now = time.monotonic()
        done = 0
        for chat_id, (when, _write) in list(self._soon.items()):
            if now - when < SOON_S or done >= SOON_SLICE:
                break
            lock = self._locks.get(chat_id)
            if lock is None or not lock.locked():
                self._settle(chat_id)
                done += 1
        if not self._soon:
            return
        if done >= SOON_SLICE:
            delay = 0.0  # more are due: the next slice after what the loop has waiting
        else:
            # The next one's turn, or (every due one is locked) a retry in a moment.
            delay = max(next(iter(self._soon.values()))[0] + SOON_S - now, SOON_RETRY_S)
        self._soon_timer = asyncio.get_running_loop().call_later(delay, self._write_due)

    async def start_run(self, chat_id: str, line: dict[str, Any], create: dict[str, Any] | None) -> None:
        """Store a run's ``query`` line, creating the chat first when ``create`` is given
        (:meth:`create_chat`'s arguments but the id and ``first_line``).

        The write is done soon, not now (see the module notes), when writes are inline;
        with ``memory.chat.inline-writes`` off it is done before this returns.
        """
        chat_id = parse_chat_id(chat_id)
        if not self.inline_writes:
            if create is not None:
                await self.create_chat(chat_id, **create, first_line=line)
            else:
                await self.append_lines(chat_id, [line], create=True)
            return
        self.start_run_soon(chat_id, line, create)

    def start_run_soon(self, chat_id: str, line: dict[str, Any], create: dict[str, Any] | None) -> None:
        """:meth:`start_run` when writes are inline (``inline_writes``): nothing to wait for.

        ``chat_id`` must be one ``parse_chat_id`` returned.
        """
        assert self.inline_writes, "start_run_soon needs memory.chat.inline-writes"
        # The line is encoded, and the chat's record made (stamped now), when written.
        write: Callable[[], object]
        if create is not None:
            write = functools.partial(self._create_later, chat_id, create, line, now_ms())
        else:
            write = functools.partial(self._append_later, chat_id, line)
        self._settle(chat_id)
        when = time.monotonic()
        waiting = self._soon.pop(chat_id, None)
        if waiting is not None:  # an earlier start, held up by a locked chat: that one first
            when, write = waiting[0], functools.partial(_in_turn, waiting[1], write)
        self._soon[chat_id] = (when, write)
        if self._soon_timer is None:
            self._soon_timer = asyncio.get_running_loop().call_later(SOON_S, self._write_due)

    async def close(self) -> None:
        """Write what is waiting and close the index (the store can be used again after)."""
        if self._soon_timer is not None:
            self._soon_timer.cancel()
            self._soon_timer = None
        for chat_id in list(self._soon):
            self._settle(chat_id, holder=True)
        self._index.close()

    # ---- chats and the index ----------------------------------------------------------

    async def _io(self, fn: Callable[..., _T], *args: Any, size: int = 0) -> _T:
        """Run small file work inline (see ``memory.chat.inline-writes``), the rest in a thread."""
        if self.inline_writes and size < _INLINE_LIMIT:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def exists(self, chat_id: str) -> bool:
        path = self.chat_path(chat_id)
        self._settle(parse_chat_id(chat_id))
        return await self._io(path.is_file)

    async def create_chat(
        self,
        chat_id: str,
        name: str,
        agent_key: str,
        agent_name: str,
        owner: str | None = None,
        *,
        first_line: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create the chat file and its index record; an existing chat is left as it is.

        ``first_line`` (a run's query line) is written with the same open that creates the
        file, or appended when the chat already existed.
        """
        chat_id = parse_chat_id(chat_id)
        chat = {"name": name, "agent_key": agent_key, "agent_name": agent_name, "owner": owner}
        create, size = self._create_op(chat_id, chat, first_line)
        async with self.lock(chat_id):
            self._settle(chat_id, holder=True)
            return await self._io(create, size=size)

    def _create_later(self, chat_id: str, chat: dict[str, Any], line: dict[str, Any], stamp: int) -> None:
        self._create_op(chat_id, chat, line, stamp)[0]()

    def _append_later(self, chat_id: str, line: dict[str, Any]) -> None:
        self._append_sync(chat_id, self.codec.encode(line), True, False)

    def _create_op(
        self, chat_id: str, chat: dict[str, Any], first_line: dict[str, Any] | None, stamp: int | None = None
    ) -> tuple[Callable[[], dict[str, Any]], int]:
        """:meth:`create_chat` (``chat``: its other arguments by name) as a function to call
        now or later (its record is stamped ``stamp``, or now), and the bytes it writes to
        the chat file."""
        name, agent_key, agent_name = chat["name"], chat["agent_key"], chat["agent_name"]
        owner = chat.get("owner")
        path = self._file(chat_id)
        data = self.codec.encode(first_line) if first_line is not None else b""
        now = stamp if stamp is not None else now_ms()

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is not None:
                return current
            record: dict[str, Any] = {
                "chatId": chat_id,
                "chatName": name,
                "firstAgentKey": agent_key,
                "firstAgentName": agent_name,
                "createdAt": now,
                "updatedAt": now,
                "usage": UsageTotals().to_dict(),
                "hasPlan": False,  # set on the first plan written; absent (other writers) = unknown
            }
            if owner is not None:
                record["owner"] = owner
            return record

        def create() -> dict[str, Any]:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                if data:
                    self._append_sync(chat_id, data, False, False)
            else:
                try:
                    if data:
                        _write_all(fd, data)
                finally:
                    os.close(fd)
            record = self._index.update(chat_id, change)
            assert record is not None
            return record

        return create, len(data)

    async def get_chat(self, chat_id: str) -> dict[str, Any] | None:
        """The index record of a chat (``owner`` and ``usage`` included), or ``None``."""
        chat_id = parse_chat_id(chat_id)
        self._settle(chat_id)
        return await asyncio.to_thread(self._index.get, chat_id)

    async def owner_of(self, chat_id: str) -> str | None:
        record = await self.get_chat(chat_id)
        owner = record.get("owner") if record else None
        return owner if isinstance(owner, str) else None

    async def record_run_end(self, chat_id: str, usage: UsageTotals, updated_at: int | None = None) -> None:
        """A run ended: bump ``updatedAt`` and add its usage to the chat's totals."""
        chat_id = parse_chat_id(chat_id)
        stamp = updated_at if updated_at is not None else now_ms()

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return None
            totals = UsageTotals.from_dict(current.get("usage"))
            totals.merge(usage)
            return {
                **current,
                "updatedAt": max(stamp, int(current.get("updatedAt") or 0)),
                "usage": totals.to_dict(),
            }

        self._settle(chat_id)
        await self._io(self._index.update, chat_id, change)

    async def list_chats(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Chats newest first (by ``updatedAt``) with usage totals; with a principal, only theirs."""
        self.settle()
        records = await asyncio.to_thread(self._index.snapshot)
        out: list[dict[str, Any]] = []
        for record in records.values():
            owner = record.get("owner")
            if not can_access(owner if isinstance(owner, str) else None, principal):
                continue
            item = {key: record.get(key) for key in _PUBLIC_FIELDS}
            item["usage"] = UsageTotals.from_dict(record.get("usage")).to_dict()
            out.append(item)
        # Ties (same millisecond) go to the chat created later: the index keeps creation order
        # and a reversed stable sort keeps the order of equal keys, so reverse it first.
        out.reverse()
        out.sort(key=lambda r: (int(r.get("updatedAt") or 0), int(r.get("createdAt") or 0)), reverse=True)
        return out

    async def delete_chat(self, chat_id: str) -> bool:
        """Remove the chat file and its index record; ``False`` when there was neither."""
        chat_id = parse_chat_id(chat_id)
        path = self.chat_path(chat_id)

        def delete() -> bool:
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                removed = False
            had_record = self._index.get(chat_id) is not None
            self._index.update(chat_id, lambda _current: None)
            return removed or had_record

        async with self.lock(chat_id):
            self._settle(chat_id, holder=True)
            return await asyncio.to_thread(delete)

    # ---- lines ------------------------------------------------------------------------

    async def append_line(self, chat_id: str, obj: dict[str, Any], *, create: bool = False) -> None:
        """Append one line. Raises :class:`ChatNotFound` if the file is gone (unless ``create``)."""
        await self.append_lines(chat_id, [obj], create=create)

    async def append_lines(self, chat_id: str, objs: list[dict[str, Any]], *, create: bool = False) -> None:
        """Append lines with one write (a crash mid-write leaves at most a torn last line, which
        readers skip)."""
        chat_id = parse_chat_id(chat_id)
        encode = self.codec.encode
        data = b"".join([encode(obj) for obj in objs])
        mark_plan = any(obj.get("_type") == "step" and isinstance(obj.get("plan"), dict) for obj in objs)
        async with self.lock(chat_id):
            self._settle(chat_id, holder=True)
            await self._io(self._append_sync, chat_id, data, create, mark_plan, size=len(data))

    def _append_sync(self, chat_id: str, data: bytes, create: bool, mark_plan: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self._file(chat_id), flags, 0o644)
        except FileNotFoundError as exc:
            raise ChatNotFound(chat_id) from exc
        try:
            size = os.fstat(fd).st_size
            # A crash may have left a torn last line; never glue the new line onto it.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            _write_all(fd, data)
        finally:
            os.close(fd)
        if mark_plan:
            # Remember that the chat has a plan, so latest_plan() of plan-less chats reads nothing.
            self._index.update(
                chat_id, lambda r: r if r is None or r.get("hasPlan") else {**r, "hasPlan": True}
            )

    def _pread(self, fd: int, size: int, offset: int) -> bytes:
        data = os.pread(fd, size, offset)
        self.bytes_read += len(data)
        return data

    def _iter_backward(self, fd: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(start offset, raw line)`` from the last line to the first."""
        pos = end
        tail: list[bytes] = []  # pieces of the line being assembled, newest piece first
        while pos > 0:
            size = min(self.block_size, pos)
            pos -= size
            chunk = self._pread(fd, size, pos)
            hi = len(chunk)
            while True:
                nl = chunk.rfind(b"\n", 0, hi)
                if nl < 0:
                    break
                piece = chunk[nl + 1 : hi]
                if tail:
                    piece += b"".join(reversed(tail))
                    tail = []
                yield pos + nl + 1, piece
                hi = nl
            tail.append(chunk[:hi])
        yield 0, b"".join(reversed(tail))

    def _scan_window(self, chat_id: str, k: int) -> tuple[list[dict[str, Any]], int]:
        """The lines of the last ``k`` runs (oldest first) and the offset where they start."""
        try:
            fd = os.open(self.chat_path(chat_id), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ChatNotFound(chat_id) from exc
        try:
            end = os.fstat(fd).st_size
            newest_first: list[dict[str, Any]] = []
            queries = 0
            start = 0
            for offset, raw in self._iter_backward(fd, end):
                obj = self.codec.decode(raw)
                if obj is None:
                    continue  # blank, torn or foreign line
                newest_first.append(obj)
                if obj.get("_type") == "query":
                    queries += 1
                    if queries >= k:
                        start = offset
                        break
        finally:
            os.close(fd)
        newest_first.reverse()
        return [normalize_line(line) for line in newest_first], start

    async def load_window(self, chat_id: str, k: int | None = None) -> list[StoredRun]:
        """The last ``k`` runs (default ``memory.chat.k``), reading the file from the end."""
        chat_id = parse_chat_id(chat_id)
        k = self.k if k is None else k
        if k <= 0:
            return []
        self._settle(chat_id)
        lines, _start = await asyncio.to_thread(self._scan_window, chat_id, k)
        return group_runs(lines)[-k:]

    def _read_all(self, chat_id: str) -> list[dict[str, Any]]:
        try:
            with open(self.chat_path(chat_id), "rb") as fh:
                data = fh.read()
        except FileNotFoundError as exc:
            raise ChatNotFound(chat_id) from exc
        self.bytes_read += len(data)
        out: list[dict[str, Any]] = []
        bad = 0
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            obj = self.codec.decode(raw)
            if obj is None:
                bad += 1
                continue
            out.append(normalize_line(obj))
        if bad:
            log.warning("chat %s: skipped %d unreadable line(s)", chat_id, bad)
        return out

    async def read_lines(self, chat_id: str) -> list[dict[str, Any]]:
        """Every readable line of the chat, oldest first (torn or foreign lines skipped)."""
        chat_id = parse_chat_id(chat_id)
        self._settle(chat_id)
        return await asyncio.to_thread(self._read_all, chat_id)

    async def latest_plan(self, chat_id: str) -> dict[str, Any] | None:
        """The chat's latest plan ``{planId, tasks}`` (a stored ``in_progress`` reads as ``init``)."""
        chat_id = parse_chat_id(chat_id)
        record = await self.get_chat(chat_id)
        if record is not None and record.get("hasPlan") is False:
            return None
        return await asyncio.to_thread(self._latest_plan_sync, chat_id)

    def _latest_plan_sync(self, chat_id: str) -> dict[str, Any] | None:
        try:
            fd = os.open(self.chat_path(chat_id), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            for _offset, raw in self._iter_backward(fd, os.fstat(fd).st_size):
                if b"plan" not in raw:
                    continue  # cheap pre-filter: most lines carry no plan
                obj = self.codec.decode(raw)
                if obj is None or obj.get("_type") != "step":
                    continue
                plan = normalize_plan(normalize_line(obj).get("plan"))
                if plan is not None:
                    for task in plan["tasks"]:
                        if isinstance(task, dict) and task.get("status") == "in_progress":
                            task["status"] = "init"
                    return plan
        finally:
            os.close(fd)
        return None

    async def trim_to_window(self, chat_id: str, k: int | None = None) -> bool:
        """Cut the file to its last ``k`` runs (``memory.chat.trim-file``); ``True`` if it shrank."""
        chat_id = parse_chat_id(chat_id)
        k = self.k if k is None else k
        if k <= 0:
            return False
        async with self.lock(chat_id):
            self._settle(chat_id, holder=True)
            return await asyncio.to_thread(self._trim_sync, chat_id, k)

    def _trim_sync(self, chat_id: str, k: int) -> bool:
        _lines, start = self._scan_window(chat_id, k)
        if start <= 0:
            return False
        path = self.chat_path(chat_id)

        def write(out_fd: int) -> None:
            with open(path, "rb") as src:
                src.seek(start)
                while block := src.read(self.block_size):
                    _write_all(out_fd, block)

        _replace_atomically(path, write)
        return True
