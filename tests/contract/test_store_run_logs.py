"""A job run's log lines round-trip on every backend: written on create and on update, read
back by every query that returns runs, in order and byte for byte."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mds.domain.schedules import JobRun, RunStatus, Trigger
from mds.storage.base import Store

T0 = datetime(2026, 1, 5, 21, 30, tzinfo=UTC)
DAY = date(2026, 1, 5)
LINES = [
    "2026-01-05T21:30:00.001+00:00 INFO mds.tasks: started",
    'quotes "and" \\backslashes\\, tabs\tand unicode: é ✓ 株',
    "",
    "2026-01-05T21:30:01.500+00:00 ERROR mds.ops.runs: failed: ValueError: boom",
]


def run(**kw: object) -> JobRun:
    fields: dict[str, object] = {
        "task": "refresh_eod",
        "trigger": Trigger.SCHEDULE,
        "logical_date": DAY,
        "queued_at": T0,
        "schedule": "eod-refresh",
    }
    fields.update(kw)
    return JobRun(**fields)  # type: ignore[arg-type]


async def test_a_new_run_has_no_logs(store: Store) -> None:
    made = await store.create_run(run())
    assert made.id is not None
    got = await store.get_run(made.id)
    assert got is not None and got.logs == []


async def test_logs_round_trip_on_create_and_update(store: Store) -> None:
    made = await store.create_run(run(logs=LINES[:1]))
    assert made.id is not None
    got = await store.get_run(made.id)
    assert got is not None and got.logs == LINES[:1]

    made.status, made.logs = RunStatus.SUCCEEDED, LINES
    await store.update_run(made)
    got = await store.get_run(made.id)
    assert got is not None and got.logs == LINES
    [listed] = await store.job_runs(task="refresh_eod")
    assert listed.logs == LINES
    latest = await store.latest_runs_for(["eod-refresh"], DAY)
    assert latest["eod-refresh"].logs == LINES


async def test_an_update_replaces_the_lines_and_other_runs_keep_theirs(store: Store) -> None:
    first = await store.create_run(run(logs=["a", "b"]))
    second = await store.create_run(run(queued_at=T0 + timedelta(minutes=1), logs=["other"]))
    assert first.id is not None and second.id is not None
    first.logs = ["c"]
    await store.update_run(first)
    got_first, got_second = await store.get_run(first.id), await store.get_run(second.id)
    assert got_first is not None and got_first.logs == ["c"]
    assert got_second is not None and got_second.logs == ["other"]


async def test_an_expired_run_keeps_its_lines(store: Store) -> None:
    made = await store.create_run(run(logs=["before the worker died"]))
    assert made.id is not None
    assert (
        await store.claim_run(
            made.id, now=T0, lease_until=T0 + timedelta(minutes=2), single_flight=False, max_concurrency=None
        )
        is None
    )
    [expired] = await store.expire_runs(now=T0 + timedelta(minutes=5), note="abandoned")
    assert expired.status is RunStatus.FAILED
    assert expired.logs == ["before the worker died"]
