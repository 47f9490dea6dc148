"""Schedules, job runs and the task catalog over the HTTP API (seed 004's paths), in-process
on a SQLite runtime and a ManualClock: the audit fields come from the API key's name, every
refusal names its field, preview is croniter's answer, pause/resume and export/import keep
the metadata, and runs queued by the API are taken by the runtime's own consumers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from croniter import croniter  # type: ignore[import-untyped]

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.ops.scheduler import Scheduler
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import problem

#: Wednesday before Thanksgiving 2026, 12:00 in New York: the Friday after closes at 13:00.
NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
SCHEDULES = "/api/v1/admin/schedules"
JOBS = "/api/v1/market-data/admin/jobs"
TASKS = "/api/v1/market-data/admin/tasks"
#: Every task of seed 004, under its names, and the catalog's own check task.
SEED_TASKS = {
    "refresh_index_constituents",
    "update_tracked_symbol_cache",
    "backfill_new_tracked",
    "backfill_last_200_bars",
    "recompute_indicators_universe",
    "record_daily_history",
    "backfill_5m_last_n_days",
    "enforce_price_data_retention",
    "monitor_coverage_health",
    "bootstrap_daily_coverage_tracked",
}
#: Issue 16's: macro factors after the evening releases, option metrics through the session.
MACRO_OPTIONS_TASKS = {"refresh_macro_factors", "refresh_options_metrics"}
#: Issue 17's: corporate actions before the open, cross-vendor reconciliation.
ISSUE17_TASKS = {"refresh_corporate_actions", "reconcile_providers"}
#: Issue 18's: company profiles (the Tracked page's market cap), weekly, and the nightly
#: purge of old job runs (RETENTION_DAYS_JOB_RUNS).
ISSUE18_TASKS = {"refresh_company_profiles", "purge_job_runs"}
AUDIT = ("created_by", "created_at", "updated_by", "updated_at")
RICH_METADATA: dict[str, Any] = {
    "queue": "market_data",
    "priority": 2,
    "dependencies": ["base"],
    "dependency_wait_s": 600.0,
    "maintenance_windows": [
        {"start": "22:00", "end": "02:00", "timezone": "America/New_York", "days": ["sat", "sun"]}
    ],
    "preflight_checks": ["store", "provider:eod"],
    "safety": {
        "single_flight": True,
        "max_concurrency": 2,
        "timeout_s": 120.0,
        "retry": {"attempts": 2, "backoff_s": 5.0, "backoff_factor": 3.0},
    },
    "hooks": {
        "discord_webhook": "system_status,https://discord.example/api/webhooks/1/abc",
        "prometheus_endpoint": "http://127.0.0.1:9091",
        "alert_on": ["failure", "slow"],
    },
}


@asynccontextmanager
async def opened(tmp_path: Path, name: str = "s") -> AsyncIterator[Runtime]:
    """An API-only runtime (no collector, no scheduler, no consumers) on its own SQLite file."""
    env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/{name}.db"}
    async with open_runtime(load_settings(env), clock=ManualClock(NOW), collect=False, environ=env) as rt:
        yield rt


@asynccontextmanager
async def client_as(rt: Runtime, name: str, role: Role = Role.ADMIN) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client sending a fresh key called ``name`` (the audit fields' name)."""
    key, _ = await issue_key(rt.store, name, role, now=rt.clock.now())
    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]  # rt is set directly
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mds", headers={"X-API-Key": key}) as c:
        yield c


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with opened(tmp_path) as runtime:
        yield runtime


@pytest.fixture
async def alice(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_as(rt, "alice") as c:
        yield c


def clock(rt: Runtime) -> ManualClock:
    assert isinstance(rt.clock, ManualClock)
    return rt.clock


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def without_audit(entry: dict[str, Any], *keep: str) -> dict[str, Any]:
    out = copy.deepcopy(entry)
    for k in AUDIT:
        if k not in keep:
            out["metadata"].pop(k)
    return out


async def create(c: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await c.post(SCHEDULES, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def until(c: httpx.AsyncClient, run_id: int, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll a job run until ``done`` (bounded: the consumers take it within wall seconds)."""
    body: dict[str, Any] = {}
    for _ in range(400):
        r = await c.get(f"{JOBS}/{run_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if done(body):
            return body
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} did not get there: {body}")


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed", "timed_out", "skipped")


# -- create, list, audit -----------------------------------------------------------------


async def test_create_cron_and_market_schedules_list_next_fire_and_stamp_the_key_name(
    rt: Runtime, alice: httpx.AsyncClient
) -> None:
    cron = await create(
        alice,
        name="nightly-ping",
        task="ping",
        cron="30 2 * * *",
        timezone="America/New_York",
        kwargs={"seconds": 1},
    )
    assert (
        cron["enabled"] is True
        and cron["paused"] is False
        and cron["kwargs"]
        == {
            "seconds": 1.0,
            "fail": False,  # normalised by the task's parameter model
        }
    )
    assert cron["metadata"]["created_by"] == cron["metadata"]["updated_by"] == "alice"
    assert at(cron["metadata"]["created_at"]) == at(cron["metadata"]["updated_at"]) == NOW
    market = await create(alice, name="after-close", task="ping", calendar="XNYS", when="after_close+30m")
    assert market["cron"] is None and market["calendar"] == "XNYS" and market["when"] == "after_close+30m"

    listed = (await alice.get(SCHEDULES)).json()["schedules"]
    assert {s["name"]: s["next_fire"] for s in listed} == {
        "after-close": "2026-11-25T16:30:00-05:00",  # today's close + 30 min, with New York's offset
        "nightly-ping": "2026-11-26T02:30:00-05:00",
    }

    clock(rt).advance(90)
    async with client_as(rt, "bob") as bob:
        r = await bob.put(
            f"{SCHEDULES}/nightly-ping",
            json={
                "name": "nightly-ping",
                "task": "ping",
                "cron": "45 3 * * *",
                "timezone": "America/New_York",
            },
        )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["cron"] == "45 3 * * *" and changed["next_fire"] == "2026-11-26T03:45:00-05:00"
    meta = changed["metadata"]
    assert meta["created_by"] == "alice" and at(meta["created_at"]) == NOW  # kept
    assert meta["updated_by"] == "bob" and at(meta["updated_at"]) == NOW + timedelta(seconds=90)
    assert (await alice.get(f"{SCHEDULES}/nightly-ping")).json() == changed  # what GET reads back


# -- refusals ----------------------------------------------------------------------------

BASE = {"name": "bad", "task": "ping", "cron": "0 * * * *"}
MARKET = {"cron": None, "calendar": "XNYS"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),  # valid fields, no such date
        ({"task": "make_coffee"}, "task"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({**MARKET, "calendar": "XXXX", "when": "after_close+30m"}, "calendar"),
        ({**MARKET, "when": "at_noon"}, "when"),
        ({**MARKET, "when": "after_close-30m"}, "when"),  # contradicts itself
        ({"metadata": {"priority": 12}}, "metadata.priority"),
        ({"metadata": {"queue": "nowhere"}}, "metadata.queue"),
        ({"metadata": {"dependencies": ["ghost"]}}, "metadata.dependencies"),
        ({"metadata": {"preflight_checks": ["coffee"]}}, "metadata.preflight_checks"),
        ({"metadata": {"preflight_checks": ["provider:teleport"]}}, "metadata.preflight_checks"),
        ({"metadata": {"safety": {"timeout_s": 0}}}, "metadata.safety.timeout_s"),
        ({"metadata": {"hooks": {"discord_webhook": "nobody"}}}, "metadata.hooks.discord_webhook"),
        ({"kwargs": {"seconds": -1}}, "kwargs.seconds"),
        ({"kwargs": {"colour": "red"}}, "kwargs.colour"),
        ({"args": [1]}, "args"),
    ],
)
async def test_an_invalid_schedule_is_a_422_naming_its_field_and_writes_nothing(
    alice: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    r = await alice.post(SCHEDULES, json={**BASE, **change})
    body = problem(r, 422)
    assert body["field"] == field, body
    assert (await alice.get(SCHEDULES)).json()["schedules"] == []


async def test_put_name_conflict_and_unknown_names(alice: httpx.AsyncClient) -> None:
    await create(alice, **{**BASE, "name": "hourly"})
    assert problem(await alice.post(SCHEDULES, json={**BASE, "name": "hourly", "cron": "5 * * * *"}), 409)
    assert (await alice.get(f"{SCHEDULES}/hourly")).json()["cron"] == "0 * * * *"  # untouched

    r = await alice.put(f"{SCHEDULES}/hourly", json={**BASE, "name": "other"})
    assert problem(r, 422)["field"] == "name"
    r = await alice.put(f"{SCHEDULES}/hourly", json={**BASE, "name": "hourly", "cron": "61 * * * *"})
    assert problem(r, 422)["field"] == "cron"

    ghost = f"{SCHEDULES}/ghost"
    for method, url, body in [
        ("GET", ghost, None),
        ("PUT", ghost, {**BASE, "name": "ghost"}),
        ("DELETE", ghost, None),
        ("POST", f"{ghost}/pause", None),
        ("POST", f"{ghost}/resume", None),
        ("POST", f"{ghost}/run-now", None),
    ]:
        r = await alice.request(method, url, json=body)
        assert problem(r, 404)["key"] == "ghost", (method, url)
    assert [s["name"] for s in (await alice.get(SCHEDULES)).json()["schedules"]] == ["hourly"]

    gone = await alice.delete(f"{SCHEDULES}/hourly")
    assert (gone.status_code, gone.json()) == (200, {"deleted": "hourly"})
    assert (await alice.get(SCHEDULES)).json()["schedules"] == []
    assert problem(await alice.delete(f"{SCHEDULES}/hourly"), 404)


# -- preview -----------------------------------------------------------------------------


async def test_preview_is_croniters_answer_across_spring_forward(alice: httpx.AsyncClient) -> None:
    start = datetime(2026, 3, 6, tzinfo=UTC)
    r = await alice.post(
        f"{SCHEDULES}/preview",
        json={
            "cron": "30 2 * * *",
            "timezone": "America/New_York",
            "start": "2026-03-06T00:00:00Z",
            "count": 4,
        },
    )
    assert r.status_code == 200, r.text
    got = r.json()["next"]
    it = croniter("30 2 * * *", start.astimezone(NEW_YORK))
    expected = [it.get_next(datetime) for _ in range(4)]
    # Compared as instants (two aware datetimes of one zone compare by wall time) and as text.
    assert [at(t).astimezone(UTC) for t in got] == [e.astimezone(UTC) for e in expected]
    assert got == [e.astimezone(NEW_YORK).isoformat() for e in expected]
    # 2026-03-08 has no 02:30 in New York: it fires once that day, at 03:00 EDT.
    assert got == [
        "2026-03-06T02:30:00-05:00",
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


async def test_market_preview_follows_the_early_close(alice: httpx.AsyncClient) -> None:
    r = await alice.post(
        f"{SCHEDULES}/preview",
        json={"calendar": "XNYS", "when": "after_close+30m", "start": "2026-11-25T17:00:00Z", "count": 3},
    )
    assert r.status_code == 200, r.text
    # Thanksgiving has no session; the Friday after closes at 13:00.
    assert r.json()["next"] == [
        "2026-11-25T16:30:00-05:00",
        "2026-11-27T13:30:00-05:00",
        "2026-11-30T16:30:00-05:00",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 * * * *", "timezone": "Nowhere/Land"}, "timezone"),
        ({"calendar": "XXXX", "when": "after_close"}, "calendar"),
        ({"calendar": "XNYS"}, "cron"),  # no timing at all
        ({"cron": "0 * * * *", "start": "2026-03-06T00:00:00"}, "start"),  # no offset
        ({"cron": "0 * * * *", "count": 0}, "count"),
    ],
)
async def test_preview_refusals_name_the_field(
    alice: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert problem(await alice.post(f"{SCHEDULES}/preview", json=body), 422)["field"] == field


# -- pause / resume ----------------------------------------------------------------------


async def test_pause_keeps_and_resume_restores_args_kwargs_and_metadata(
    rt: Runtime, alice: httpx.AsyncClient
) -> None:
    await create(alice, name="base", task="ping", cron="0 * * * *")
    original = await create(
        alice,
        name="rich",
        task="ping",
        cron="30 2 * * *",
        timezone="America/New_York",
        kwargs={"seconds": 5},
        metadata=RICH_METADATA,
    )
    assert without_audit(original)["metadata"] == RICH_METADATA

    clock(rt).advance(60)
    r = await alice.post(f"{SCHEDULES}/rich/pause")
    assert r.status_code == 200, r.text
    paused = r.json()
    assert paused["enabled"] is False and paused["paused"] is True and paused["next_fire"] is None
    assert (await alice.get(f"{SCHEDULES}/rich")).json() == paused

    # A scheduler leading now never fires it, even long past its due time.
    scheduler = Scheduler(store=rt.store, runner=rt.runs, clock=rt.clock)
    await scheduler.reload_if_changed()
    clock(rt).set(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))  # 03:00 New York, past 02:30
    assert [e.schedule.name for e in scheduler.due(rt.clock.now())] == ["base"]

    r = await alice.post(f"{SCHEDULES}/rich/resume")
    assert r.status_code == 200, r.text
    resumed = r.json()
    assert resumed["enabled"] is True and resumed["paused"] is False
    assert resumed["kwargs"] == original["kwargs"] and resumed["args"] == original["args"]
    assert without_audit(resumed, "created_by", "created_at") == without_audit(
        {**original, "enabled": True, "paused": False, "next_fire": resumed["next_fire"]},
        "created_by",
        "created_at",
    )
    assert resumed["next_fire"] == "2026-11-27T02:30:00-05:00"  # from now on: no catch-up

    # And it fires again, with the restored metadata on its run.
    await scheduler.reload_if_changed()
    clock(rt).set(datetime(2026, 11, 27, 7, 31, tzinfo=UTC))
    due = {e.schedule.name: e for e in scheduler.due(rt.clock.now())}
    assert "rich" in due
    run = await scheduler.fire(due["rich"], rt.clock.now())
    assert run is not None and run.schedule == "rich" and run.kwargs == {"seconds": 5.0, "fail": False}
    assert {k: v for k, v in run.metadata.items() if k not in AUDIT} == RICH_METADATA
    assert run.queue == "market_data" and run.priority == 2

    # Resuming with a new cron changes the timing (read in the schedule's zone): Mondays only.
    assert (await alice.post(f"{SCHEDULES}/rich/pause")).json()["paused"] is True
    r = await alice.post(f"{SCHEDULES}/rich/resume", json={"cron": "15 4 * * 1"})
    assert r.status_code == 200, r.text
    assert r.json()["cron"] == "15 4 * * 1" and r.json()["next_fire"] == "2026-11-30T04:15:00-05:00"
    assert without_audit(r.json())["metadata"] == RICH_METADATA
    assert (await alice.post(f"{SCHEDULES}/rich/pause")).status_code == 200
    assert (
        problem(await alice.post(f"{SCHEDULES}/rich/resume", json={"cron": "99 * * * *"}), 422)["field"]
        == "cron"
    )
    assert (await alice.get(f"{SCHEDULES}/rich")).json()["paused"] is True  # a refused resume keeps it paused


async def test_a_paused_schedule_written_anew_resumes_with_what_was_written(alice: httpx.AsyncClient) -> None:
    await create(alice, name="held", task="ping", cron="0 * * * *", kwargs={"seconds": 1})
    assert (await alice.post(f"{SCHEDULES}/held/pause")).status_code == 200
    r = await alice.put(
        f"{SCHEDULES}/held",
        json={
            "name": "held",
            "task": "ping",
            "cron": "0 * * * *",
            "kwargs": {"seconds": 9},
            "metadata": {"priority": 1},
        },
    )
    assert r.status_code == 200 and r.json()["paused"] is True  # a PUT does not resume it
    resumed = (await alice.post(f"{SCHEDULES}/held/resume")).json()
    assert resumed["kwargs"]["seconds"] == 9.0 and resumed["metadata"]["priority"] == 1

    # An import over a paused schedule, with enabled: true, resumes it with the file's entry.
    assert (await alice.post(f"{SCHEDULES}/held/pause")).status_code == 200
    entry = {"name": "held", "task": "ping", "cron": "0 2 * * *", "kwargs": {"seconds": 7}, "enabled": True}
    r = await alice.post(f"{SCHEDULES}/import", json=[{**entry, "metadata": {"priority": 3}}])
    assert r.status_code == 200 and r.json() == {"created": [], "updated": ["held"]}
    held = (await alice.get(f"{SCHEDULES}/held")).json()
    assert held["paused"] is False and held["cron"] == "0 2 * * *"
    assert held["kwargs"]["seconds"] == 7.0 and held["metadata"]["priority"] == 3


# -- export / import ---------------------------------------------------------------------


async def test_export_then_import_into_an_empty_store_reproduces_the_schedules(
    tmp_path: Path, rt: Runtime, alice: httpx.AsyncClient
) -> None:
    await create(alice, name="base", task="monitor_coverage_health", cron="5 * * * *", timezone="UTC")
    await create(
        alice,
        name="dependent",
        task="ping",
        calendar="XNYS",
        when="after_close+45m",
        kwargs={"seconds": 2},
        metadata=RICH_METADATA,
    )
    await create(
        alice,
        name="quiet",
        task="enforce_price_data_retention",
        cron="30 3 * * *",
        kwargs={"max_days_5m": 30},
    )
    assert (await alice.post(f"{SCHEDULES}/quiet/pause")).status_code == 200
    first = (await alice.get(f"{SCHEDULES}/export")).json()
    assert [e["name"] for e in first] == ["base", "dependent", "quiet"]
    assert [e["enabled"] for e in first] == [True, True, False]
    assert without_audit(first[1])["metadata"] == RICH_METADATA

    async with opened(tmp_path, "fresh") as other, client_as(other, "carol") as carol:
        clock(other).advance(3600)
        assert (await carol.get(SCHEDULES)).json()["schedules"] == []
        r = await carol.post(f"{SCHEDULES}/import", json=first)
        assert r.status_code == 200, r.text
        assert sorted(r.json()["created"]) == ["base", "dependent", "quiet"] and r.json()["updated"] == []
        again = (await carol.get(f"{SCHEDULES}/export")).json()
        listed = {s["name"]: s for s in (await carol.get(SCHEDULES)).json()["schedules"]}

    keep = ("created_by", "created_at")
    assert [without_audit(e, *keep) for e in again] == [without_audit(e, *keep) for e in first]
    for e in again:  # created_* from the file, updated_* by the importer
        assert e["metadata"]["created_by"] == "alice" and at(e["metadata"]["created_at"]) == NOW
        assert e["metadata"]["updated_by"] == "carol"
        assert at(e["metadata"]["updated_at"]) == NOW + timedelta(seconds=3600)
    assert listed["quiet"]["paused"] is True and listed["quiet"]["next_fire"] is None
    assert listed["dependent"]["metadata"]["dependencies"] == ["base"]


@pytest.mark.parametrize(
    ("i", "bad", "field"),
    [
        (1, {"cron": "61 * * * *"}, "[1].cron"),
        (2, {"metadata": {"priority": 12}}, "[2].metadata.priority"),
        (2, {"metadata": {"dependencies": ["ghost"]}}, "[2].metadata.dependencies"),
        (0, {"task": "make_coffee"}, "[0].task"),
        (1, {"kwargs": {"seconds": -1}}, "[1].kwargs.seconds"),
        (2, {"enabled": "maybe"}, "[2].enabled"),
    ],
)
async def test_import_is_all_or_nothing(
    alice: httpx.AsyncClient, i: int, bad: dict[str, Any], field: str
) -> None:
    entries: list[dict[str, Any]] = [
        {"name": "one", "task": "ping", "cron": "0 * * * *"},
        {"name": "two", "task": "ping", "cron": "0 1 * * *", "metadata": {"dependencies": ["one"]}},
        {"name": "three", "task": "ping", "calendar": "XNYS", "when": "before_open-60m"},
    ]
    entries[i] = {**entries[i], **bad}
    assert problem(await alice.post(f"{SCHEDULES}/import", json=entries), 422)["field"] == field
    assert (await alice.get(SCHEDULES)).json()["schedules"] == []  # not the good ones either


# -- runs --------------------------------------------------------------------------------


async def test_run_now_and_task_runs_are_taken_by_the_consumers_and_listed(
    rt: Runtime, alice: httpx.AsyncClient
) -> None:
    rt.runs.start(1)  # the consumers a `worker` process starts
    await create(alice, name="pinger", task="ping", cron="0 * * * *", kwargs={"seconds": 0})
    r = await alice.post(f"{SCHEDULES}/pinger/run-now")
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["status"] == "queued" and queued["trigger"] == "run_now" and queued["schedule"] == "pinger"
    assert queued["created_by"] == "alice" and queued["params"] == {
        "args": [],
        "kwargs": {"seconds": 0.0, "fail": False},
    }
    ok = await until(alice, queued["id"], finished)
    assert ok["status"] == "succeeded" and ok["error"] is None, ok
    assert ok["counters"] == {"slept_s": 0.0} and ok["duration_s"] is not None and ok["started_at"]

    clock(rt).advance(600)
    since = rt.clock.now()
    r = await alice.post(f"{TASKS}/run", json={"task": "ping", "kwargs": {"fail": True}})
    assert r.status_code == 202, r.text
    task_run = r.json()
    assert task_run["trigger"] == "task" and task_run["schedule"] is None
    bad = await until(alice, task_run["id"], finished)
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: ping asked to fail", bad

    async def listed(**query: Any) -> list[int]:
        r = await alice.get(JOBS, params=query)
        assert r.status_code == 200, r.text
        return [j["id"] for j in r.json()["jobs"]]

    assert await listed(task="ping") == [bad["id"], ok["id"]]  # newest first
    assert await listed(task="ping", status="failed") == [bad["id"]]
    assert await listed(status="succeeded") == [ok["id"]]
    assert await listed(since=since.isoformat()) == [bad["id"]]
    assert await listed(task="ping", limit=1) == [bad["id"]]
    assert await listed(task="monitor_coverage_health") == []
    assert await listed(schedule="pinger") == [ok["id"]]
    assert problem(await alice.get(JOBS, params={"since": "2026-11-25T17:00:00"}), 422)["field"] == "since"
    assert problem(await alice.get(JOBS, params={"status": "exploded"}), 422)["field"] == "status"
    # An id past what a row can have is invalid, not a store overflow (a 500 before).
    assert problem(await alice.get(f"{JOBS}/{2**63}"), 422)["field"] == "run_id"
    assert problem(await alice.get(f"{JOBS}/{2**63 - 1}"), 404)
    assert problem(await alice.get(f"{JOBS}/999999"), 404)

    drill = (await alice.get(f"{JOBS}/{bad['id']}")).json()
    assert drill == bad and drill["params"] == {"args": [], "kwargs": {"seconds": 0.0, "fail": True}}
    assert drill["metadata"]["queue"] == drill["queue"] == "default"

    r = await alice.post(f"{TASKS}/run", json={"task": "make_coffee"})
    assert problem(r, 422)["field"] == "task"
    r = await alice.post(f"{TASKS}/run", json={"task": "ping", "kwargs": {"seconds": -1}})
    assert problem(r, 422)["field"] == "kwargs.seconds"
    assert await listed() == [bad["id"], ok["id"]]  # refused runs are not recorded


async def test_task_catalog_lists_every_seed_task_with_params_and_safe_defaults(
    alice: httpx.AsyncClient,
) -> None:
    r = await alice.get(TASKS)
    assert r.status_code == 200, r.text
    tasks = {t["name"]: t for t in r.json()["tasks"]}
    assert set(tasks) == SEED_TASKS | MACRO_OPTIONS_TASKS | ISSUE17_TASKS | ISSUE18_TASKS | {"ping"}
    ping = tasks["ping"]
    assert set(ping["params"]["properties"]) == {"seconds", "fail"}
    assert ping["params"]["properties"]["seconds"]["minimum"] == 0
    assert ping["default_schedule"]["cron"] == "0 * * * *" and ping["seeded_paused"] is True
    for name in (
        SEED_TASKS | MACRO_OPTIONS_TASKS | ISSUE17_TASKS | ISSUE18_TASKS
    ):  # market-data tasks: single-flight and a timeout
        default = tasks[name]["default_schedule"]
        assert default["task"] == name and tasks[name]["description"], name
        assert default["metadata"]["safety"]["single_flight"] is True, name
        assert default["metadata"]["safety"]["timeout_s"] > 0, name
        assert (default["cron"] is None) != (default["when"] is None), name
    assert tasks["monitor_coverage_health"]["default_schedule"]["cron"] == "5 * * * *"  # hourly
    assert tasks["update_tracked_symbol_cache"]["default_schedule"]["calendar"] == "XNYS"  # nightly
    assert tasks["bootstrap_daily_coverage_tracked"]["seeded_paused"] is True


async def test_an_admin_post_records_a_job_run(alice: httpx.AsyncClient) -> None:
    r = await alice.post("/api/v1/market-data/admin/coverage/refresh")
    assert r.status_code == 200, r.text
    runs = (await alice.get(JOBS, params={"task": "monitor_coverage_health"})).json()["jobs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["trigger"] == "api" and run["status"] == "succeeded" and run["created_by"] == "alice"
    assert run["counters"]["status"] == r.json()["status"]
    assert run["started_at"] and run["finished_at"] and run["duration_s"] is not None


async def test_a_task_run_now_does_not_wait_for_the_nightly_chain(alice: httpx.AsyncClient) -> None:
    r = await alice.post("/api/v1/market-data/admin/tasks/run", json={"task": "backfill_last_200_bars"})
    assert r.status_code == 202, r.text
    task_run = r.json()
    assert task_run["metadata"]["dependencies"] == []  # the catalog's schedule has one
    assert task_run["metadata"]["safety"]["single_flight"] is True  # the other guards stay
    listed = (await alice.get("/api/v1/market-data/admin/tasks")).json()["tasks"]
    default = next(t for t in listed if t["name"] == "backfill_last_200_bars")["default_schedule"]
    assert default["metadata"]["dependencies"] == ["update_tracked_symbol_cache"]


@pytest.mark.parametrize("role", [Role.READ, Role.OPS])
async def test_lower_roles_are_refused(rt: Runtime, role: Role) -> None:
    async with client_as(rt, f"low-{role.value}", role) as low:
        assert problem(await low.get(SCHEDULES), 403)
        assert problem(await low.get(JOBS), 403)
        assert problem(await low.post(f"{SCHEDULES}/preview", json={"cron": "0 * * * *"}), 403)
