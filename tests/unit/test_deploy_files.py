"""The compose file, Prometheus rules and Grafana dashboard parse, and every metric they
query is one MDS exports (so the seeds' dashboards and alerts cannot drift from the code)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import typer
import yaml

from mds.observability.metrics import Metrics
from tests.conftest import skip_or_fail

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RUNBOOKS = DEPLOY.parent / "docs" / "runbooks"
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
    exprs = [r["expr"] for r in alert_rules()]
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "mds.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]  # rows have none
    used = set().union(*(referenced(e) for e in exprs))
    assert "slo_gap_violation_rate" in used and "backfill_oldest_age_seconds" in used
    assert {"ws_clients_gauge", "ws_publish_latency_ms", "ws_dropped_messages_total"} <= used
    missing = {m for m in used if m not in have and f"{m}_total" not in have}
    assert not missing, f"metrics referenced but not exported: {sorted(missing)}"


def rule_files() -> list[Path]:
    return sorted(
        p for p in (DEPLOY / "prometheus").glob("*.yml") if yaml.safe_load(p.read_text()).get("groups")
    )


def alert_rules() -> list[dict[str, Any]]:
    return [
        r
        for f in rule_files()
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    ]


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    """``promtool check rules`` on every rule file and ``promtool test rules`` on every
    deploy/prometheus/*.test.yml (promtool is Debian's ``prometheus`` package; .ci/run
    installs it, and under MDS_REQUIRE_SERVICES=1 its absence fails)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool is not installed (apt-get install prometheus)")
    rules = DEPLOY / "prometheus"
    tests = sorted(p.name for p in rules.glob("*.test.yml"))
    assert tests
    for args in (["check", "rules", *(f.name for f in rule_files())], ["test", "rules", *tests]):
        done = subprocess.run([promtool, *args], cwd=rules, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    fires, quiet = set(), set()
    for f in (DEPLOY / "prometheus").glob("*.test.yml"):
        for t in yaml.safe_load(f.read_text())["tests"]:
            for a in t.get("alert_rule_test", []):
                (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert not names - fires, f"never tested firing: {sorted(names - fires)}"
    assert not names - quiet, f"never tested quiet: {sorted(names - quiet)}"


#: An annotation's base: an external label when Prometheus sets one, else the default.
_BASE = re.compile(
    r"^\{\{ with \$externalLabels\.(\w+) \}\}\{\{ \. \}\}\{\{ else \}\}(\S+?)\{\{ end \}\}(\S+)$"
)


def test_every_alert_links_its_runbook_and_dashboard_panel() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "mds.json").read_text())
    panels = {p["id"] for p in dash["panels"]}
    for rule in alert_rules():
        name, notes = rule["alert"], rule["annotations"]
        runbook = _BASE.match(notes["runbook_url"])
        assert runbook and runbook.group(1) == "mds_runbooks", name
        assert runbook.group(3) == f"/{name}.md" and runbook.group(2).endswith("/docs/runbooks"), name
        assert (RUNBOOKS / f"{name}.md").is_file(), f"no runbook for {name}"
        board = _BASE.match(notes["dashboard_url"])
        assert board and board.group(1) == "mds_grafana", name
        path = re.fullmatch(r"/d/([\w-]+)/[\w-]+\?viewPanel=(\d+)", board.group(3))
        assert path and path.group(1) == dash["uid"] and int(path.group(2)) in panels, name
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == {r["alert"] for r in alert_rules()}


def test_runbooks_name_only_endpoints_and_commands_that_exist() -> None:
    from mds.api.app import create_app
    from mds.cli import app as cli

    spec = create_app(lambda: None).openapi()["paths"]  # type: ignore[arg-type, return-value]
    routes = [
        (method.upper(), re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"))
        for path, ops in spec.items()
        for method in ops
    ]
    root = typer.main.get_command(cli)
    for runbook in sorted(RUNBOOKS.glob("*.md")):
        text = runbook.read_text()
        calls = re.findall(r"\b(GET|POST|PUT|DELETE) (/[^\s`?,;)]*)", text)
        assert calls or "mds " in text, runbook.name
        for method, path in calls:
            path = path.rstrip(".:")
            assert any(m == method and r.match(path) for m, r in routes), f"{runbook.name}: {method} {path}"
        for words in re.findall(r"`mds ([a-z][\w-]*(?: [a-z][\w-]*)?)", text):
            cmd, *sub = words.split()
            assert cmd in root.commands, f"{runbook.name}: mds {cmd}"  # type: ignore[attr-defined]
            group = root.commands[cmd]  # type: ignore[attr-defined]
            if sub and isinstance(group, click.Group):
                assert sub[0] in group.commands, f"{runbook.name}: mds {words}"


def test_blackbox_modules_exist_for_every_probe_job() -> None:
    modules = yaml.safe_load((DEPLOY / "blackbox" / "blackbox.yml").read_text())["modules"]
    assert modules["http_2xx"]["prober"] == "http"
    ws = modules["ws_handshake"]
    assert ws["prober"] == "tcp"  # the http prober reads a 101's socket until the server closes it
    lines = [step["send"] for step in ws["tcp"]["query_response"] if "send" in step]
    assert lines[0] == "GET /ws HTTP/1.1\r" and lines[-1] == "\r"
    key = next(line.split(": ")[1].strip() for line in lines if line.startswith("Sec-WebSocket-Key"))
    accept = base64.b64encode(hashlib.sha1(f"{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11".encode()).digest())
    expects = [re.compile(step["expect"]) for step in ws["tcp"]["query_response"] if "expect" in step]
    assert expects[0].match("HTTP/1.1 101 Switching Protocols")  # RFC 6455's accept for the key sent:
    assert expects[1].match(f"Sec-WebSocket-Accept: {accept.decode()}\r")
    assert modules["tcp_connect"]["prober"] == "tcp"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    probes = {j["job_name"]: j for j in scrape if j.get("metrics_path") == "/probe"}
    assert {j["params"]["module"][0] for j in probes.values()} <= set(modules)
    targets = [t for j in probes.values() for c in j["static_configs"] for t in c["targets"]]
    assert any(t.endswith("/health") for t in targets)
    ws_targets = next(j for j in probes.values() if j["params"]["module"] == ["ws_handshake"])
    assert all(re.fullmatch(r"[\w.-]+:\d+", t) for c in ws_targets["static_configs"] for t in c["targets"])
    assert any(t.endswith(":5432") for t in targets) and any(t.endswith(":6379") for t in targets)
    k8s = list(yaml.safe_load_all((DEPLOY / "k8s" / "servicemonitor-blackbox.yaml").read_text()))
    assert {d["spec"]["module"] for d in k8s if d["kind"] == "Probe"} <= set(modules)


def test_service_monitors_select_the_services_defined() -> None:
    for name in ("servicemonitor-mds.yaml", "servicemonitor-blackbox.yaml"):
        docs = list(yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()))
        services = [d for d in docs if d["kind"] == "Service"]
        monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
        assert services and monitors, name
        for m in monitors:
            want = m["spec"]["selector"]["matchLabels"]
            chosen = [s for s in services if want.items() <= s["metadata"]["labels"].items()]
            assert chosen, f"{name}: {m['metadata']['name']} selects no Service"
            ports = {e["port"] for e in m["spec"]["endpoints"]}
            for s in chosen:
                assert ports <= {p["name"] for p in s["spec"]["ports"]}, s["metadata"]["name"]


def test_the_lag_alert_reads_the_configured_cadence() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts-slo.yml").read_text())
    alert = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "LiveLagT0High")
    assert {"live_lag_seconds", "tier_cadence_seconds"} <= referenced(alert["expr"])
    assert alert["for"] == "5m"
