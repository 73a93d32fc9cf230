"""An incremental Server-Sent Events frame parser shared by the provider adapters.

Bytes arrive in arbitrary TCP-sized pieces; :meth:`SSEParser.feed` keeps the unfinished
tail and returns every frame completed by the new piece, so a frame is handed on the
moment its terminating blank line arrives (nothing waits for the next chunk).

It follows the WHATWG event-stream rules that providers actually exercise: ``\\n`` and
``\\r\\n`` line endings, ``:`` comment lines (``: OPENROUTER PROCESSING``), ``event:``
names, multi-line ``data:`` (joined with ``\\n``), one optional space after the colon,
``id:``/``retry:`` ignored, a leading BOM dropped. Lone ``\\r`` line endings are not
supported (no provider sends them). Data stays ``bytes``: orjson parses bytes directly,
so decoding to ``str`` first would only cost time on the hot path.
"""

from __future__ import annotations

_NL = b"\n"
_END = b"\n\n"
_DATA_SP = b"data: "
_CR = 13
_COLON = 58
_BOM = b"\xef\xbb\xbf"


SSEFrame = tuple[bytes | None, bytes]
"""One dispatched event: ``(event name or None, joined data)`` (a plain tuple: the hot path)."""


class SSEParser:
    """Turns a byte stream into :class:`SSEFrame` values, one ``feed`` per received chunk."""

    __slots__ = ("_data", "_event", "_started", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._data: bytes | None = None
        self._event: bytes | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        """Consume ``chunk`` and return the frames it completed (often one, possibly none)."""
        if (
            chunk[-2:] == _END
            and not self._tail
            and self._data is None
            and chunk.find(_NL) == len(chunk) - 2
            and chunk[:6] == _DATA_SP
            and chunk[-3] != _CR
        ):
            # The common case: the chunk is one whole ``data: …`` line and nothing is pending.
            frame = (self._event, chunk[6:-2])
            self._event = None
            self._started = True
            return [frame]
        if self._tail:
            chunk = self._tail + chunk
        elif not self._started:
            if not chunk:
                return []
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        lines = chunk.split(_NL)
        # The last piece has no newline yet: it is kept until the rest of the line arrives.
        self._tail = lines.pop()
        frames: list[SSEFrame] = []
        for line in lines:
            self._line(line, frames)
        return frames

    def flush(self) -> list[SSEFrame]:
        """End of stream: dispatch what is pending, even without the final blank line.

        The event-stream rules discard an unterminated last event; servers that forget the
        trailing blank line exist, and dropping their last chunk (often the usage or the
        finish) would be worse than accepting it.
        """
        frames: list[SSEFrame] = []
        if self._tail:
            tail, self._tail = self._tail, b""
            self._line(tail, frames)
        self._line(b"", frames)
        return frames

    def _line(self, line: bytes, frames: list[SSEFrame]) -> None:
        if line and line[-1] == _CR:
            line = line[:-1]
        if not line:
            if self._data is not None:
                frames.append((self._event, self._data))
                self._data = None
            self._event = None
            return
        if line[0] == _COLON:
            return  # comment / keep-alive
        if line.startswith(b"data:"):
            value = line[5:]
        else:
            field, _, value = line.partition(b":")
            if field == b"event":
                self._event = value[1:] if value[:1] == b" " else value
                return
            if field != b"data":
                return  # id:, retry: and unknown fields carry nothing an adapter needs
        if value[:1] == b" ":
            value = value[1:]
        self._data = value if self._data is None else self._data + _NL + value
