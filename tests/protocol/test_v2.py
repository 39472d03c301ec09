"""Comfy API v2 wire models and the incremental SSE parser (fuzzed with Hypothesis)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_nb.errors import ProtocolError
from comfy_nb.protocol import (
    SSEMessage,
    SSEParser,
    V2OutputEvent,
    V2PreviewEvent,
    V2ProgressEvent,
    V2StatusEvent,
    parse_v2_error,
    parse_v2_event,
    parse_v2_job,
)

# a line's text: anything but CR/LF (those end lines); may contain ':' and leading spaces
_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12)
_name = st.text(st.characters(blacklist_characters="\r\n:", blacklist_categories=["Cs"]), min_size=1, max_size=8)


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[SSEMessage]]:
    """A random event stream and the messages a correct parser must yield for it."""
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines: list[str] = []
    expected: list[SSEMessage] = []
    retry: int | None = None
    for _ in range(draw(st.integers(0, 6))):
        event = draw(st.one_of(st.none(), _name))
        datas = draw(st.lists(_text, max_size=3))
        if draw(st.booleans()):
            lines.append(":" + draw(_text))  # a comment / heartbeat
        if draw(st.booleans()):
            retry = draw(st.integers(0, 10**6))
            lines.append(f"retry: {retry}")
        if event is not None:
            lines.append(f"event: {event}")
        for d in datas:
            # one space after the colon is syntax; without it the value must not start with a space
            lines.append(f"data: {d}" if d.startswith(" ") or draw(st.booleans()) else f"data:{d}")
        lines.append("")
        if datas:
            expected.append(SSEMessage(event or "message", "\n".join(datas), None, retry))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + "".join(line + eol for line in lines)).encode(), expected


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


@settings(max_examples=300, deadline=None)
@given(_stream(), st.lists(st.integers(0, 10_000), max_size=12))
def test_sse_parser_any_chunking_gives_the_same_messages(stream: tuple[bytes, list[SSEMessage]], cuts: list[int]) -> None:
    data, expected = stream
    parser = SSEParser()
    got: list[SSEMessage] = []
    for chunk in _chunks(data, cuts):
        got.extend(parser.feed(chunk))
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 400), max_size=8))
def test_sse_parser_never_raises_and_is_chunking_independent_on_garbage(data: bytes, cuts: list[int]) -> None:
    whole = SSEParser().feed(data)
    parser = SSEParser()
    pieces: list[SSEMessage] = []
    for chunk in _chunks(data, cuts):
        pieces.extend(parser.feed(chunk))
    assert pieces == whole


def test_sse_parser_details() -> None:
    parser = SSEParser()
    assert parser.feed(b"retry: 3000\n: keepalive\n\nevent: status\ndata: {\"a\":\ndata: 1}\nid: 7\n") == []
    [msg] = parser.feed(b"\n")
    assert msg == SSEMessage("status", '{"a":\n1}', "7", 3000)
    assert parser.retry == 3000
    assert parser.feed(b"retry: 12x\nevent: x\n\n") == []  # bad retry ignored; no data, no dispatch
    assert parser.retry == 3000
    assert parser.feed(b"data\n\n") == [SSEMessage("message", "", "7", 3000)]
    assert parser.feed(b"data: unfinished") == []  # dropped unless the blank line comes


def test_v2_events_are_typed() -> None:
    status = parse_v2_event(SSEMessage("status", '{"status":"running","queue_position":null}'))
    assert isinstance(status, V2StatusEvent) and not status.terminal
    progress = parse_v2_event(SSEMessage("progress", '{"value":0.5,"nodes_done":1,"nodes_total":2,"step":3}'))
    assert isinstance(progress, V2ProgressEvent) and progress.progress.step == 3
    png = base64.b64encode(b"\x89PNG").decode()
    preview = parse_v2_event(SSEMessage("preview", json.dumps({"node_id": "3", "content_type": "image/png", "data_base64": png})))
    assert isinstance(preview, V2PreviewEvent) and preview.data == b"\x89PNG"
    out = {"node_id": "9", "name": "a.png", "type": "image", "id": "x", "url": "http://h/api/v2/assets/x/content"}
    assert isinstance(parse_v2_event(SSEMessage("output", json.dumps(out))), V2OutputEvent)
    assert parse_v2_event(SSEMessage("something_new", "{}")) is None
    with pytest.raises(ProtocolError, match="'status'"):
        parse_v2_event(SSEMessage("status", '{"status":"lost"}'))
    with pytest.raises(ProtocolError, match="not JSON"):
        parse_v2_event(SSEMessage("progress", "nope"))
    with pytest.raises(ProtocolError, match="base64"):
        parse_v2_event(SSEMessage("preview", '{"data_base64":"***"}'))


def test_v2_job_and_error_envelope() -> None:
    job = parse_v2_job({"id": "j", "status": "succeeded", "outputs": [], "extra": 1})
    assert job.terminal and job.outputs == ()
    with pytest.raises(ProtocolError, match="status"):
        parse_v2_job({"id": "j", "status": "done"})
    err = parse_v2_error({"error": {"code": "not_found", "message": "No job x.", "details": None}})
    assert err is not None and err.code == "not_found"
    assert parse_v2_error({"detail": "x"}) is None
