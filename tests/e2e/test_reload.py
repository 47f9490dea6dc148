"""Hot reload over HTTP: a bad config is refused by name and the last good one keeps running."""

from __future__ import annotations

from pathlib import Path

import pytest

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
