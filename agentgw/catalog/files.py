"""Reading definition files defensively: size limits, binary files, symlinks, odd names.

Nothing here raises on bad input; problems come back as :class:`DefinitionError` so one
bad file never stops the others from loading.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentgw.catalog import jsonc
from agentgw.errors import DefinitionError

DEFINITION_MAX_BYTES = 1 << 20  # agents, models, capability files, SKILL.md, prompts
VIEWPORT_MAX_BYTES = 4 << 20  # viewports may inline scripts and styles

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SYNTAX_FIELD = "(syntax)"
FILE_FIELD = "(file)"

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def content_version(data: bytes) -> str:
    """Short content hash shown as a definition's ``version``."""
    return hashlib.sha256(data).hexdigest()[:12]


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot name a definition (it becomes a file name and a URL value), or None."""
    if not key:
        return "must not be empty"
    if len(key) > 128:
        return "must be at most 128 characters"
    if not KEY_PATTERN.match(key) or ".." in key:
        return f"`{key}` is not a safe key: use letters, digits, `_`, `-` and `.` (no `..`, no `/`)"
    return None


def display_path(path: Path, root: Path) -> str:
    """The file as authors name it: ``<folder>/<relative path>``."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return f"{root.name}/{rel.as_posix()}"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Cheap change detector: a file whose stamp is unchanged is not re-read.

    ``ctime`` is included so a permission fix (chmod) is noticed too.
    """

    mtime_ns: int
    ctime_ns: int
    size: int
    inode: int


def stamp_of(st: os.stat_result) -> FileStamp:
    """The stamp of a ``stat`` result."""
    return FileStamp(st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def iter_files(root: Path, suffixes: tuple[str, ...] | None) -> Iterator[Path]:
    """Regular files directly in ``root`` with one of ``suffixes``, sorted by name; hidden files skipped."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue  # editor swap and backup files
        if suffixes is not None and not entry.name.lower().endswith(suffixes):
            continue
        try:
            if entry.is_dir():
                continue
        except OSError:
            continue
        yield Path(entry.path)


def check_inside(path: Path, root: Path) -> str | None:
    """A file (or a folder on its way) must not lead out of ``root`` through a symlink."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return "broken symlink (its target does not exist)" if path.is_symlink() else "file disappeared"
    except (OSError, RuntimeError) as exc:
        return f"cannot resolve path: {exc}"
    if not target.is_relative_to(root.resolve()):
        return f"symlink points outside {root.name}/ (to {target}); ignored"
    return None


def read_bytes(
    path: Path, root: Path, max_bytes: int
) -> tuple[bytes | None, DefinitionError | None, os.stat_result | None]:
    """Read a file's bytes under the checks every folder shares."""
    name = display_path(path, root)
    outside = check_inside(path, root)
    if outside:
        return None, DefinitionError(name, FILE_FIELD, outside), None
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None, DefinitionError(name, FILE_FIELD, "not a regular file"), None
        if st.st_size > max_bytes:
            reason = f"file is too large ({st.st_size} bytes; the limit is {max_bytes} bytes)"
            return None, DefinitionError(name, FILE_FIELD, reason), st
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return None, DefinitionError(name, FILE_FIELD, f"cannot read file: {exc.strerror or exc}"), None
    if len(data) > max_bytes:  # grew between stat and read
        return None, DefinitionError(name, FILE_FIELD, f"file is too large (limit {max_bytes} bytes)"), st
    return data, None, st


def decode_text(data: bytes, name: str) -> tuple[str | None, DefinitionError | None]:
    """UTF-8 text (a BOM is dropped); binary content is a clear error."""
    if b"\x00" in data:
        return None, DefinitionError(
            name, FILE_FIELD, "binary file (contains NUL bytes); expected UTF-8 text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, DefinitionError(
            name, FILE_FIELD, f"not valid UTF-8 text (byte {exc.start}); expected UTF-8"
        )
    return text, None


def parse_document(text: str, name: str, *, yaml_syntax: bool) -> tuple[Any, DefinitionError | None]:
    """Parse JSON-with-comments (or YAML) text into Python values."""
    if yaml_syntax:
        try:
            return yaml.load(text, Loader=_YamlLoader), None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            return None, DefinitionError(name, SYNTAX_FIELD, f"invalid YAML: {exc.problem or exc}{where}")
        except yaml.YAMLError as exc:
            return None, DefinitionError(name, SYNTAX_FIELD, f"invalid YAML: {exc}")
    try:
        return jsonc.loads(text), None
    except jsonc.JsoncError as exc:
        field = exc.key or SYNTAX_FIELD
        return None, DefinitionError(name, field, str(exc))
