"""Events bounded before they are stored: nesting past protobuf's limits and sizes past a gRPC message
become a carriable form that says what changed, and every such event encodes and decodes."""

from __future__ import annotations

from berth.daemon.v1 import daemon_pb2 as pb

from daemon.carriable import MAX_DEPTH, MAX_EVENT_BYTES, make_carriable
from daemon.service import event_to_pb
from daemon.store import StoredEvent


def _round_trip(content: dict, metadata: dict) -> pb.Event:
    ev = event_to_pb(StoredEvent("s", 1, "assistant", content, "2026-01-01T00:00:00Z", metadata))
    return pb.Event.FromString(ev.SerializeToString())


def _nest(levels: int) -> dict:
    value: dict = {"leaf": "bottom"}
    for _ in range(levels):
        value = {"n": value}
    return value


def test_an_ordinary_event_is_left_exactly_as_it_was():
    content = {"type": "tool_use", "name": "Bash", "arguments": {"command": "ls", "deep": _nest(5)}}
    assert make_carriable(content, {"usage": {"input_tokens": 3}}) == (content, {"usage": {"input_tokens": 3}})


def test_nesting_past_the_limit_becomes_json_text_with_a_note_and_decodes():
    content, metadata = make_carriable({"type": "tool_use", "name": "X", "arguments": _nest(300)}, {})
    decoded = _round_trip(content, metadata)
    assert decoded.content.arguments["n"]["n"]
    assert any(f"deeper than {MAX_DEPTH}" in n for n in metadata["carriable"])


def test_a_20_mb_tool_output_is_cut_below_the_event_limit_with_a_note():
    content, metadata = make_carriable({"type": "tool_result", "output": "z" * (20 * 1024 * 1024)}, {"k": 1})
    decoded = _round_trip(content, metadata)
    assert decoded.ByteSize() <= MAX_EVENT_BYTES
    assert decoded.content.output.string_value.startswith("zzz") and "cut by berth" in content["output"]
    assert metadata["k"] == 1 and "content.output" in metadata["carriable"][0]


def test_a_huge_non_text_value_is_kept_as_cut_json_and_a_struct_field_stays_an_object():
    content, metadata = make_carriable(
        {"type": "tool_use", "name": "X", "arguments": {"numbers": list(range(400_000))}}, {}
    )
    decoded = _round_trip(content, metadata)
    assert decoded.ByteSize() <= MAX_EVENT_BYTES and "cut_by_berth" in content["arguments"]


def test_non_finite_numbers_become_text():
    content, metadata = make_carriable({"type": "tool_result", "output": [float("nan"), float("inf")]}, {})
    assert _round_trip(content, metadata).content.output.list_value.values[0].string_value == "nan"


def test_a_stored_event_from_before_the_bounds_is_still_sent_in_a_safe_form():
    ev = event_to_pb(StoredEvent("s", 7, "assistant", {"type": "tool_use", "arguments": _nest(120)}, "t", {}))
    assert ev.seq == 7 and ev.metadata["carriable"]
