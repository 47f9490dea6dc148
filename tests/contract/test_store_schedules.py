"""The ScheduleStore and JobRunStore contract, on every backend.

Times: runs are queued at ``T0 + n minutes``; claims and expiries happen around ``NOW``.
The concurrency tests start their calls at once with ``asyncio.gather``; on PostgreSQL
they run on separate pooled connections, so only the store's locking keeps them apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from mds.domain.schedules import (
    Hooks,
    JobRun,
    RunStatus,
    Safety,
    Schedule,
    ScheduleMetadata,
    Trigger,
)
from mds.storage.base import Store

T0 = datetime(2026, 1, 5, 21, 30, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
DAY = date(2026, 1, 5)
MIN = timedelta(minutes=1)
PLUS2 = timezone(timedelta(hours=2))


def schedule(name: str = "eod-refresh", **kw: Any) -> Schedule:
    fields: dict[str, Any] = {"name": name, "task": "refresh_eod", "cron": "30 21 * * mon-fri"}
    fields.update(kw)
    return Schedule(**fields)


def run(n: int = 0, **kw: Any) -> JobRun:
    """A queued run of ``refresh_eod`` for DAY, queued at ``T0 + n`` minutes."""
    fields: dict[str, Any] = {
        "task": "refresh_eod",
        "trigger": Trigger.SCHEDULE,
        "logical_date": DAY,
        "queued_at": T0 + n * MIN,
        "schedule": "eod-refresh",
    }
    fields.update(kw)
    return JobRun(**fields)


async def warm(store: Store) -> None:
    """Open every pooled connection first, so the calls under test really overlap (a pool
    connects lazily, and the first call could finish before a second connection is up)."""
    await asyncio.gather(*(store.job_runs(limit=1) for _ in range(8)))


async def running(store: Store, r: JobRun, *, lease_until: datetime = NOW + 5 * MIN) -> JobRun:
    """Store ``r`` and claim it (no limits), so it counts as running until ``lease_until``."""
    stored = await store.create_run(r)
    assert stored.id is not None
    claimed = await store.claim_run(
        stored.id, now=NOW, lease_until=lease_until, single_flight=False, max_concurrency=None
    )
    assert claimed is None
    got = await store.get_run(stored.id)
    assert got is not None
    return got


class TestSchedules:
    async def test_round_trip_keeps_every_field(self, store: Store) -> None:
        meta = ScheduleMetadata(
            queue="market_data",
            priority=2,
            dependencies=["universe-sync"],
            dependency_wait_s=900.0,
            maintenance_windows=[{"start": "22:00", "end": "02:00", "timezone": "America/New_York"}],
            preflight_checks=["store", "provider:eod"],
            safety=Safety(single_flight=True, max_concurrency=3, timeout_s=600.0),
            hooks=Hooks(discord_webhook="system_status", alert_on=["failure", "slow"]),
            created_by="ops",
            created_at=datetime(2026, 1, 2, 9, 0, 0, 123456, tzinfo=UTC),
            updated_by="alice",
            updated_at=datetime(2026, 1, 3, 11, 0, tzinfo=PLUS2),
        )
        market = schedule(
            "close-scan",
            cron=None,
            calendar="XNYS",
            when="after_close+30m",
            timezone="America/New_York",
            args=[1, "two", {"three": 3.5}],
            kwargs={"symbols": ["AAPL", "MSFT"], "full": True, "depth": None},
            metadata=meta,
            enabled=False,
            paused_snapshot={"args": [], "kwargs": {"x": 1}, "metadata": {"queue": "default"}},
            last_due_at=datetime(2026, 1, 5, 21, 30, 0, 1, tzinfo=UTC),
            since=datetime(2026, 1, 4, 12, 0, tzinfo=PLUS2),
        )
        plain = schedule("a-cron")  # every optional field at its default (None, empty)
        await store.put_schedule(market)
        await store.put_schedule(plain)

        got = await store.get_schedule("close-scan")
        assert got == market
        assert got is not None and got.since is not None and got.last_due_at is not None
        assert got.since.utcoffset() == timedelta(0) and got.last_due_at.utcoffset() == timedelta(0)
        assert got.metadata.updated_at == meta.updated_at
        assert await store.get_schedule("a-cron") == plain
        assert await store.get_schedule("nope") is None

    async def test_put_replaces_every_field_and_schedules_are_by_name(self, store: Store) -> None:
        first = schedule(
            "b-sched",
            args=[1],
            kwargs={"a": 1},
            enabled=False,
            paused_snapshot={"args": [1]},
            last_due_at=T0,
            since=T0,
            metadata=ScheduleMetadata(priority=1, created_by="ops"),
        )
        await store.put_schedule(first)
        second = schedule("b-sched", task="scan_gaps", cron="0 * * * *", since=NOW)
        await store.put_schedule(second)
        await store.put_schedule(schedule("a-sched"))
        await store.put_schedule(schedule("c-sched"))

        assert await store.get_schedule("b-sched") == second  # no field of `first` survives
        assert [s.name for s in await store.schedules()] == ["a-sched", "b-sched", "c-sched"]

    async def test_delete_reports_whether_it_existed_and_keeps_runs(self, store: Store) -> None:
        await store.put_schedule(schedule("gone"))
        made = await store.create_run(run(schedule="gone"))
        assert await store.delete_schedule("gone") is True
        assert await store.delete_schedule("gone") is False
        assert await store.get_schedule("gone") is None
        assert [r.id for r in await store.job_runs(schedule="gone")] == [made.id]

    async def test_changed_at_moves_with_every_write_and_delete_but_not_with_fires(
        self, store: Store
    ) -> None:
        assert await store.schedules_changed_at() == (0, 0)
        await store.put_schedule(schedule("a", since=NOW))
        count, first = await store.schedules_changed_at()
        assert count == 1 and first > 0
        await store.put_schedule(schedule("a", since=T0))  # an older since, as another clock writes
        count, second = await store.schedules_changed_at()
        assert count == 1 and second > first
        await store.put_schedule(schedule("b"))
        count, third = await store.schedules_changed_at()
        assert count == 2 and third > second
        assert await store.fire_schedule("a", NOW, run(due_at=NOW)) is not None
        assert await store.schedules_changed_at() == (2, third)  # a fire is not a change
        assert await store.delete_schedule("b")
        assert (await store.schedules_changed_at())[0] == 1


class TestFire:
    async def test_fires_once_per_due_time_and_only_forwards(self, store: Store) -> None:
        await store.put_schedule(schedule())
        due = T0
        fired = await store.fire_schedule("eod-refresh", due, run(due_at=due))
        assert fired is not None and fired.id is not None
        assert fired.status == RunStatus.QUEUED
        assert await store.get_run(fired.id) == fired
        stored = await store.get_schedule("eod-refresh")
        assert stored is not None and stored.last_due_at == due

        assert await store.fire_schedule("eod-refresh", due, run(1, due_at=due)) is None  # same due
        assert await store.fire_schedule("eod-refresh", due - MIN, run(2)) is None  # older due
        assert len(await store.job_runs(schedule="eod-refresh")) == 1  # the refusals wrote nothing
        stored = await store.get_schedule("eod-refresh")
        assert stored is not None and stored.last_due_at == due

        later = await store.fire_schedule("eod-refresh", due + MIN, run(3, due_at=due + MIN))
        assert later is not None and later.id is not None and later.id != fired.id
        stored = await store.get_schedule("eod-refresh")
        assert stored is not None and stored.last_due_at == due + MIN

    async def test_a_disabled_or_unknown_schedule_does_not_fire(self, store: Store) -> None:
        await store.put_schedule(schedule("off", enabled=False))
        assert await store.fire_schedule("off", T0, run(schedule="off")) is None
        assert await store.fire_schedule("nope", T0, run(schedule="nope")) is None
        assert await store.job_runs() == []
        stored = await store.get_schedule("off")
        assert stored is not None and stored.last_due_at is None

    async def test_the_fired_run_is_queued_whatever_it_said(self, store: Store) -> None:
        await store.put_schedule(schedule())
        fired = await store.fire_schedule("eod-refresh", T0, run(status=RunStatus.RUNNING))
        assert fired is not None and fired.id is not None
        got = await store.get_run(fired.id)
        assert got is not None and got.status == RunStatus.QUEUED

    async def test_concurrent_fires_of_one_due_time_make_one_run(self, store: Store) -> None:
        await store.put_schedule(schedule())
        await warm(store)
        results = await asyncio.gather(
            *(store.fire_schedule("eod-refresh", T0, run(i, due_at=T0)) for i in range(8))
        )
        assert sum(r is not None for r in results) == 1
        assert len(await store.job_runs(schedule="eod-refresh")) == 1


class TestRuns:
    async def test_round_trip_keeps_every_field(self, store: Store) -> None:
        full = JobRun(
            task="scan_gaps",
            trigger=Trigger.RUN_NOW,
            logical_date=date(2026, 1, 2),
            queued_at=datetime(2026, 1, 2, 23, 0, 0, 250, tzinfo=PLUS2),
            status=RunStatus.TIMED_OUT,
            schedule="gaps",
            queue="maintenance",
            priority=1,
            due_at=datetime(2026, 1, 2, 21, 0, tzinfo=UTC),
            params={"args": [1, "x"], "kwargs": {"symbols": ["AAPL"], "deep": {"a": None}}},
            metadata={"queue": "maintenance", "safety": {"timeout_s": 60.5}},
            counters={"symbols": 12, "bars": 3400, "ratio": 0.25},
            error="boom",
            note="retried",
            attempt=2,
            started_at=datetime(2026, 1, 2, 21, 0, 1, tzinfo=UTC),
            finished_at=datetime(2026, 1, 2, 21, 1, 2, tzinfo=UTC),
            duration_s=61.0,
            lease_until=datetime(2026, 1, 2, 21, 5, tzinfo=UTC),
            created_by="alice",
        )
        bare = JobRun(task="ping", trigger=Trigger.API, logical_date=DAY, queued_at=T0)
        made = await store.create_run(full)
        made_bare = await store.create_run(bare)
        assert made.id is not None and made_bare.id is not None and made.id != made_bare.id
        assert made == dataclasses.replace(full, id=made.id)

        got = await store.get_run(made.id)
        assert got == made
        assert got is not None
        assert isinstance(got.status, RunStatus) and isinstance(got.trigger, Trigger)
        assert type(got.logical_date) is date
        assert got.queued_at.utcoffset() == timedelta(0)
        assert await store.get_run(made_bare.id) == made_bare
        assert await store.get_run(made_bare.id + 1000) is None

    async def test_update_writes_the_mutable_fields(self, store: Store) -> None:
        made = await store.create_run(run(params={"args": [1]}))
        assert made.id is not None
        changed = dataclasses.replace(
            made,
            status=RunStatus.SUCCEEDED,
            queue="bulk",
            priority=8,
            due_at=T0,
            params={"args": [2], "kwargs": {"k": "v"}},
            metadata={"queue": "bulk"},
            counters={"written": 5},
            error="partial",
            note="slow provider",
            attempt=1,
            started_at=NOW,
            finished_at=NOW + 90 * timedelta(seconds=1),
            duration_s=90.0,
            lease_until=NOW + MIN,
        )
        await store.update_run(changed)
        assert await store.get_run(made.id) == changed

        cleared = dataclasses.replace(changed, error=None, note=None, lease_until=None, duration_s=None)
        await store.update_run(cleared)
        assert await store.get_run(made.id) == cleared

    async def test_update_of_an_unknown_run_raises(self, store: Store) -> None:
        with pytest.raises(LookupError):
            await store.update_run(dataclasses.replace(run(), id=424242))


class TestClaim:
    async def test_claim_moves_a_queued_run_to_running(self, store: Store) -> None:
        made = await store.create_run(run())
        assert made.id is not None
        lease = NOW + 5 * MIN
        assert (
            await store.claim_run(made.id, now=NOW, lease_until=lease, single_flight=True, max_concurrency=1)
            is None
        )
        got = await store.get_run(made.id)
        assert got is not None
        assert (got.status, got.started_at, got.lease_until) == (RunStatus.RUNNING, NOW, lease)

    async def test_a_run_not_queued_answers_its_status(self, store: Store) -> None:
        claimed = await running(store, run())
        assert claimed.id is not None
        again = await store.claim_run(
            claimed.id, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=None
        )
        assert again == RunStatus.RUNNING  # a duplicate delivery
        assert await store.get_run(claimed.id) == claimed  # lease and start untouched

        done = await store.create_run(run(1, status=RunStatus.SUCCEEDED))
        assert done.id is not None
        assert (
            await store.claim_run(
                done.id, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=None
            )
            == RunStatus.SUCCEEDED
        )

    async def test_claiming_an_unknown_run_raises(self, store: Store) -> None:
        with pytest.raises(LookupError):
            await store.claim_run(
                424242, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=None
            )

    async def test_single_flight_skips_while_a_run_of_the_schedule_runs(self, store: Store) -> None:
        await running(store, run())
        waiting = await store.create_run(run(1))
        assert waiting.id is not None

        blocked = await store.claim_run(
            waiting.id, now=NOW, lease_until=NOW + MIN, single_flight=True, max_concurrency=None
        )
        assert blocked == RunStatus.SKIPPED
        assert await store.get_run(waiting.id) == waiting  # the row is left as it was

        other = await store.create_run(run(2, schedule="other"))  # another schedule, same task
        assert other.id is not None
        assert (
            await store.claim_run(
                other.id, now=NOW, lease_until=NOW + MIN, single_flight=True, max_concurrency=None
            )
            is None
        )
        assert (
            await store.claim_run(
                waiting.id, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=None
            )
            is None
        )

    async def test_single_flight_ignores_an_expired_lease_and_runs_without_schedule(
        self, store: Store
    ) -> None:
        await running(store, run(), lease_until=NOW - timedelta(seconds=1))
        waiting = await store.create_run(run(1))
        assert waiting.id is not None
        assert (
            await store.claim_run(
                waiting.id, now=NOW, lease_until=NOW + MIN, single_flight=True, max_concurrency=None
            )
            is None
        )

        await running(store, run(2, schedule=None))
        adhoc = await store.create_run(run(3, schedule=None))
        assert adhoc.id is not None
        assert (
            await store.claim_run(
                adhoc.id, now=NOW, lease_until=NOW + MIN, single_flight=True, max_concurrency=None
            )
            is None
        )

    async def test_max_concurrency_keeps_a_run_queued_while_the_task_is_busy(self, store: Store) -> None:
        await running(store, run(0, schedule="a"))
        await running(store, run(1, schedule="b"))
        await running(store, run(2, schedule="c", task="other_task"))
        await running(store, run(3, schedule="d"), lease_until=NOW)  # lease ended: not running
        waiting = await store.create_run(run(4, schedule="e"))
        assert waiting.id is not None

        blocked = await store.claim_run(
            waiting.id, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=2
        )
        assert blocked == RunStatus.QUEUED
        assert await store.get_run(waiting.id) == waiting
        assert (
            await store.claim_run(
                waiting.id, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=3
            )
            is None
        )

    async def test_concurrent_single_flight_claims_let_one_through(self, store: Store) -> None:
        runs = [await store.create_run(run(i)) for i in range(5)]
        await warm(store)
        results = await asyncio.gather(
            *(
                store.claim_run(
                    r.id or 0, now=NOW, lease_until=NOW + MIN, single_flight=True, max_concurrency=None
                )
                for r in runs
            )
        )
        assert sorted(results, key=str) == sorted([None] + [RunStatus.SKIPPED] * 4, key=str)
        assert len(await store.job_runs(status=RunStatus.RUNNING)) == 1

    async def test_concurrent_claims_respect_max_concurrency(self, store: Store) -> None:
        runs = [await store.create_run(run(i)) for i in range(5)]
        await warm(store)
        results = await asyncio.gather(
            *(
                store.claim_run(
                    r.id or 0, now=NOW, lease_until=NOW + MIN, single_flight=False, max_concurrency=2
                )
                for r in runs
            )
        )
        assert sorted(results, key=str) == sorted([None] * 2 + [RunStatus.QUEUED] * 3, key=str)
        assert len(await store.job_runs(status=RunStatus.RUNNING)) == 2

    async def test_renew_lease_only_for_a_running_run(self, store: Store) -> None:
        live = await running(store, run())
        queued = await store.create_run(run(1))
        done = await store.create_run(run(2, status=RunStatus.FAILED))
        assert live.id is not None and queued.id is not None and done.id is not None
        later = NOW + 30 * MIN

        assert await store.renew_lease(live.id, later) is True
        got = await store.get_run(live.id)
        assert got is not None and got.lease_until == later
        assert await store.renew_lease(queued.id, later) is False
        assert await store.renew_lease(done.id, later) is False
        assert await store.renew_lease(424242, later) is False
        got = await store.get_run(queued.id)
        assert got is not None and got.lease_until is None


class TestQueries:
    async def test_job_runs_filters_combine_newest_first(self, store: Store) -> None:
        a = await store.create_run(run(0, schedule="s1"))
        b = await store.create_run(run(1, schedule="s2", status=RunStatus.FAILED))
        c = await store.create_run(run(2, schedule="s1", task="other_task"))
        d = await store.create_run(run(2, schedule="s1"))  # same queued time as c, later id
        e = await store.create_run(run(3, schedule=None, status=RunStatus.FAILED))

        def ids(runs: list[JobRun]) -> list[int | None]:
            return [r.id for r in runs]

        assert ids(await store.job_runs()) == ids([e, d, c, b, a])
        assert ids(await store.job_runs(limit=2)) == ids([e, d])
        assert ids(await store.job_runs(task="refresh_eod")) == ids([e, d, b, a])
        assert ids(await store.job_runs(schedule="s1")) == ids([d, c, a])
        assert ids(await store.job_runs(status=RunStatus.FAILED)) == ids([e, b])
        assert ids(await store.job_runs(since=T0 + 2 * MIN)) == ids([e, d, c])  # inclusive
        assert ids(await store.job_runs(schedule="s1", task="refresh_eod", since=T0 + MIN)) == ids([d])
        assert ids(await store.job_runs(schedule="s2", status=RunStatus.QUEUED)) == []

    async def test_latest_runs_for_picks_the_newest_run_of_the_date(self, store: Store) -> None:
        await store.create_run(run(0, schedule="s1"))
        newest = await store.create_run(run(5, schedule="s1", status=RunStatus.SUCCEEDED))
        await store.create_run(run(9, schedule="s1", logical_date=DAY + timedelta(days=1)))
        await store.create_run(run(3, schedule="s2"))
        tie = await store.create_run(run(3, schedule="s2", status=RunStatus.FAILED))  # same time, later id
        await store.create_run(run(1, schedule="s3"))

        latest = await store.latest_runs_for(["s1", "s2", "s4"], DAY)
        assert latest == {"s1": newest, "s2": tie}
        assert await store.latest_runs_for([], DAY) == {}
        assert await store.latest_runs_for(["s1"], DAY - timedelta(days=1)) == {}


class TestExpire:
    async def test_runs_whose_lease_ended_fail(self, store: Store) -> None:
        started = NOW - 90 * timedelta(seconds=1)  # running() claims at NOW; rewritten below
        dead = await running(store, run(0), lease_until=NOW + MIN)
        failed_before = await running(store, run(1, schedule="b"), lease_until=NOW + MIN)
        edge = await running(store, run(2, schedule="c"), lease_until=NOW + MIN)
        live = await running(store, run(3, schedule="d"), lease_until=NOW + MIN)
        queued = await store.create_run(run(4, lease_until=NOW - MIN))
        later = NOW + 10 * MIN
        # Leases as the workers last renewed them; ``edge`` ends exactly at ``later``.
        await store.update_run(dataclasses.replace(dead, started_at=started, lease_until=later - MIN))
        await store.update_run(
            dataclasses.replace(failed_before, started_at=started, lease_until=later - MIN, error="oom")
        )
        await store.update_run(dataclasses.replace(edge, lease_until=later))
        await store.update_run(dataclasses.replace(live, lease_until=later + MIN))

        expired = await store.expire_runs(now=later, note="abandoned")
        assert [r.id for r in expired] == [dead.id, failed_before.id]
        for r in expired:
            assert r.id is not None
            assert r == await store.get_run(r.id)  # returned as stored
            assert (r.status, r.finished_at, r.note) == (RunStatus.FAILED, later, "abandoned")
            assert r.duration_s == (later - started).total_seconds()
        assert [r.error for r in expired] == ["abandoned", "oom"]
        for untouched in (edge, live, queued):
            assert untouched.id is not None
            got = await store.get_run(untouched.id)
            assert got is not None and got.status == untouched.status and got.finished_at is None
        assert await store.expire_runs(now=later, note="again") == []


class TestPurge:
    async def test_runs_that_ended_before_the_cutoff_go_and_unfinished_ones_stay(self, store: Store) -> None:
        cutoff = T0 + 30 * MIN

        async def ended(n: int, status: RunStatus, finished: datetime | None) -> JobRun:
            return await store.create_run(run(n, status=status, finished_at=finished))

        old_ok = await ended(0, RunStatus.SUCCEEDED, T0 + 10 * MIN)
        old_failed = await ended(1, RunStatus.FAILED, T0 + 20 * MIN)
        old_timed_out = await ended(2, RunStatus.TIMED_OUT, cutoff - timedelta(microseconds=1))
        old_skipped = await ended(3, RunStatus.SKIPPED, None)  # never started: its queued time counts
        at_cutoff = await ended(4, RunStatus.SUCCEEDED, cutoff)  # not before it
        recent = await ended(5, RunStatus.FAILED, cutoff + MIN)
        # Queued long before the cutoff but never ended: still owed to a worker.
        queued = await store.create_run(run(6))
        live = await running(store, run(7, schedule="other"))
        last = await ended(8, RunStatus.SUCCEEDED, T0)  # the newest id, and purged

        assert await store.purge_runs(finished_before=cutoff) == 5
        for gone in (old_ok, old_failed, old_timed_out, old_skipped, last):
            assert gone.id is not None and await store.get_run(gone.id) is None
        kept = {r.id for r in await store.job_runs(limit=100)}
        assert kept == {at_cutoff.id, recent.id, queued.id, live.id}
        assert await store.purge_runs(finished_before=cutoff) == 0

        # Ids are never handed out again (the newest was purged), so a stale queue message
        # cannot claim a new run.
        newest = await store.create_run(run(9))
        assert newest.id is not None and last.id is not None and newest.id > last.id
