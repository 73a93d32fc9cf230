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
        SSEFrame(None, b'{"a":1}'),
        SSEFrame(b"ping", b'{"type": "ping"}'),
        SSEFrame(None, b"[DONE]"),
    ]


def test_crlf_comments_multiline_data_and_ignored_fields() -> None:
    raw = (
        b": OPENROUTER PROCESSING\r\n\r\n"
        b"id: 7\r\nretry: 100\r\nevent: message_delta\r\ndata: line one\r\ndata: line two\r\n\r\n"
        b"data\r\n\r\n"
        b"unknown: x\r\n\r\n"
    )
    assert parse_all([raw]) == [
        SSEFrame(b"message_delta", b"line one\nline two"),
        SSEFrame(None, b""),  # a bare "data" line is an empty data field
    ]


def test_only_one_leading_space_is_removed() -> None:
    assert parse_all([b"data:  two spaces\n\n"]) == [SSEFrame(None, b" two spaces")]


def test_frame_is_returned_by_the_chunk_that_completes_it() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x"') == []
    assert parser.feed(b":1}\n") == []
    assert parser.feed(b"\n") == [SSEFrame(None, b'{"x":1}')]


def test_flush_accepts_a_last_frame_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: [DONE]") == [SSEFrame(None, b"a")]
    assert parser.flush() == [SSEFrame(None, b"[DONE]")]
    assert parser.flush() == []


def test_bom_at_stream_start_is_dropped() -> None:
    assert parse_all([b"\xef\xbb\xbfdata: x\n\n"]) == [SSEFrame(None, b"x")]


@pytest.mark.parametrize(
    "name", ["anthropic-text.sse", "openrouter-claude-reasoning.sse", "groq-midstream-error-event.sse"]
)
def test_every_cut_point_gives_the_same_frames(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    whole = parse_all([raw])
    assert whole and all(f.data for f in whole)
    step = max(1, len(raw) // 400)  # several hundred cut points per file keeps this fast
    for cut in range(0, len(raw), step):
        assert parse_all([raw[:cut], raw[cut:]]) == whole
    crlf = raw.replace(b"\n", b"\r\n")
    assert parse_all([crlf[i : i + 7] for i in range(0, len(crlf), 7)]) == whole


def test_fixture_frame_counts() -> None:
    frames = parse_all([(FIXTURES / "openrouter-claude-reasoning.sse").read_bytes()])
    # comment lines are not frames; [DONE] is
    assert frames[-1] == SSEFrame(None, b"[DONE]")
    assert all(not f.data.startswith(b":") for f in frames)
    text = (FIXTURES / "groq-midstream-error-event.sse").read_bytes()
    assert parse_all([text])[-1].event == b"error"
