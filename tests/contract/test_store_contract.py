"""The Store contract: every backend in ``conftest.BACKENDS`` must pass all of it.

Times: bars open at ``T0 + i * interval``; writes happen at ``W1 < W2 < W3``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mds.storage
from mds.domain.models import Bar, BarStatus, Interval, Quote, Tier
from mds.domain.records import BackfillStatus, UniverseEntry, WriteResult
from mds.errors import NotFound, StorageError
from mds.storage.base import Store

T0 = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
W1 = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
W2 = W1 + timedelta(hours=1)
W3 = W1 + timedelta(hours=2)
US = timedelta(microseconds=1)
FAR = T0 + timedelta(days=30)
M1 = Interval.M1


def bar(i: int = 0, *, symbol: str = "AAPL", interval: Interval = M1, **kw: object) -> Bar:
    fields: dict[str, object] = dict(
        symbol=symbol,
        interval=interval,
        ts=T0 + i * interval.delta,
        open=100.0,
        high=101.25,
        low=99.5,
        close=100.75,
        volume=12_345.0,
        provider="sim",
    )
    fields.update(kw)
    return Bar(**fields)  # type: ignore[arg-type]


async def closes(store: Store, *, as_of: datetime | None = None) -> list[float]:
    return [b.close for b in await store.read_bars("AAPL", M1, T0, FAR, as_of=as_of)]


class TestBars:
    async def test_round_trip_keeps_every_field(self, store: Store) -> None:
        sent = bar(
            provider="polygon",
            adjusted=True,
            status=BarStatus.PROVISIONAL,
            open=187.1234567,
            high=188.5,
            low=186.0001,
            close=187.99,
            volume=1_234_567.0,
            as_of=datetime(2000, 1, 1, tzinfo=UTC),  # ignored: the argument stamps bars
        )
        assert await store.write_bars([sent], as_of=W1) == WriteResult(inserted=1)
        [got] = await store.read_bars("AAPL", M1, T0, FAR)
        assert got == sent.with_(as_of=W1)
        assert got.ts.tzinfo is not None and got.as_of is not None
        assert got.as_of.utcoffset() == timedelta(0)

    async def test_start_inclusive_end_exclusive(self, store: Store) -> None:
        await store.write_bars([bar(i) for i in range(5)], as_of=W1)
        got = await store.read_bars("AAPL", M1, T0 + M1.delta, T0 + 3 * M1.delta)
        assert [b.ts for b in got] == [T0 + M1.delta, T0 + 2 * M1.delta]

    async def test_identical_rewrite_is_a_no_op(self, store: Store) -> None:
        await store.write_bars([bar()], as_of=W1)
        # identical values from another provider are no news either
        again = await store.write_bars([bar(), bar(provider="other")], as_of=W2)
        assert again == WriteResult(unchanged=1)
        [only] = await store.bar_revisions("AAPL", M1, T0)
        assert only.as_of == W1 and only.provider == "sim"

    async def test_changed_bar_becomes_a_revision(self, store: Store) -> None:
        await store.write_bars([bar(close=100.0)], as_of=W1)
        result = await store.write_bars([bar(close=100.5)], as_of=W2)
        assert result == WriteResult(revised=1)
        assert await closes(store) == [100.5]
        assert await closes(store, as_of=W2 - US) == [100.0]
        assert await closes(store, as_of=W1 - US) == []
        latest = await store.latest_bar("AAPL", M1)
        assert latest is not None and latest.close == 100.5 and latest.as_of == W2

    async def test_three_revisions_at_each_boundary(self, store: Store) -> None:
        for close, when in ((100.0, W1), (100.5, W2), (101.0, W3)):
            await store.write_bars([bar(close=close)], as_of=when)
        expected = [
            (W1 - US, []),
            (W1, [100.0]),
            (W2 - US, [100.0]),
            (W2, [100.5]),
            (W3 - US, [100.5]),
            (W3, [101.0]),
            (W3 + timedelta(days=1), [101.0]),
        ]
        for when, want in expected:
            assert await closes(store, as_of=when) == want, when
        revisions = await store.bar_revisions("AAPL", M1, T0)
        assert [(b.close, b.as_of) for b in revisions] == [(100.0, W1), (100.5, W2), (101.0, W3)]

    async def test_provisional_to_final_is_a_revision(self, store: Store) -> None:
        await store.write_bars([bar(status=BarStatus.PROVISIONAL)], as_of=W1)
        assert await store.write_bars([bar()], as_of=W2) == WriteResult(revised=1)
        [got] = await store.read_bars("AAPL", M1, T0, FAR)
        assert got.status is BarStatus.FINAL
        [old] = await store.read_bars("AAPL", M1, T0, FAR, as_of=W1)
        assert old.status is BarStatus.PROVISIONAL

    async def test_provisional_over_identical_final_is_a_no_op(self, store: Store) -> None:
        await store.write_bars([bar()], as_of=W1)
        late = await store.write_bars([bar(status=BarStatus.PROVISIONAL)], as_of=W2)
        assert late == WriteResult(unchanged=1)
        [got] = await store.read_bars("AAPL", M1, T0, FAR)
        assert got.status is BarStatus.FINAL and got.as_of == W1

    async def test_limit_keeps_newest_in_ascending_order(self, store: Store) -> None:
        await store.write_bars([bar(i, close=100.0 + i) for i in range(10)], as_of=W1)
        await store.write_bars([bar(9, close=99.9)], as_of=W2)
        got = await store.read_bars("AAPL", M1, T0, FAR, limit=3)
        assert [b.close for b in got] == [107.0, 108.0, 99.9]
        old = await store.read_bars("AAPL", M1, T0, FAR, limit=2, as_of=W1)
        assert [b.close for b in old] == [108.0, 109.0]

    async def test_mixed_batch_counts_each_key(self, store: Store) -> None:
        first = [bar(0), bar(0, symbol="MSFT"), bar(0, interval=Interval.M5)]
        assert await store.write_bars(first, as_of=W1) == WriteResult(inserted=3)
        second = [
            bar(0),  # unchanged
            bar(0, symbol="MSFT", close=101.0),  # revised
            bar(1, interval=Interval.M5, close=100.0),  # duplicate key: the last one wins
            bar(1, interval=Interval.M5, close=100.5),
        ]
        assert await store.write_bars(second, as_of=W2) == WriteResult(1, 1, 1)
        m5 = await store.read_bars("AAPL", Interval.M5, T0, FAR)
        assert [b.close for b in m5] == [100.75, 100.5]
        msft = await store.read_bars("MSFT", M1, T0, FAR)
        assert [b.close for b in msft] == [101.0]
        assert await store.read_bars("AAPL", Interval.M15, T0, FAR) == []

    async def test_a_key_twice_in_a_series_with_no_bars_yet_keeps_the_last(self, store: Store) -> None:
        # On PostgreSQL a batch into an empty span is COPYed straight in; the repeated key
        # makes that fail, and the merge then keeps the last bar of the key.
        batch = [bar(0), bar(1, close=100.25), bar(2), bar(1, close=100.5)]
        assert await store.write_bars(batch, as_of=W1) == WriteResult(inserted=3)
        assert [b.close for b in await store.read_bars("AAPL", M1, T0, FAR)] == [100.75, 100.5, 100.75]
        assert await store.bar_revisions("AAPL", M1, batch[1].ts) == await store.read_bars(
            "AAPL", M1, batch[1].ts, batch[2].ts
        )

    async def test_changed_since_names_new_and_revised_bars_from_that_time(self, store: Store) -> None:
        # All new (PostgreSQL's COPY path): only the keys at or after the time are named.
        first = await store.write_bars([bar(i) for i in range(4)], as_of=W1, changed_since=T0 + 2 * M1.delta)
        assert first.inserted == 4
        assert first.changed == (("AAPL", "1m", T0 + 2 * M1.delta), ("AAPL", "1m", T0 + 3 * M1.delta))
        # A merge: one unchanged, one revised, one new, one revised before the time, two series.
        second = await store.write_bars(
            [bar(0, close=99.0), bar(2), bar(3, close=101.0), bar(4), bar(4, symbol="MSFT")],
            as_of=W2,
            changed_since=T0 + M1.delta,
        )
        assert (second.inserted, second.revised, second.unchanged) == (2, 2, 1)
        assert second.changed == (
            ("AAPL", "1m", T0 + 3 * M1.delta),
            ("AAPL", "1m", T0 + 4 * M1.delta),
            ("MSFT", "1m", T0 + 4 * M1.delta),
        )
        # Not asked: no list, whatever was written.
        third = await store.write_bars([bar(5)], as_of=W3)
        assert third == WriteResult(inserted=1)

    async def test_empty_batch(self, store: Store) -> None:
        assert await store.write_bars([], as_of=W1) == WriteResult()

    async def test_bar_timestamps_are_epoch_seconds(self, store: Store) -> None:
        await store.write_bars([bar(i) for i in (0, 1, 3)], as_of=W1)
        got = await store.bar_timestamps("AAPL", M1, T0, T0 + 3 * M1.delta)
        start = int(T0.timestamp())
        assert got == [start, start + 60]
        assert all(type(t) is int for t in got)

    async def test_latest_bar(self, store: Store) -> None:
        assert await store.latest_bar("AAPL", M1) is None
        await store.write_bars([bar(i, close=100.0 + i) for i in range(3)], as_of=W1)
        latest = await store.latest_bar("AAPL", M1)
        assert latest is not None and latest.ts == T0 + 2 * M1.delta and latest.close == 102.0

    async def test_reads_run_alongside_writes(self, store: Store) -> None:
        batches = [[bar(i + 100 * n) for i in range(100)] for n in range(5)]
        writes = [store.write_bars(b, as_of=W1) for b in batches]
        reads = [store.read_bars("AAPL", M1, T0, FAR + timedelta(days=365)) for _ in range(5)]
        results = await asyncio.gather(*writes, *reads)
        assert all(r == WriteResult(inserted=100) for r in results[:5])
        assert len(await store.bar_timestamps("AAPL", M1, T0, FAR)) == 500


class TestQuotes:
    async def test_write_and_latest(self, store: Store) -> None:
        assert await store.latest_quote("AAPL") is None
        q1 = Quote("AAPL", T0, 100.0, 100.1, 100.05, 300.0, 200.0, "finnhub", W1)
        q2 = Quote("AAPL", T0 + timedelta(seconds=5, microseconds=250), None, None, 100.2)
        assert await store.write_quotes([q1, q2]) == 2
        assert await store.write_quotes([q1]) == 0  # identical re-insert
        assert await store.latest_quote("AAPL") == q2
        await store.write_quotes([Quote("AAPL", T0 - timedelta(seconds=1), 1.0, 1.0, 1.0)])
        assert await store.latest_quote("AAPL") == q2


class TestUniverse:
    async def test_replace_marks_missing_symbols_inactive(self, store: Store) -> None:
        first = [
            UniverseEntry("MSFT", Tier.T0, name="Microsoft"),
            UniverseEntry("AAPL", Tier.T0, name="Apple"),
            UniverseEntry("ZZZ", Tier.T2, exchange="XNAS"),
        ]
        await store.upsert_universe(first, version_tag="v1", source_meta={"src": "csv"})
        assert [e.symbol for e in await store.universe()] == ["AAPL", "MSFT", "ZZZ"]
        assert await store.universe(tier=Tier.T2) == [first[2]]

        second = [UniverseEntry("AAPL", Tier.T1, name="Apple"), UniverseEntry("NVDA", Tier.T0)]
        await store.upsert_universe(second, version_tag="v2", source_meta={"n": 2})
        assert [(e.symbol, e.tier) for e in await store.universe()] == [
            ("NVDA", Tier.T0),
            ("AAPL", Tier.T1),
        ]
        everything = await store.universe(active_only=False)
        assert {e.symbol: e.active for e in everything} == {
            "AAPL": True,
            "MSFT": False,
            "NVDA": True,
            "ZZZ": False,
        }
        msft = await store.get_symbol("MSFT")
        assert msft == UniverseEntry("MSFT", Tier.T0, active=False, name="Microsoft")
        assert await store.get_symbol("msft") is None
        assert await store.get_symbol("NOPE") is None

    async def test_versions_recorded_and_repeatable(self, store: Store, fetch) -> None:
        entries = [UniverseEntry("AAPL", Tier.T0)]
        await store.upsert_universe(entries, version_tag="v1", source_meta={"a": 1})
        await store.upsert_universe(entries, version_tag="v1", source_meta={"a": 2})
        await store.upsert_universe(entries, version_tag="v2", source_meta={})
        rows = await fetch("SELECT version_tag, source_meta FROM universe_versions ORDER BY 1")
        assert [(tag, meta.replace(" ", "")) for tag, meta in rows] == [
            ("v1", '{"a":2}'),
            ("v2", "{}"),
        ]


class TestCursors:
    async def test_cursor_never_moves_backwards(self, store: Store) -> None:
        assert await store.get_cursor("AAPL", M1, "auto") is None
        await store.advance_cursor("AAPL", M1, "auto", T0 + M1.delta, now=W1)
        await store.advance_cursor("AAPL", M1, "auto", T0, now=W2)
        cursor = await store.get_cursor("AAPL", M1, "auto")
        assert cursor is not None
        assert (cursor.last_ts, cursor.updated_at) == (T0 + M1.delta, W1)
        await store.advance_cursor("AAPL", M1, "auto", T0 + 2 * M1.delta, now=W3)
        cursor = await store.get_cursor("AAPL", M1, "auto")
        assert cursor is not None and (cursor.last_ts, cursor.updated_at) == (T0 + 2 * M1.delta, W3)
        assert await store.get_cursor("AAPL", M1, "polygon") is None
        assert await store.get_cursor("AAPL", Interval.M5, "auto") is None


class TestBackfills:
    async def test_create_update_get(self, store: Store) -> None:
        job = await store.create_backfill("AAPL", M1, T0, FAR, Tier.T1, now=W1)
        assert (job.symbol, job.interval, job.start, job.end, job.priority) == (
            "AAPL",
            M1,
            T0,
            FAR,
            Tier.T1,
        )
        assert (job.status, job.attempts, job.last_error) == (BackfillStatus.QUEUED, 0, None)
        assert job.created_at == job.updated_at == W1
        assert await store.get_backfill(job.id) == job

        await store.update_backfill(
            job.id, status=BackfillStatus.FAILED, now=W2, attempts=3, last_error="429"
        )
        await store.update_backfill(job.id, status=BackfillStatus.RUNNING, now=W3)
        got = await store.get_backfill(job.id)
        assert got is not None
        assert (got.status, got.attempts, got.last_error) == (BackfillStatus.RUNNING, 3, "429")
        assert (got.created_at, got.updated_at) == (W1, W3)
        assert await store.get_backfill(job.id + 1000) is None
        with pytest.raises(NotFound):
            await store.update_backfill(job.id + 1000, status=BackfillStatus.DONE, now=W3)

    async def test_list_filters_and_order(self, store: Store) -> None:
        a = await store.create_backfill("A", M1, T0, FAR, Tier.T0, now=W1)
        b = await store.create_backfill("B", M1, T0, FAR, Tier.T1, now=W1)
        c = await store.create_backfill("C", M1, T0, FAR, Tier.T0, now=W1)
        await store.update_backfill(a.id, status=BackfillStatus.FAILED, now=W2)
        ids = lambda jobs: [j.id for j in jobs]  # noqa: E731
        assert ids(await store.list_backfills()) == [a.id, c.id, b.id]
        assert ids(await store.list_backfills(tier=Tier.T0)) == [a.id, c.id]
        assert ids(await store.list_backfills(status=BackfillStatus.QUEUED)) == [c.id, b.id]
        failed_t0 = await store.list_backfills(status=BackfillStatus.FAILED, tier=Tier.T0)
        assert ids(failed_t0) == [a.id]
        assert ids(await store.list_backfills(limit=1)) == [a.id]


class TestLifecycle:
    async def test_second_migrate_applies_nothing(self, store: Store, fetch) -> None:
        assert await store.migrate() == []
        rows = await fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        # Every migration that ships is applied, and the backends ship the same versions.
        shipped = sorted(
            tuple(p.stem.split("_", 1))
            for p in (Path(mds.storage.__file__).parent / "migrations" / "sqlite").glob("*.sql")
        )
        assert [tuple(r) for r in rows] == shipped
        assert shipped[:3] == [("0001", "initial"), ("0002", "continuity"), ("0003", "analysis")]

    async def test_ping_and_closed_store(self, store: Store) -> None:
        await store.ping()
        await store.close()
        with pytest.raises(StorageError):
            await store.ping()
        await store.close()  # closing twice is harmless


class TestBackfillQueueViews:
    """DLQ and queue views: stats, purge, requeue, active jobs, paging."""

    async def test_list_pages_with_offset(self, store: Store) -> None:
        jobs = [await store.create_backfill(f"S{i}", M1, T0, FAR, Tier.T1, now=W1) for i in range(5)]
        newest_first = [j.id for j in reversed(jobs)]
        pages = [await store.list_backfills(limit=2, offset=k) for k in (0, 2, 4, 6)]
        assert [[j.id for j in page] for page in pages] == [
            newest_first[0:2],
            newest_first[2:4],
            newest_first[4:],
            [],
        ]

    async def test_stats(self, store: Store) -> None:
        empty = await store.backfill_stats()
        zero = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        assert empty == {
            "by_status": zero,
            "by_tier": {"T0": zero, "T1": zero, "T2": zero},
            "oldest_queued_created_at": None,
            "failed_total": 0,
        }
        a = await store.create_backfill("A", M1, T0, FAR, Tier.T0, now=W1)
        await store.create_backfill("B", M1, T0, FAR, Tier.T0, now=W2)
        c = await store.create_backfill("C", M1, T0, FAR, Tier.T2, now=W2)
        await store.create_backfill("D", M1, T0, FAR, Tier.T2, now=W3)
        await store.update_backfill(a.id, status=BackfillStatus.FAILED, now=W3, last_error="x")
        await store.update_backfill(c.id, status=BackfillStatus.RUNNING, now=W3)
        stats = await store.backfill_stats()
        assert stats["by_status"] == {"queued": 2, "running": 1, "done": 0, "failed": 1}
        assert stats["by_tier"]["T0"] == {"queued": 1, "running": 0, "done": 0, "failed": 1}
        assert stats["by_tier"]["T1"] == zero
        assert stats["by_tier"]["T2"] == {"queued": 1, "running": 1, "done": 0, "failed": 0}
        assert stats["oldest_queued_created_at"] == W2
        assert stats["failed_total"] == 1

    async def test_oldest_queued_per_tier(self, store: Store) -> None:
        """What backfill_oldest_age_seconds{tier} reads: queued rows only, the oldest per tier."""
        assert await store.oldest_queued_backfills() == {}
        a = await store.create_backfill("A", M1, T0, FAR, Tier.T0, now=W1)
        await store.create_backfill("B", M1, T0, FAR, Tier.T0, now=W2)
        c = await store.create_backfill("C", M1, T0, FAR, Tier.T2, now=W1)
        await store.create_backfill("D", M1, T0, FAR, Tier.T2, now=W3)
        await store.update_backfill(a.id, status=BackfillStatus.RUNNING, now=W3)  # running: not queued
        await store.update_backfill(c.id, status=BackfillStatus.FAILED, now=W3, last_error="x")
        assert await store.oldest_queued_backfills() == {Tier.T0: W2, Tier.T2: W3}

    async def test_purge_by_status_and_age(self, store: Store) -> None:
        jobs = [await store.create_backfill(f"S{i}", M1, T0, FAR, Tier.T1, now=W1) for i in range(4)]
        await store.update_backfill(jobs[0].id, status=BackfillStatus.DONE, now=W1)
        await store.update_backfill(jobs[1].id, status=BackfillStatus.DONE, now=W3)
        await store.update_backfill(jobs[2].id, status=BackfillStatus.FAILED, now=W1)
        assert await store.purge_backfills(status=BackfillStatus.DONE, older_than=W2) == 1
        assert await store.get_backfill(jobs[0].id) is None
        remaining = {j.id for j in await store.list_backfills()}
        assert remaining == {jobs[1].id, jobs[2].id, jobs[3].id}
        assert await store.purge_backfills(status=BackfillStatus.DONE, older_than=W1) == 0

    async def test_requeue_one_failed_job(self, store: Store) -> None:
        job = await store.create_backfill("A", M1, T0, FAR, Tier.T0, now=W1)
        assert await store.requeue_backfill(job.id, now=W2) is None  # queued, not failed
        await store.update_backfill(
            job.id, status=BackfillStatus.FAILED, now=W2, attempts=5, last_error="429 again"
        )
        got = await store.requeue_backfill(job.id, now=W3)
        assert got is not None and got == await store.get_backfill(job.id)
        assert (got.status, got.attempts, got.last_error) == (BackfillStatus.QUEUED, 0, "429 again")
        assert (got.created_at, got.updated_at) == (W1, W3)
        assert await store.requeue_backfill(job.id, now=W3) is None  # no longer failed
        assert await store.requeue_backfill(job.id + 1000, now=W3) is None

    async def test_requeue_all_failed_of_a_tier(self, store: Store) -> None:
        jobs = [
            await store.create_backfill(f"S{i}", M1, T0, FAR, tier, now=W1)
            for i, tier in enumerate((Tier.T0, Tier.T1, Tier.T0, Tier.T0))
        ]
        for j in jobs[:3]:
            await store.update_backfill(j.id, status=BackfillStatus.FAILED, now=W2, attempts=3)
        t0 = await store.requeue_failed(tier=Tier.T0, now=W3)
        assert [j.id for j in t0] == [jobs[0].id, jobs[2].id]
        assert all(j.status is BackfillStatus.QUEUED and j.attempts == 0 for j in t0)
        rest = await store.requeue_failed(tier=None, now=W3)
        assert [j.id for j in rest] == [jobs[1].id]
        assert await store.requeue_failed(tier=None, now=W3) == []
        assert await store.list_backfills(status=BackfillStatus.FAILED) == []

    async def test_active_jobs_oldest_first(self, store: Store) -> None:
        a = await store.create_backfill("A", M1, T0, FAR, Tier.T2, now=W2)
        b = await store.create_backfill("A", Interval.M5, T0, FAR, Tier.T0, now=W1)
        c = await store.create_backfill("B", M1, T0, FAR, Tier.T0, now=W3)
        d = await store.create_backfill("A", M1, T0, FAR, Tier.T0, now=W3)
        await store.update_backfill(a.id, status=BackfillStatus.RUNNING, now=W3)
        await store.update_backfill(d.id, status=BackfillStatus.DONE, now=W3)
        ids = lambda jobs: [j.id for j in jobs]  # noqa: E731
        assert ids(await store.active_backfills()) == [b.id, a.id, c.id]
        assert ids(await store.active_backfills("A")) == [b.id, a.id]
        assert ids(await store.active_backfills("A", M1)) == [a.id]
        assert ids(await store.active_backfills(interval=M1)) == [a.id, c.id]
        assert await store.active_backfills("NOPE") == []


async def test_update_backfill_range_only_while_queued(store) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from mds.domain.models import Interval, Tier
    from mds.domain.records import BackfillStatus

    t = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    rec = await store.create_backfill("AAPL", Interval.M1, t, t.replace(hour=14), Tier.T0, now=t)
    assert await store.update_backfill_range(rec.id, t.replace(hour=13, minute=0), t.replace(hour=15), now=t)
    got = await store.get_backfill(rec.id)
    assert (got.start, got.end) == (t.replace(hour=13, minute=0), t.replace(hour=15))
    await store.update_backfill(rec.id, status=BackfillStatus.RUNNING, now=t)
    assert not await store.update_backfill_range(rec.id, t, t.replace(hour=16), now=t)
    assert (await store.get_backfill(rec.id)).end == t.replace(hour=15)
