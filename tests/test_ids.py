"""Pooled random ids: valid UUIDs, no repeats, and a forked child never reuses the parent's pool."""

from __future__ import annotations

import os
import re
import uuid

from agentgw import ids


def test_uuid4_is_canonical_version_4() -> None:
    seen = set()
    for _ in range(5000):  # more than one pool's worth (4 KiB = 256 UUIDs)
        text = ids.uuid4()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 5000


def test_hex_forms() -> None:
    run_id = ids.uuid4_hex()
    assert re.fullmatch(r"[0-9a-f]{32}", run_id) and uuid.UUID(hex=run_id).version == 4
    assert re.fullmatch(r"[0-9a-f]{8}", ids.token_hex(4))
    assert len(ids.random_bytes(10_000)) == 10_000  # larger than the pool


def test_forked_child_draws_fresh_bytes() -> None:
    ids.token_hex(4)  # the parent has a pool with bytes left
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_fd, ids.token_hex(16).encode())
        os._exit(0)
    os.close(write_fd)
    child = os.read(read_fd, 64).decode()
    os.close(read_fd)
    os.waitpid(pid, 0)
    parent = ids.token_hex(16)
    assert len(child) == 32 and child != parent
