"""The compose file, Prometheus rules and Grafana dashboard parse, and every metric they
query is one MDS exports (so the seeds' dashboards and alerts cannot drift from the code)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from mds.observability.metrics import Metrics
from tests.conftest import skip_or_fail

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(
    r"\b(provider_\w+|circuit_state|jobs_\w+|gaps_found_total|backfill_\w+|write_batch_ms\w*|"
    r"ingestion_lag_seconds|slo_gap_violation_rate|ws_\w+|live_lag_seconds|event_loop_lag_seconds\w*|"
    r"tier_cadence_seconds|circuit_opened_total|coverage_\w+|index_\w+|retention_\w+)\b"
)


def exported() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        if family.type == "counter":  # prometheus_client names the family without _total
            names.add(f"{family.name}_total")
        names.update(s.name for s in family.samples)
    return names


def referenced(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in METRIC.findall(expr)}


def test_compose_runs_every_process_kind() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    commands = {tuple(s.get("command", [])[:1]) for s in compose["services"].values()}
    for kind in ("api", "worker", "scheduler", "migrate"):
        assert (kind,) in commands
    assert {"timescaledb", "redis", "prometheus", "grafana"} <= set(compose["services"])


def test_alert_and_dashboard_metrics_exist() -> None:
    have = exported()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts-slo.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "mds.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]  # rows have none
    used = set().union(*(referenced(e) for e in exprs))
    assert "slo_gap_violation_rate" in used and "backfill_oldest_age_seconds" in used
    assert {"ws_clients_gauge", "ws_publish_latency_ms", "ws_dropped_messages_total"} <= used
    missing = {m for m in used if m not in have and f"{m}_total" not in have}
    assert not missing, f"metrics referenced but not exported: {sorted(missing)}"


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    """deploy/prometheus/alerts-slo.test.yml: LiveLagT0High fires after 5 minutes above two
    cadences and not on a 3-minute spike (promtool is Debian's ``prometheus`` package)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool is not installed (apt-get install prometheus)")
    rules = DEPLOY / "prometheus"
    for args in (["check", "rules", "alerts-slo.yml"], ["test", "rules", "alerts-slo.test.yml"]):
        done = subprocess.run([promtool, *args], cwd=rules, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_the_lag_alert_reads_the_configured_cadence() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts-slo.yml").read_text())
    alert = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "LiveLagT0High")
    assert {"live_lag_seconds", "tier_cadence_seconds"} <= referenced(alert["expr"])
    assert alert["for"] == "5m"
