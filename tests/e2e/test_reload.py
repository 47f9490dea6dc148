"""Hot reload over HTTP: a bad config is refused by name and the last good one keeps running;
scaled out, a reload sent to one process reaches the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Proc, clean_env, create_key, wait_for
from tests.helpers import free_port
from tests.redis_support import key_prefix, redis_url

pytestmark = pytest.mark.e2e


def test_reload_refuses_bad_config_and_applies_good(start_mds, tmp_path: Path) -> None:
    env_file = tmp_path / "mds.env"
    env_file.write_text("CADENCE_T1__bars_1m=300\n")
    mds = start_mds(["serve", "--demo", "--clock", "2025-10-08T14:00:00Z", "--env-file", str(env_file)])

    env_file.write_text("CADENCE_T1__bars_1m=-5\n")
    r = mds.post("/ops/validate")
    assert r.status_code == 422 and r.json()["field"] == "CADENCE_T1__bars_1m"
    r = mds.post("/ops/reload")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "CADENCE_T1__bars_1m" and "unchanged" in r.json()["detail"]
    assert mds.get("/stats/cadence").json()["tiers"]["T1"]["cadence"]["bars_1m"] == 300
    assert mds.get("/health").json()["status"] == "ok"

    env_file.write_text("CADENCE_T1__bars_1m=120\nPOLICY_BARS_1M=sim_backup,sim\nMDS_PORT=9999\n")
    r = mds.post("/ops/reload")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and "CADENCE_T1" in body["changed"] and "POLICY_BARS_1M" in body["changed"]
    assert body["restart_required"] == ["MDS_PORT"]
    assert mds.get("/stats/cadence").json()["tiers"]["T1"]["cadence"]["bars_1m"] == 120
    assert mds.get("/stats/providers").json()["policies"]["bars_1m"] == ["sim_backup", "sim"]


def test_reload_on_the_api_reaches_the_worker_and_scheduler_through_redis(
    tmp_path: Path, pg_url: str
) -> None:
    """Three processes on one Redis and one PostgreSQL: a reload sent to the API is applied
    by the worker and the scheduler too, and every /health document lists each role's version."""
    prefix = key_prefix()
    url = redis_url()
    env = clean_env(
        {
            "QUEUE_BACKEND": "redis",
            "RLC_REDIS_URL": url,
            "RATE_LIMIT_STORAGE_URI": url,
            "RLC_REDIS_JOBS_KEY": f"{prefix}jobs",
            **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
            "DATABASE_URL": pg_url,
        }
    )
    env_file = tmp_path / "mds.env"
    env_file.write_text("CADENCE_T1__bars_1m=300\n")
    common = ["--demo", "--clock", "2025-10-08T14:00:00Z", "--env-file", str(env_file)]
    api_port, worker_port, scheduler_port = free_port(), free_port(), free_port()
    headers = {"X-API-Key": create_key(env, tmp_path, role="ops")}
    procs = [
        Proc(["api", *common, "--port", str(api_port)], env, tmp_path / "api.log"),
        Proc(
            ["worker", *common, "--metrics-port", str(worker_port), "--name", "w1"], env, tmp_path / "w1.log"
        ),
        Proc(["scheduler", *common, "--metrics-port", str(scheduler_port)], env, tmp_path / "s1.log"),
    ]
    api, worker, scheduler = (f"http://127.0.0.1:{port}" for port in (api_port, worker_port, scheduler_port))
    roles = {"api", "worker", "scheduler"}

    def health(base: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{base}/health", timeout=5).json()
        return body

    def all_listed() -> bool:
        return set(health(api)["policy_versions"]) == roles

    try:
        wait_for(all_listed, 60, "every process on /health", procs)
        assert health(worker)["policy_version"] == health(scheduler)["policy_version"] == "initial"

        env_file.write_text("CADENCE_T1__bars_1m=120\nTASK_WORKERS=3\n")
        r = httpx.post(f"{api}/ops/reload", headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        version = body["policy_version"]
        assert body["announced"] and body["restart_required"] == ["TASK_WORKERS"]
        assert httpx.get(f"{api}/stats/cadence", timeout=5).json()["tiers"]["T1"]["cadence"]["bars_1m"] == 120

        for base in (worker, scheduler):
            wait_for(lambda b=base: health(b)["policy_version"] == version, 30, f"{base} to apply it", procs)
        for base in (api, worker, scheduler):
            wait_for(
                lambda b=base: health(b)["policy_versions"] == {role: [version] for role in roles},
                30,
                f"{base} to list every role at {version}",
                procs,
            )
        scheduled = [p for p in health(api)["processes"] if p["roles"] == ["scheduler"]]
        assert [p["policy_version"] for p in scheduled] == [version]
        for log in ("w1.log", "s1.log"):
            assert f"configuration {version} applied" in (tmp_path / log).read_text()
    finally:
        for pr in procs:
            pr.stop()
