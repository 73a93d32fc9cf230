"""The incremental SSE frame parser: framing rules and reassembly at every cut point."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgw.providers.sse import SSEFrame, SSEParser

FIXTURES = Path(__file__).parent / "fixtures" / "sse"


def parse_all(pieces: list[bytes]) -> list[SSEFrame]:
    parser = SSEParser()
    frames: list[SSEFrame] = []
    for piece in pieces:
        frames.extend(parser.feed(piece))
    frames.extend(parser.flush())
    return frames


def test_data_frames_and_event_names() -> None:
    raw = b'data: {"a":1}\n\nevent: ping\ndata: {"type": "ping"}\n\ndata:[DONE]\n\n'
    assert parse_all([raw]) == [
        (None, b'{"a":1}'),
        (b"ping", b'{"type": "ping"}'),
        (None, b"[DONE]"),
    ]


def test_crlf_comments_multiline_data_and_ignored_fields() -> None:
    raw = (
        b": OPENROUTER PROCESSING\r\n\r\n"
        b"id: 7\r\nretry: 100\r\nevent: message_delta\r\ndata: line one\r\ndata: line two\r\n\r\n"
        b"data\r\n\r\n"
        b"unknown: x\r\n\r\n"
    )
    assert parse_all([raw]) == [
        (b"message_delta", b"line one\nline two"),
        (None, b""),  # a bare "data" line is an empty data field
    ]


def test_only_one_leading_space_is_removed() -> None:
    assert parse_all([b"data:  two spaces\n\n"]) == [(None, b" two spaces")]


def test_frame_is_returned_by_the_chunk_that_completes_it() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x"') == []
    assert parser.feed(b":1}\n") == []
    assert parser.feed(b"\n") == [(None, b'{"x":1}')]


def test_flush_accepts_a_last_frame_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: [DONE]") == [(None, b"a")]
    assert parser.flush() == [(None, b"[DONE]")]
    assert parser.flush() == []


def test_bom_at_stream_start_is_dropped() -> None:
    assert parse_all([b"\xef\xbb\xbfdata: x\n\n"]) == [(None, b"x")]


@pytest.mark.parametrize(
    "name", ["anthropic-text.sse", "openrouter-claude-reasoning.sse", "groq-midstream-error-event.sse"]
)
def test_every_cut_point_gives_the_same_frames(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    whole = parse_all([raw])
    assert whole and all(data for _event, data in whole)
    step = max(1, len(raw) // 400)  # several hundred cut points per file keeps this fast
    for cut in range(0, len(raw), step):
        assert parse_all([raw[:cut], raw[cut:]]) == whole
    crlf = raw.replace(b"\n", b"\r\n")
    assert parse_all([crlf[i : i + 7] for i in range(0, len(crlf), 7)]) == whole


def test_fixture_frame_counts() -> None:
    frames = parse_all([(FIXTURES / "openrouter-claude-reasoning.sse").read_bytes()])
    # comment lines are not frames; [DONE] is
    assert frames[-1] == (None, b"[DONE]")
    assert all(not data.startswith(b":") for _event, data in frames)
    text = (FIXTURES / "groq-midstream-error-event.sse").read_bytes()
    assert parse_all([text])[-1][0] == b"error"


def test_one_frame_per_chunk_fast_path_agrees_with_line_parsing() -> None:
    """Chunks that are exactly one ``data:`` frame take a shortcut; it must not differ."""
    frames = [b'data: {"a":1}\n\n', b"data: \n\n", b"data:  two\n\n", b"data: x\r\n\n", b"data: [DONE]\n\n"]
    one_by_one = SSEParser()
    got = [f for chunk in frames for f in one_by_one.feed(chunk)]
    assert got == parse_all([b"".join(frames)])
    assert got == [(None, b'{"a":1}'), (None, b""), (None, b" two"), (None, b"x"), (None, b"[DONE]")]
    named = SSEParser()
    assert named.feed(b"event: ping\n") == []
    assert named.feed(b"data: {}\n\n") == [(b"ping", b"{}")]
    assert named.feed(b"data: {}\n\n") == [(None, b"{}")]  # the name applied to one frame only
