"""The Server-Sent Events parser, against the HTML standard's rules and examples."""

from __future__ import annotations

import random

import pytest

from taskgate.client import ServerSentEvent, SSEParser


def parse(text: str) -> list[ServerSentEvent]:
    return SSEParser().feed(text)


def test_one_event() -> None:
    assert parse("data: hello\n\n") == [ServerSentEvent("message", "hello")]


def test_nothing_is_dispatched_before_the_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed("event: line\ndata: x\n") == []
    assert parser.feed("\n") == [ServerSentEvent("line", "x")]


def test_multi_line_data_is_joined_with_line_feeds() -> None:
    # the standard's second example
    text = "data: YHOO\ndata: +2\ndata: 10\n\n"
    assert parse(text) == [ServerSentEvent("message", "YHOO\n+2\n10")]


def test_event_type_and_id() -> None:
    text = "event: task\nid: 42\ndata: {}\n\n"
    assert parse(text) == [ServerSentEvent("task", "{}", "42")]


def test_the_event_type_resets_after_each_event() -> None:
    events = parse("event: end\ndata: a\n\ndata: b\n\n")
    assert [(e.event, e.data) for e in events] == [("end", "a"), ("message", "b")]


def test_comments_are_skipped_and_counted() -> None:
    parser = SSEParser()
    events = parser.feed(": keep-alive\n\n:another\ndata: x\n: inside\n\n")
    assert events == [ServerSentEvent("message", "x")]
    assert parser.comments == 3


def test_the_last_event_id_persists_until_changed() -> None:
    # the standard's third example
    text = (
        ": test stream\n\n"
        "data: first event\nid: 1\n\n"
        "data:second event\nid\n\n"
        "data:  third event\n\n"
    )
    events = parse(text)
    assert events == [
        ServerSentEvent("message", "first event", "1"),
        ServerSentEvent("message", "second event", ""),  # "id" alone resets it
        ServerSentEvent("message", " third event", ""),  # only one space is dropped
    ]


def test_an_id_without_data_still_counts() -> None:
    parser = SSEParser()
    assert parser.feed("id: 7\n\n") == []
    assert parser.last_event_id == "7"
    assert parser.feed("data: x\n\n") == [ServerSentEvent("message", "x", "7")]


def test_an_id_containing_nul_is_ignored() -> None:
    parser = SSEParser()
    parser.feed("id: 1\n\nid: 2\x003\ndata: x\n\n")
    assert parser.last_event_id == "1"


def test_retry_takes_digits_only() -> None:
    parser = SSEParser()
    events = parser.feed("retry: 2500\ndata: a\n\nretry: soon\nretry: 1.5\ndata: b\n\n")
    assert parser.retry == 2500
    assert [e.retry for e in events] == [2500, 2500]


def test_a_field_without_colon_has_an_empty_value() -> None:
    # the standard's fourth example: "data" alone is an empty line of data
    assert parse("data\n\ndata\ndata\n\ndata:\n") == [
        ServerSentEvent("message", ""),
        ServerSentEvent("message", "\n"),
    ]


def test_no_data_no_event() -> None:
    assert parse("event: end\n\n\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    assert parse("foo: bar\ndata: x\nEvent: shouted\n\n") == [ServerSentEvent("message", "x")]


def test_a_colon_in_the_value_is_kept() -> None:
    assert parse('data: {"a": "b:c"}\n\n')[0].data == '{"a": "b:c"}'


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_every_line_end(end: str) -> None:
    text = f"event: line{end}id: 3{end}data: a{end}data: b{end}{end}"
    assert parse(text) == [ServerSentEvent("line", "a\nb", "3")]


def test_mixed_line_ends() -> None:
    assert parse("data: a\r\ndata: b\rdata: c\n\r\n") == [ServerSentEvent("message", "a\nb\nc")]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\r") == []
    # had the LF counted as a second line end, "a" would have been dispatched alone
    assert parser.feed("\ndata: b\r") == []
    assert parser.feed("\n\r") == [ServerSentEvent("message", "a\nb")]
    assert parser.feed("\n") == []


def test_a_leading_bom_is_dropped_once() -> None:
    parser = SSEParser()
    assert parser.feed("\ufeffdata: a\n\n") == [ServerSentEvent("message", "a")]
    assert parser.feed("\ufeffdata: b\n\n") == []  # later, a BOM is part of a field name


def test_an_unfinished_event_is_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed("data: complete\n\ndata: cut off") == [
        ServerSentEvent("message", "complete")
    ]
    assert parser.feed("") == []


STREAM = (
    "\ufeff: hello\r\n"
    "retry: 1000\n"
    'id: 1\nevent: line\ndata: {"n": 1, "t": "caf\u00e9"}\n\n'
    "id: 2\revent: line\rdata: two\rdata: lines\r\r"
    ": keep-alive\r\n\r\n"
    "id: 3\r\nevent: end\r\ndata: {}\r\n\r\n"
    "data: left open"
)


def test_any_split_of_the_stream_gives_the_same_events() -> None:
    whole = SSEParser().feed(STREAM)
    assert [(e.event, e.id) for e in whole] == [("line", "1"), ("line", "2"), ("end", "3")]
    assert all(e.retry == 1000 for e in whole)
    for size in (1, 2, 3, 7):
        parser = SSEParser()
        pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert [e for p in pieces for e in parser.feed(p)] == whole, size
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        parser = SSEParser()
        assert [e for p in pieces for e in parser.feed(p)] == whole, cuts


def test_a_long_chunk_of_many_lines() -> None:
    text = "".join(f"id: {i}\ndata: {i}\n\n" for i in range(20_000))
    events = SSEParser().feed(text)
    assert len(events) == 20_000
    assert events[-1] == ServerSentEvent("message", "19999", "19999")
