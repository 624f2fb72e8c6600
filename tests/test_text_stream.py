"""Stop sequences across token boundaries and UTF-8 holdback in streams (no model needed)."""
from __future__ import annotations

from powerinfer_py._text import (TextStream, normalize_stop, split_at_stop, stop_prefix_overlap,
                                 utf8_incomplete_tail)


def run(pieces, stops):
    ts = TextStream(normalize_stop(stops))
    out = []
    for p in pieces:
        out.append(ts.push(p))
        if ts.stopped:
            break
    out.append(ts.flush())
    return out, ts


def test_utf8_incomplete_tail():
    e = "é".encode()  # 2 bytes
    emoji = "🦙".encode()  # 4 bytes
    assert utf8_incomplete_tail(b"abc") == 0
    assert utf8_incomplete_tail(e[:1]) == 1
    assert utf8_incomplete_tail(e) == 0
    assert utf8_incomplete_tail(b"x" + emoji[:3]) == 3
    assert utf8_incomplete_tail(emoji) == 0


def test_stop_prefix_overlap():
    assert stop_prefix_overlap(b"hello ##", [b"###"]) == 2
    assert stop_prefix_overlap(b"hello", [b"###"]) == 0
    assert stop_prefix_overlap(b"ab", [b"abc", b"bx"]) == 2


def test_stop_across_token_boundaries_is_cut_and_never_shown():
    out, ts = run([b"Hello", b" wor", b"ld\nQ", b":", b" more"], ["\nQ:"])
    assert "".join(out) == "Hello world"
    assert ts.stopped and ts.stop_sequence == b"\nQ:"
    # the "\nQ" piece was held back: no chunk ever contained it
    assert all("\n" not in o for o in out)


def test_partial_stop_is_released_when_not_completed():
    out, ts = run([b"a #", b"# b"], ["###"])
    assert out[0] == "a "  # "#" held back
    assert "".join(out) == "a ## b" and not ts.stopped


def test_stop_inside_one_piece_and_earliest_wins():
    out, ts = run([b"xx END yy STOP"], ["STOP", "END"])
    assert "".join(out) == "xx " and ts.stop_sequence == b"END"


def test_multibyte_characters_split_across_tokens_are_held_back():
    emoji = "🦙".encode()
    out, _ = run([b"hi ", emoji[:1], emoji[1:3], emoji[3:], b"!"], [])
    assert out[:4] == ["hi ", "", "", "🦙"]
    assert "".join(out) == "hi 🦙!"


def test_stop_string_with_multibyte_characters():
    out, ts = run(["日本".encode()[:4], "日本".encode()[4:], "語です".encode()], ["語"])
    assert "".join(out) == "日本" and ts.stopped


def test_normalize_stop_and_split():
    assert normalize_stop(None) == [] and normalize_stop("x") == [b"x"] and normalize_stop(["", "a", "a"]) == [b"a"]
    assert split_at_stop(b"one two three", [b"three", b"two"]) == (b"one ", True)
    assert split_at_stop(b"abc", [b"z"]) == (b"abc", False)
