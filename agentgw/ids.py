"""Random ids (chat and run UUIDs, the chat file's 8-hex ids) from pooled CSPRNG bytes.

A run takes four ids; reading the kernel's CSPRNG once per id was a syscall each on the
request path. The pool reads 4 KiB at a time (one ``getrandom`` per ~250 UUIDs) and is
dropped in a forked child, so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_pool = b""
_pos = 0
_lock = threading.Lock()  # the chat store's worker threads take ids too


def _reset() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_reset)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from ``os.urandom``, served from the pool."""
    global _pool, _pos
    with _lock:
        end = _pos + n
        if end > len(_pool):
            _pool, _pos, end = os.urandom(max(_POOL_BYTES, n)), 0, n
        out = _pool[_pos:end]
        _pos = end
    return out


def uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its canonical 36-character form."""
    h = random_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def uuid4_hex() -> str:
    """:func:`uuid4` as 32 hex digits (run ids)."""
    return uuid4().replace("-", "")


def token_hex(nbytes: int) -> str:
    return random_bytes(nbytes).hex()
