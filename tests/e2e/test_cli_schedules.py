"""`mds schedules ...` as users run it: seed, list, add, pause/resume, export → import into
another store, and `run --wait` handed over to a running `mds serve`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mds.ops.catalog import CATALOG
from tests.e2e.test_cli import run
from tests.helpers import SIM_ENV

pytestmark = pytest.mark.e2e

AUDIT_UPDATED = ("updated_by", "updated_at")


def _env(tmp_path: Path, db: str = "mds") -> dict[str, str]:
    return {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/{db}.db"}


def _listed(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = run(["schedules", "list", "--json"], env)
    assert r.returncode == 0, r.stderr
    return {row["name"]: row for row in map(json.loads, r.stdout.splitlines())}


def _without_updated(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**e, "metadata": {k: v for k, v in e["metadata"].items() if k not in AUDIT_UPDATED}} for e in entries
    ]


def test_seed_list_add_pause_resume(tmp_path: Path) -> None:
    env = _env(tmp_path)
    r = run(["schedules", "seed"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"seeded {len(CATALOG)} schedules")
    listed = _listed(env)
    assert set(listed) == set(CATALOG)  # every catalog task, under its own name
    paused = {n for n, row in listed.items() if row["state"] == "paused"}
    assert paused == {"ping", "bootstrap_daily_coverage_tracked"}
    assert all(row["next_fire"] for n, row in listed.items() if n not in paused)
    assert listed["update_tracked_symbol_cache"]["timing"] == "XNYS after_close+30m"
    assert listed["monitor_coverage_health"]["queue"] == "market_data"
    again = run(["schedules", "seed"], env)
    assert again.returncode == 0 and again.stdout.strip() == "seeded 0 schedules"  # nothing twice

    bad = run(["schedules", "add", "bad", "--task", "ping", "--cron", "61 * * * *"], env)
    assert bad.returncode != 0 and bad.stderr.startswith("cron:"), bad.stderr
    unknown = run(["schedules", "add", "bad", "--task", "make_coffee", "--cron", "0 * * * *"], env)
    assert unknown.returncode != 0 and unknown.stderr.startswith("task:"), unknown.stderr
    assert "bad" not in _listed(env)
    ok = run(
        ["schedules", "add", "nightly", "--task", "ping", "--calendar", "XNYS", "--when", "before_open-60m"],
        env,
    )
    assert ok.returncode == 0 and "created nightly" in ok.stdout, ok.stderr

    assert run(["schedules", "pause", "monitor_coverage_health"], env).returncode == 0
    row = _listed(env)["monitor_coverage_health"]
    assert row["state"] == "paused" and row["next_fire"] is None
    assert run(["schedules", "resume", "monitor_coverage_health"], env).returncode == 0
    row = _listed(env)["monitor_coverage_health"]
    assert row["state"] == "active" and re.match(r"^\d{4}-\d\d-\d\dT\d\d:05:00-0[45]:00$", row["next_fire"])
    missing = run(["schedules", "pause", "ghost"], env)
    assert missing.returncode != 0 and "ghost" in missing.stderr


def test_export_then_import_into_an_empty_store(tmp_path: Path) -> None:
    env, other = _env(tmp_path, "a"), _env(tmp_path, "b")
    assert run(["schedules", "seed", "--by", "alice"], env).returncode == 0
    metadata = {"priority": 1, "dependencies": ["update_tracked_symbol_cache"], "safety": {"timeout_s": 60}}
    r = run(
        [
            "schedules",
            "add",
            "custom",
            "--task",
            "ping",
            "--cron",
            "*/15 9-16 * * 1-5",
            "--timezone",
            "America/New_York",
            "--kwargs",
            '{"seconds": 3}',
            "--metadata",
            json.dumps(metadata),
            "--by",
            "alice",
        ],
        env,
    )
    assert r.returncode == 0, r.stderr
    assert run(["schedules", "pause", "custom", "--by", "alice"], env).returncode == 0
    file = tmp_path / "schedules.json"
    r = run(["schedules", "export", str(file)], env)
    assert r.returncode == 0 and f"exported {len(CATALOG) + 1} schedules" in r.stdout, r.stderr
    first = json.loads(file.read_text())

    r = run(["schedules", "import", str(file), "--by", "bob"], other)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"imported: {len(CATALOG) + 1} created, 0 updated"
    r = run(["schedules", "export"], other)
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    assert _without_updated(second) == _without_updated(first)
    assert {e["metadata"]["created_by"] for e in second} == {"alice"}  # kept from the file
    assert {e["metadata"]["updated_by"] for e in second} == {"bob"}
    custom = next(e for e in second if e["name"] == "custom")
    assert custom["enabled"] is False and custom["metadata"]["dependencies"] == [
        "update_tracked_symbol_cache"
    ]

    # All or nothing: one bad entry refuses the file, naming it.
    broken = [*first, {**first[0], "name": "broken", "cron": "61 * * * *", "calendar": None, "when": None}]
    file.write_text(json.dumps(broken))
    r = run(["schedules", "import", str(file)], _env(tmp_path, "c"))
    assert r.returncode != 0 and r.stderr.startswith(f"[{len(first)}].cron:"), r.stderr
    assert _listed(_env(tmp_path, "c")) == {}


def test_run_wait_is_taken_by_the_serving_scheduler(tmp_path: Path, start_mds) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    server = start_mds(["serve"], {**SIM_ENV, "SCHEDULER_RELOAD_SEC": "0.5"})
    r = run(
        ["schedules", "run", "--task", "ping", "--kwargs", '{"seconds": 0}', "--wait", "60"], env, timeout=90
    )
    assert r.returncode == 0, (r.stdout, r.stderr, server.logs()[-3000:])
    lines = r.stdout.splitlines()
    queued = re.match(r"^queued run (\d+) of ping$", lines[0])
    assert queued, lines
    done = json.loads(lines[-1])
    assert done["id"] == int(queued.group(1)) and done["status"] == "succeeded"
    assert done["counters"] == {"slept_s": 0.0} and done["error"] is None
    # The server's API shows the same run, taken from the hand-over (no note left).
    jobs = server.get("/api/v1/market-data/admin/jobs", task="ping").json()["jobs"]
    assert [(j["id"], j["status"], j["trigger"], j["note"]) for j in jobs] == [
        (done["id"], "succeeded", "task", None)
    ]
    failed = run(["schedules", "run", "--task", "ping", "--kwargs", '{"fail": true}', "--wait", "60"], env)
    assert failed.returncode == 1 and json.loads(failed.stdout.splitlines()[-1])["status"] == "failed"
