"""The `mds` command as users run it: exit codes, messages, output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from tests.e2e.conftest import MDS

pytestmark = pytest.mark.e2e


def run(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    command: tuple[str, ...] = (MDS,),
):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLICY_", "BREAKER_", "SIM_", "DATABASE_URL"))
    }
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def test_config_validate_ok() -> None:
    r = run(["config", "validate"])
    assert r.returncode == 0 and "config ok" in r.stdout


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BREAKER_DEMOTE_THRESHOLD": "0.9"}, "BREAKER_PROMOTE_THRESHOLD"),
        ({"POLICY_BARS_1M": "yahoo,acme"}, "POLICY_BARS_1M"),
        ({"CADENCE_T0__quotes_l1": "-1"}, "CADENCE_T0__quotes_l1"),
        ({"BACKFILL_BATCH_SIZ": "9"}, "BACKFILL_BATCH_SIZ"),
    ],
)
def test_config_validate_names_the_first_problem_and_exits_2(env: dict[str, str], setting: str) -> None:
    r = run(["config", "validate"], env)
    assert r.returncode == 2
    assert setting in r.stderr


def test_config_validate_reads_an_env_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.env"
    f.write_text("POLICY_EOD=\n")
    r = run(["config", "validate", "--env-file", str(f)])
    assert r.returncode == 2 and "POLICY_EOD" in r.stderr


def test_serve_refuses_an_invalid_config_before_listening(tmp_path: Path) -> None:
    r = run(
        ["serve", "--demo", "--port", "1"], {"BREAKER_PROMOTE_THRESHOLD": "1.2"}, cwd=tmp_path, timeout=30
    )
    assert r.returncode == 2
    assert "BREAKER_PROMOTE_THRESHOLD" in r.stderr
    assert not (tmp_path / "var").exists()  # refused before touching anything


def test_config_show_redacts_keys() -> None:
    r = run(["config", "show"], {"POLYGON_API_KEY": "abc123secret"})
    assert r.returncode == 0
    shown = json.loads(r.stdout)
    assert shown["POLYGON_API_KEY"] == "set" and "abc123secret" not in r.stdout
    assert shown["effective_policies"]["eod"][0] == "fmp"


def test_sim_bars_prints_ground_truth_as_json_lines() -> None:
    r = run(
        [
            "sim",
            "bars",
            "SPY",
            "--interval",
            "5m",
            "--start",
            "2025-10-08T13:30:00Z",
            "--end",
            "2025-10-08T14:00:00Z",
        ]
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    truth = ground_truth(
        "SPY",
        Interval.M5,
        datetime(2025, 10, 8, 13, 30, tzinfo=UTC),
        datetime(2025, 10, 8, 14, 0, tzinfo=UTC),
    )
    assert len(rows) == 6
    assert rows[0]["ts"] == "2025-10-08T13:30:00Z"
    assert [set(r) for r in rows] == [{"ts", "open", "high", "low", "close", "volume"}] * 6
    assert [(r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows] == [
        (t.open, t.high, t.low, t.close, t.volume) for t in truth
    ]


def test_sim_bars_respects_sim_seed() -> None:
    args = [
        "sim",
        "bars",
        "SPY",
        "--interval",
        "1d",
        "--start",
        "2025-10-01T00:00:00Z",
        "--end",
        "2025-10-03T00:00:00Z",
    ]
    a, b = run(args, {"SIM_SEED": "1"}), run(args, {"SIM_SEED": "2"})
    assert a.returncode == b.returncode == 0 and a.stdout != b.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--interval", "3m", "--start", "2025-10-08T13:30:00Z", "--end", "2025-10-08T14:00:00Z"],
            "--interval",
        ),
        (["--start", "2025-10-08T13:30:00", "--end", "2025-10-08T14:00:00Z"], "time zone"),
        (["--start", "2025-10-08T14:00:00Z", "--end", "2025-10-08T13:30:00Z"], "before"),
    ],
)
def test_sim_bars_rejects_bad_arguments(args: list[str], fragment: str) -> None:
    r = run(["sim", "bars", "SPY", *args])
    assert r.returncode == 2 and fragment in r.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}
    first, second = run(["migrate"], env), run(["migrate"], env)
    assert first.returncode == second.returncode == 0, first.stderr
    assert (tmp_path / "m.db").exists()


@pytest.mark.parametrize("command", ["serve", "api", "worker", "scheduler"])
def test_service_commands_share_their_options(command: str) -> None:
    r = run([command, "--help"], {"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    for option in ("--demo", "--clock ", "--speed", "--clock-anchor", "--env-file"):
        assert option in r.stdout, option


def test_service_options_reach_the_service(tmp_path: Path) -> None:
    slow = run(["serve", "--demo", "--speed", "0", "--port", "1"], cwd=tmp_path, timeout=30)
    assert slow.returncode == 2 and "--speed must be positive" in slow.stderr
    bad_clock = run(["serve", "--demo", "--clock", "2025-10-08T14:00:00", "--port", "1"], cwd=tmp_path)
    assert bad_clock.returncode == 2 and "--clock" in bad_clock.stderr and "time zone" in bad_clock.stderr
    alone = run(["worker", "--demo"], {"QUEUE_BACKEND": "memory"}, cwd=tmp_path, timeout=30)
    assert alone.returncode == 2 and "QUEUE_BACKEND" in alone.stderr
    assert not (tmp_path / "var").exists()


def test_bench_json_flag_chooses_json_over_text() -> None:
    text, as_json = run(["bench", "parse"]), run(["bench", "parse", "--json"])
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    assert text.stdout.startswith("parse: bars=98280 ") and "{" not in text.stdout
    figures = json.loads(as_json.stdout)
    assert figures["benchmark"] == "parse" and figures["bars"] == 98280


def test_python_m_mds_cli_runs_the_same_app() -> None:
    r = run(["config", "validate"], command=(sys.executable, "-m", "mds.cli"))
    assert r.returncode == 0 and "config ok" in r.stdout
