"""Access across processes: a revoked key stops in every API process within AUTH_CACHE_SEC,
and `mds serve --demo` makes its admin key once, so the README's /ops examples work."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import MDS, MdsProcess, Proc, clean_env, create_key
from tests.helpers import free_port
from tests.redis_support import key_prefix, redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CACHE_SEC = 2.0


def test_a_revoked_key_stops_in_every_api_process_within_auth_cache_sec(
    tmp_path: Path, database_url: str
) -> None:
    url, prefix = redis_url(), key_prefix()
    env = clean_env(
        {
            "DATABASE_URL": database_url,
            "QUEUE_BACKEND": "redis",
            "RLC_REDIS_URL": url,
            "RATE_LIMIT_STORAGE_URI": url,
            "RLC_REDIS_JOBS_KEY": f"{prefix}jobs",
            **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
            "AUTH_CACHE_SEC": str(CACHE_SEC),
        }
    )
    key = create_key(env, tmp_path, role="ops", name="rotating")
    ports = [free_port(), free_port()]
    procs = [Proc(["api", "--port", str(p)], env, tmp_path / f"api{i}.log") for i, p in enumerate(ports)]
    try:
        apis = [f"http://127.0.0.1:{p}" for p in ports]

        def status(api: str, path: str = "/ops/dlq/stats") -> int:
            return httpx.get(api + path, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code

        deadline = time.monotonic() + 60
        while not all(_answers(a) for a in apis):
            assert time.monotonic() < deadline, [p.log.read_text()[-2000:] for p in procs]
            time.sleep(0.2)
        assert [status(a) for a in apis] == [200, 200]  # each process has checked (and cached) it

        subprocess.run([MDS, "keys", "revoke", "rotating"], cwd=tmp_path, env=env, check=True, timeout=60)
        # Every cache entry was made before the revocation, so none outlives it by more than
        # AUTH_CACHE_SEC: after that, every process asks the store and refuses.
        time.sleep(CACHE_SEC)
        assert [status(a) for a in apis] == [401, 401]
        assert [status(a, "/stats/providers") for a in apis] == [200, 200]  # reads stay open
        listed = subprocess.run(
            [MDS, "keys", "list", "--all"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
        )
        assert "rotating" in listed.stdout and "revoked" in listed.stdout and key not in listed.stdout
    finally:
        for p in procs:
            p.stop()
    for p in procs:
        assert key not in p.log.read_text()  # never logged


def _answers(api: str) -> bool:
    try:
        return httpx.get(api + "/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def test_demo_makes_its_admin_key_once(start_mds, tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///./var/demo.db"}  # make demo's database, under the test's cwd
    first: MdsProcess = start_mds(["serve", "--demo", "--clock", "2025-10-08T14:00:00Z"], env)
    key_file = tmp_path / "var" / "demo-admin.key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.logs().count(key) == 1  # printed once, at start
    headers = {"X-API-Key": key}
    assert httpx.get(first.url + "/ops/dlq/stats", headers=headers, timeout=10).status_code == 200
    assert httpx.get(first.url + "/ops/dlq/stats", timeout=10).status_code == 401
    first.stop()

    again: MdsProcess = start_mds(["serve", "--demo", "--clock", "2025-10-08T14:00:00Z"], env)
    assert key_file.read_text().strip() == key  # kept, not replaced
    assert key not in again.logs() and str(Path("var") / "demo-admin.key") in again.logs()
    assert httpx.get(again.url + "/ops/dlq/stats", headers=headers, timeout=10).status_code == 200
