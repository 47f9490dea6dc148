"""The stream client's cursor keeping: what it resumes from, and the repeats it drops."""

from __future__ import annotations

import orjson

from mds.client.stream import Cursors, ws_url


def msg(kind: str, offset: int, epoch: str = "e1", symbol: str = "AAPL") -> dict[str, object]:
    return {"type": kind, "symbol": symbol, "offset": offset, "epoch": epoch}


def test_a_first_subscribe_has_no_cursors_and_a_later_one_resumes_each_symbol_seen() -> None:
    cursors = Cursors()
    first = orjson.loads(cursors.subscribe(["AAPL", "MSFT"], None, "1m"))
    assert first == {"action": "subscribe", "symbols": ["AAPL", "MSFT"], "interval": "1m"}
    for m in (msg("snapshot", 10), msg("bar", 11), msg("quote", 12)):
        assert cursors.accept(m)
    again = orjson.loads(cursors.subscribe(["AAPL", "MSFT"], ["bars"], "5m"))
    assert again["cursors"] == {"AAPL": {"offset": 12, "epoch": "e1"}}  # MSFT: nothing seen, a snapshot
    assert again["channels"] == ["bars"] and again["interval"] == "5m"


def test_replayed_messages_after_resumed_are_not_mistaken_for_repeats() -> None:
    cursors = Cursors()
    cursors.accept(msg("bar", 5))
    # "resumed" carries the head (9); the replayed bars 6..9 follow it and must be kept.
    assert cursors.accept(msg("resumed", 9))
    assert [cursors.accept(msg("bar", o)) for o in (6, 7, 8, 9)] == [True] * 4
    assert cursors.by_symbol["AAPL"].offset == 9


def test_a_repeat_of_its_epoch_is_dropped_and_a_new_epoch_starts_over() -> None:
    cursors = Cursors()
    cursors.accept(msg("bar", 7))
    assert not cursors.accept(msg("bar", 7)) and not cursors.accept(msg("quote", 3))
    assert cursors.accept(msg("reset", 2, "e2")) and cursors.accept(msg("snapshot", 2, "e2"))
    assert cursors.accept(msg("bar", 3, "e2"))
    assert cursors.accept({"type": "error", "field": "symbols", "detail": "unknown symbol 'X'"})


def test_websocket_url_of_the_base_url() -> None:
    assert ws_url("http://127.0.0.1:8001") == "ws://127.0.0.1:8001/ws"
    assert ws_url("https://mds.example/base") == "wss://mds.example/base/ws"
