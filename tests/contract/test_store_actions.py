"""The CorporateActionStore contract, on every backend: actions are point in time (a read
"as of T" sees the versions learned by T), a repeated announcement keeps the first
knowledge time, and a restatement adds a version."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mds.domain.actions import ActionType, CorporateAction, SuspectedAction
from mds.storage.base import Store

D1 = datetime(2025, 5, 20, 22, 0, tzinfo=UTC)
D2 = D1 + timedelta(days=30)
D3 = D2 + timedelta(days=30)


def split(ex: date, ratio: float, symbol: str = "AAPL", source: str = "polygon") -> CorporateAction:
    return CorporateAction(symbol, ActionType.SPLIT, ex, ratio=ratio, source=source)


def dividend(ex: date, amount: float, symbol: str = "AAPL", **kw: object) -> CorporateAction:
    return CorporateAction(
        symbol, ActionType.DIVIDEND, ex, amount=amount, currency="USD", source="polygon", **kw
    )  # type: ignore[arg-type]


async def test_actions_are_read_as_of_the_time_mds_learned_them(store: Store) -> None:
    four = split(date(2025, 6, 9), 4.0)
    new = await store.write_corporate_actions([four], as_of=D1)
    assert [(a.ex_date, a.ratio, a.as_of) for a in new] == [(date(2025, 6, 9), 4.0, D1)]
    div = dividend(date(2025, 8, 11), 0.26, declared_date=date(2025, 7, 31), pay_date=date(2025, 8, 14))
    await store.write_corporate_actions([div], as_of=D2)

    assert [a.type for a in await store.corporate_actions("AAPL")] == [ActionType.SPLIT, ActionType.DIVIDEND]
    assert await store.corporate_actions("AAPL", as_of=D1 - timedelta(seconds=1)) == []
    before_div = await store.corporate_actions("AAPL", as_of=D2 - timedelta(microseconds=1))
    assert [a.type for a in before_div] == [ActionType.SPLIT]
    (stored_div,) = await store.corporate_actions("AAPL", start=date(2025, 8, 1))
    assert (stored_div.amount, stored_div.currency, stored_div.declared_date, stored_div.pay_date) == (
        0.26,
        "USD",
        date(2025, 7, 31),
        date(2025, 8, 14),
    )
    assert stored_div.record_date is None and stored_div.as_of == D2
    assert await store.corporate_actions("AAPL", end=date(2025, 6, 8)) == []
    assert await store.corporate_actions("MSFT") == []


async def test_a_repeated_announcement_keeps_the_first_knowledge_time(store: Store) -> None:
    await store.write_corporate_actions([split(date(2025, 6, 9), 4.0)], as_of=D1)
    # Another vendor, later, with the same terms: nothing new, the action stays learned at D1.
    again = await store.write_corporate_actions([split(date(2025, 6, 9), 4.0, source="yahoo")], as_of=D2)
    assert again == []
    (kept,) = await store.corporate_actions("AAPL")
    assert (kept.as_of, kept.source) == (D1, "polygon")


async def test_a_restatement_is_a_new_version_and_old_reads_keep_the_old_one(store: Store) -> None:
    await store.write_corporate_actions([dividend(date(2025, 8, 11), 0.25)], as_of=D1)
    (restated,) = await store.write_corporate_actions([dividend(date(2025, 8, 11), 0.26)], as_of=D2)
    assert (restated.amount, restated.as_of) == (0.26, D2)
    assert [a.amount for a in await store.corporate_actions("AAPL")] == [0.26]
    assert [a.amount for a in await store.corporate_actions("AAPL", as_of=D2 - timedelta(seconds=1))] == [
        0.25
    ]
    # Within one batch the later version is the one meant, and repeating it stores nothing.
    batch = [dividend(date(2025, 11, 10), 0.26), dividend(date(2025, 11, 10), 0.27)]
    assert [a.amount for a in await store.write_corporate_actions(batch, as_of=D3)] == [0.27]
    assert await store.write_corporate_actions([dividend(date(2025, 11, 10), 0.27)], as_of=D3) == []
    assert [a.amount for a in await store.corporate_actions("AAPL", start=date(2025, 11, 1))] == [0.27]


async def test_symbols_with_actions_learned_since(store: Store) -> None:
    await store.write_corporate_actions([split(date(2025, 6, 9), 4.0)], as_of=D1)
    await store.write_corporate_actions([split(date(2024, 1, 8), 0.5, symbol="MSFT")], as_of=D2)
    assert await store.corporate_action_symbols() == {"AAPL": D1, "MSFT": D2}
    assert await store.corporate_action_symbols(learned_since=D1 + timedelta(seconds=1)) == {"MSFT": D2}


async def test_suspected_actions_are_recorded_once_listed_and_cleared(store: Store) -> None:
    s1 = SuspectedAction("IBM", date(2025, 3, 10), 240.0, 60.5, 240.0 / 60.5, D1)
    s2 = SuspectedAction("IBM", date(2025, 4, 1), 61.0, 30.0, 61.0 / 30.0, D2)
    other = SuspectedAction("KO", date(2025, 3, 11), 70.0, 35.2, 70.0 / 35.2, D1)
    assert await store.record_suspected_actions([s1, s2, other]) == 3
    assert await store.record_suspected_actions([s1]) == 0
    assert [s.session for s in await store.suspected_actions(symbol="IBM")] == [
        date(2025, 4, 1),
        date(2025, 3, 10),
    ]
    assert [s.symbol for s in await store.suspected_actions(limit=1)] == ["IBM"]
    assert (await store.suspected_actions(symbol="KO"))[0] == other
    assert await store.clear_suspected_actions("IBM", [date(2025, 3, 10)]) == 1
    assert [s.session for s in await store.suspected_actions(symbol="IBM")] == [date(2025, 4, 1)]
