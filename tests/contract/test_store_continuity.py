"""Store contract, continuity part: the full gap scan, confirmed-empty ("no trades") bars, and
the batched backfill calls a gap scan enqueues through.

Every backend in ``conftest.BACKENDS`` must pass all of it. Expected bar times here are
plain epochs ``E[i] = T0 + i minutes``; the calendar plays no part at this level.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import BackfillStatus, WriteResult
from mds.storage.base import NewBackfill, Store

T0 = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
W1 = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
W2 = W1 + timedelta(hours=1)
M1 = Interval.M1
BASE = int(T0.timestamp())
EXPECTED = BASE + 60 * np.arange(10, dtype=np.int64)


def epoch(i: int) -> int:
    return BASE + 60 * i


def bars(symbol: str, minutes: list[int] | range, *, close: float = 100.0) -> list[Bar]:
    return [
        Bar(symbol, M1, T0 + timedelta(minutes=i), 100.0, 101.0, 99.0, close, 10.0, "sim") for i in minutes
    ]


def as_lists(found: dict[str, np.ndarray]) -> dict[str, list[int]]:
    return {s: a.tolist() for s, a in found.items()}


class TestScanMissing:
    async def test_complete_symbols_are_absent_and_holes_found(self, store: Store) -> None:
        await store.write_bars(bars("FULL", range(10)), as_of=W1)
        await store.write_bars(bars("HOLEY", [1, 2, 3, 6, 7, 8]), as_of=W1)
        found = await store.scan_missing(M1, EXPECTED, ["FULL", "HOLEY", "NONE"])
        assert set(found) == {"HOLEY", "NONE"}
        assert found["HOLEY"].dtype == np.int64
        assert as_lists(found) == {
            "HOLEY": [epoch(0), epoch(4), epoch(5), epoch(9)],
            "NONE": EXPECTED.tolist(),
        }

    async def test_only_expected_times_of_that_interval_count(self, store: Store) -> None:
        # Nine expected bars plus one at an unexpected time must not look complete.
        odd = Bar("ODD", M1, T0 + timedelta(seconds=90), 100.0, 101.0, 99.0, 100.0, 1.0, "sim")
        await store.write_bars([*bars("ODD", range(9)), odd], as_of=W1)
        five = [b.with_(interval=Interval.M5) for b in bars("ODD", [9])]
        await store.write_bars(five, as_of=W1)
        found = await store.scan_missing(M1, EXPECTED, ["ODD"])
        assert as_lists(found) == {"ODD": [epoch(9)]}

    async def test_revisions_count_once_and_duplicates_are_harmless(self, store: Store) -> None:
        await store.write_bars(bars("AAPL", range(10)), as_of=W1)
        await store.write_bars(bars("AAPL", range(5), close=100.5), as_of=W2)
        assert await store.scan_missing(M1, EXPECTED, ["AAPL", "AAPL"]) == {}

    async def test_nothing_expected_or_nobody_asked(self, store: Store) -> None:
        empty = np.empty(0, dtype=np.int64)
        assert await store.scan_missing(M1, empty, ["AAPL"]) == {}
        assert await store.scan_missing(M1, EXPECTED, []) == {}

    async def test_many_symbols(self, store: Store) -> None:
        names = [f"S{i:04d}" for i in range(2500)]  # more than one chunk of symbols
        batch = [b for n in names for b in bars(n, range(10)) if not (n == "S2100" and b.ts == T0)]
        await store.write_bars(batch, as_of=W1)
        found = await store.scan_missing(M1, EXPECTED, [*names, "ZZZ"])
        assert as_lists(found) == {"S2100": [epoch(0)], "ZZZ": EXPECTED.tolist()}

    async def test_confirmed_empty_is_not_missing(self, store: Store) -> None:
        await store.write_bars(bars("ILLQ", [0, 1, 2, 5, 6, 7, 8, 9]), as_of=W1)
        got = await store.record_empty_evidence(
            "ILLQ", M1, [epoch(3)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        assert got == [epoch(3)]
        assert as_lists(await store.scan_missing(M1, EXPECTED, ["ILLQ"])) == {"ILLQ": [epoch(4)]}
        await store.record_empty_evidence(
            "ILLQ", M1, [epoch(4)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        assert await store.scan_missing(M1, EXPECTED, ["ILLQ"]) == {}
        # Confirmed-empty times of a symbol without a single bar are subtracted too.
        await store.record_empty_evidence(
            "DARK", M1, [epoch(0)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        assert as_lists(await store.scan_missing(M1, EXPECTED, ["DARK"])) == {"DARK": EXPECTED[1:].tolist()}


class TestConfirmedEmpty:
    async def test_one_provider_needing_two_answers(self, store: Store) -> None:
        record = lambda eps, when: store.record_empty_evidence(  # noqa: E731
            "ILLQ", M1, eps, "sim", now=when, needed_answers=2, needed_providers=1
        )
        assert await record([epoch(2), epoch(1)], W1) == []
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == []
        assert await record([epoch(2), epoch(3), epoch(1)], W2) == [epoch(1), epoch(2)]
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == [epoch(1), epoch(2)]
        # Already confirmed: more evidence confirms nothing new.
        assert await record([epoch(1), epoch(3)], W2) == [epoch(3)]
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == [epoch(1), epoch(2), epoch(3)]

    async def test_two_providers_needed(self, store: Store) -> None:
        async def record(provider: str) -> list[int]:
            return await store.record_empty_evidence(
                "ILLQ", M1, [epoch(4)], provider, now=W1, needed_answers=2, needed_providers=2
            )

        assert await record("polygon") == []
        assert await record("polygon") == []  # two answers, but from one provider
        assert await record("alpaca") == [epoch(4)]
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == [epoch(4)]

    @pytest.mark.parametrize("neighbours", [[], [0, 9]], ids=["series-empty", "series-has-bars"])
    async def test_a_bar_that_arrives_after_all_undoes_the_confirmation(
        self, store: Store, neighbours: list[int]
    ) -> None:
        # Both write paths: a batch into an empty span (PostgreSQL COPYs it straight in)
        # and one among stored bars (staged and merged).
        await store.write_bars(bars("LATE", neighbours), as_of=W1)
        await store.record_empty_evidence(
            "LATE", M1, [epoch(3), epoch(4)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        assert await store.confirmed_empty("LATE", M1, T0, W2) == [epoch(3), epoch(4)]
        assert await store.write_bars(bars("LATE", [3]), as_of=W2) == WriteResult(inserted=1)
        assert await store.confirmed_empty("LATE", M1, T0, W2) == [epoch(4)]

    async def test_stored_bars_get_no_evidence(self, store: Store) -> None:
        await store.write_bars(bars("AAPL", [0]), as_of=W1)
        got = await store.record_empty_evidence(
            "AAPL", M1, [epoch(0), epoch(1)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        assert got == [epoch(1)]
        assert await store.confirmed_empty("AAPL", M1, T0, W2) == [epoch(1)]

    async def test_clear_forgets_evidence_and_confirmation(self, store: Store) -> None:
        async def record() -> list[int]:
            return await store.record_empty_evidence(
                "ILLQ", M1, [epoch(0), epoch(1)], "sim", now=W1, needed_answers=2, needed_providers=1
            )

        await record()
        assert await record() == [epoch(0), epoch(1)]
        await store.clear_empty_evidence("ILLQ", M1, [epoch(0)])
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == [epoch(1)]
        # The evidence went too: one more answer is not enough again.
        assert await record() == []
        assert await record() == [epoch(0)]

    async def test_writing_a_bar_clears_it(self, store: Store) -> None:
        async def record() -> list[int]:
            return await store.record_empty_evidence(
                "ILLQ",
                M1,
                [epoch(0), epoch(1), epoch(2)],
                "sim",
                now=W1,
                needed_answers=2,
                needed_providers=1,
            )

        await record()
        assert await record() == [epoch(0), epoch(1), epoch(2)]
        await store.write_bars(bars("ILLQ", [1]) + bars("OTHER", [2]), as_of=W2)
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == [epoch(0), epoch(2)]
        await store.clear_empty_evidence("ILLQ", M1, [epoch(0), epoch(2)])
        await store.write_bars(bars("ILLQ", [1], close=100.5), as_of=W2)  # a revision
        # Minute 1's evidence went with the write; the others' with the clear.
        assert await record() == []
        assert await store.confirmed_empty("ILLQ", M1, T0, W2) == []

    async def test_range_and_counts(self, store: Store) -> None:
        for symbol, minutes in (("A", [0, 1, 5]), ("B", [1, 9]), ("C", [1])):
            await store.record_empty_evidence(
                symbol,
                M1,
                [epoch(i) for i in minutes],
                "sim",
                now=W1,
                needed_answers=1,
                needed_providers=1,
            )
        await store.record_empty_evidence(
            "A", Interval.M5, [epoch(0)], "sim", now=W1, needed_answers=1, needed_providers=1
        )
        start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=9)
        assert await store.confirmed_empty("A", M1, start, end) == [epoch(1), epoch(5)]
        assert await store.count_confirmed_empty(M1, start, end) == 4
        assert await store.count_confirmed_empty(M1, T0, W2) == 6
        assert await store.count_confirmed_empty(M1, start, end, ["A", "B", "NOPE"]) == 3
        assert await store.count_confirmed_empty(M1, T0, W2, []) == 0
        assert await store.count_confirmed_empty(Interval.M5, T0, W2) == 1


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class TestBatchedBackfills:
    async def test_create_backfills_returns_the_rows_in_spec_order(self, store: Store) -> None:
        specs = [
            NewBackfill("B", M1, hours(1), hours(2), Tier.T1),
            NewBackfill("A", Interval.D1, hours(0), hours(24), Tier.T0),
            NewBackfill("B", M1, hours(0), hours(1), Tier.T1),
            NewBackfill("B", M1, hours(1), hours(2), Tier.T1),  # equal specs are two rows
        ]
        got = await store.create_backfills(specs, now=W1)
        assert [(r.symbol, r.interval, r.start, r.end, r.priority) for r in got] == [tuple(s) for s in specs]
        ids = [r.id for r in got]
        assert len(set(ids)) == 4 and ids[0] < ids[3]  # equal specs take ids in order
        for rec in got:
            assert (rec.status, rec.attempts, rec.last_error) == (BackfillStatus.QUEUED, 0, None)
            assert rec.created_at == rec.updated_at == W1
            assert await store.get_backfill(rec.id) == rec
        assert await store.create_backfills([], now=W1) == []

    async def test_create_backfills_of_many_rows(self, store: Store) -> None:
        specs = [NewBackfill(f"S{i:04d}", M1, hours(0), hours(1), Tier.T2) for i in range(1500)]
        got = await store.create_backfills(specs, now=W1)
        assert [r.symbol for r in got] == [s.symbol for s in specs]
        assert len(await store.active_backfills()) == 1500

    async def test_active_backfills_many_groups_active_jobs_by_symbol(self, store: Store) -> None:
        a_old, a_new, b_done, b_run, c_day = await store.create_backfills(
            [
                NewBackfill("A", M1, hours(0), hours(1), Tier.T0),
                NewBackfill("A", M1, hours(1), hours(2), Tier.T0),
                NewBackfill("B", M1, hours(0), hours(1), Tier.T1),
                NewBackfill("B", M1, hours(1), hours(2), Tier.T1),
                NewBackfill("C", Interval.D1, hours(0), hours(24), Tier.T1),
            ],
            now=W1,
        )
        newest = await store.create_backfills([NewBackfill("A", M1, hours(5), hours(6), Tier.T0)], now=W2)
        await store.update_backfill(b_done.id, status=BackfillStatus.DONE, now=W2)
        await store.update_backfill(b_run.id, status=BackfillStatus.RUNNING, now=W2)
        got = await store.active_backfills_many(["A", "B", "C", "NONE", "A"], M1)
        assert {s: [r.id for r in recs] for s, recs in got.items()} == {
            "A": [a_old.id, a_new.id, newest[0].id],  # oldest first
            "B": [b_run.id],  # running counts, done does not
        }
        assert got["B"][0].status is BackfillStatus.RUNNING
        # The same rows as the one-symbol lookup; other intervals and symbols kept apart.
        assert got["A"] == await store.active_backfills("A", M1)
        assert await store.active_backfills_many(["C"], Interval.D1) == {"C": [c_day]}
        assert await store.active_backfills_many([], M1) == {}

    async def test_active_backfills_many_of_many_symbols(self, store: Store) -> None:
        names = [f"S{i:04d}" for i in range(3000)]
        await store.create_backfills(
            [NewBackfill(n, M1, hours(0), hours(1), Tier.T1) for n in names[::2]], now=W1
        )
        got = await store.active_backfills_many(names, M1)
        assert sorted(got) == names[::2] and all(len(v) == 1 for v in got.values())
