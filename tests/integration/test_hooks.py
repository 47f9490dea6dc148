"""Task-run hooks against a real loopback HTTP server standing in for Discord and a Pushgateway."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mds.config import Settings, load_settings
from mds.domain.schedules import Hooks, JobRun, RunStatus, Trigger
from mds.observability.metrics import Metrics
from mds.ops.hooks import DESCRIPTION_MAX, FIELD_MAX, TITLE_MAX, RunHooks, events_for
from tests.helpers import free_port, utc

#: Stands in for the token part of a Discord webhook URL: it must never reach a log.
TOKEN = "s3cr3t-webhook-token-abcdef"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    url: str
    requests: list[Request] = field(default_factory=list)
    #: Status answered per path (204 when not listed, as Discord does).
    status: dict[str, int] = field(default_factory=dict)

    def at(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorder.requests.append(Request(self.command, self.path, dict(self.headers), body))
            status = recorder.status.get(self.path, 204)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def settings(**env: str) -> Settings:
    return load_settings({"HOOK_TIMEOUT_SEC": "2", **env})


def a_run(status: RunStatus = RunStatus.FAILED, **overrides: Any) -> JobRun:
    values: dict[str, Any] = {
        "task": "backfill_eod",
        "trigger": Trigger.SCHEDULE,
        "logical_date": date(2025, 3, 10),
        "queued_at": utc(2025, 3, 10, 21),
        "status": status,
        "schedule": "nightly-eod",
        "queue": "market_data",
        "counters": {"symbols": 503, "bars_written": 1200},
        "error": "ProviderError: fmp answered 502" if status is RunStatus.FAILED else None,
        "attempt": 2,
        "started_at": utc(2025, 3, 10, 21, 0, 5),
        "finished_at": utc(2025, 3, 10, 21, 1, 17),
        "duration_s": 72.25,
        "id": 4711,
        "metadata": {"safety": {"timeout_s": 60}},
    }
    return JobRun(**{**values, **overrides})


def fields_of(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}


def test_events_for_each_status() -> None:
    assert events_for(a_run(RunStatus.SUCCEEDED)) == ["success"]
    assert events_for(a_run(RunStatus.FAILED)) == ["failure"]
    assert events_for(a_run(RunStatus.TIMED_OUT)) == ["slow", "failure"]
    assert events_for(a_run(RunStatus.SKIPPED)) == []


async def test_failure_goes_to_url_and_alias_in_discord_shape(server: Recorder) -> None:
    hooks = RunHooks(settings(DISCORD_WEBHOOK_SIGNALS=f"{server.url}/hook2"), Metrics())
    long_error = "Traceback: " + "x" * 10_000
    run = a_run(error=long_error, counters={f"c{i}": i for i in range(300)})

    await hooks.notify(run, Hooks(discord_webhook=f"{server.url}/hook1,signals"))

    assert sorted(r.path for r in server.requests) == ["/hook1", "/hook2"]
    for request in server.requests:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        body = request.json()
        assert body["username"] == "MDS"
        [embed] = body["embeds"]
        assert set(embed) == {"title", "description", "color", "fields", "timestamp"}
        assert "backfill_eod" in embed["title"] and len(embed["title"]) <= TITLE_MAX
        assert embed["color"] == 0xE74C3C
        assert embed["timestamp"] == "2025-03-10T21:01:17+00:00"
        assert all(f["inline"] in (True, False) for f in embed["fields"])
        fields = fields_of(embed)
        assert fields["job id"] == "4711"
        assert fields["duration"] == "72.2 s"  # 72.25 rounds half to even
        assert fields["queue"] == "market_data"
        assert fields["schedule"] == "nightly-eod"
        assert fields["attempt"] == "2"
        assert fields["logical date"] == "2025-03-10"
        assert fields["counters"].startswith("c0=0, c1=1, c2=2")
        assert len(fields["counters"]) == FIELD_MAX and fields["counters"].endswith("…")
        assert fields["error"].startswith("Traceback: xxx")
        assert len(fields["error"]) == FIELD_MAX and fields["error"].endswith("…")
        assert "failed" in embed["description"] and len(embed["description"]) <= DESCRIPTION_MAX


def embed_chars(body: dict[str, Any]) -> int:
    """Characters Discord counts against its 6000 limit for a message's embeds."""
    return sum(
        len(e["title"]) + len(e["description"]) + sum(len(f["name"]) + len(f["value"]) for f in e["fields"])
        for e in body["embeds"]
    )


async def test_largest_message_fits_discord_limits(server: Recorder) -> None:
    # Longest names the schedule patterns allow, and a timed-out run alerting both its events.
    run = a_run(
        RunStatus.TIMED_OUT,
        task="t" * 64,
        schedule="s" * 64,
        queue="q" * 32,
        error="e" * 50_000,
        counters={f"counter_{i}": "v" * 40 for i in range(100)},
        id=2**62,
        attempt=10,
        duration_s=172_800.0,
    )
    await RunHooks(settings(), Metrics()).notify(
        run, Hooks(discord_webhook=f"{server.url}/h", alert_on=["slow", "failure"])
    )
    [sent] = server.requests
    body = sent.json()
    assert len(body["embeds"]) == 2
    assert embed_chars(body) <= 6000
    for embed in body["embeds"]:
        assert len(embed["title"]) <= TITLE_MAX
        assert all(len(f["value"]) <= FIELD_MAX for f in embed["fields"])


async def test_alert_on_selects_events(server: Recorder) -> None:
    hooks = RunHooks(settings(), Metrics())
    url = f"{server.url}/hook"

    await hooks.notify(a_run(RunStatus.SUCCEEDED), Hooks(discord_webhook=url))
    assert server.requests == []  # alert_on defaults to failures only

    await hooks.notify(a_run(RunStatus.SUCCEEDED), Hooks(discord_webhook=url, alert_on=["success"]))
    [sent] = server.requests
    [embed] = sent.json()["embeds"]
    assert embed["color"] == 0x2ECC71 and fields_of(embed)["status"] == "succeeded"

    server.requests.clear()
    await hooks.notify(a_run(RunStatus.TIMED_OUT), Hooks(discord_webhook=url, alert_on=["slow"]))
    [sent] = server.requests
    [embed] = sent.json()["embeds"]
    assert embed["color"] == 0xE67E22
    assert embed["title"].startswith("SLOW")
    assert "timeout of 60 s" in embed["description"]


async def test_timed_out_run_sends_slow_and_failure_in_one_message(server: Recorder) -> None:
    hooks = RunHooks(settings(), Metrics())
    await hooks.notify(
        a_run(RunStatus.TIMED_OUT), Hooks(discord_webhook=f"{server.url}/h", alert_on=["slow", "failure"])
    )
    [sent] = server.requests
    assert [e["color"] for e in sent.json()["embeds"]] == [0xE67E22, 0xE74C3C]


async def test_failures_without_a_job_hook_go_to_system_status(server: Recorder) -> None:
    hooks = RunHooks(settings(DISCORD_WEBHOOK_SYSTEM_STATUS=f"{server.url}/status"), Metrics())

    await hooks.notify(a_run(RunStatus.SUCCEEDED), Hooks())
    assert server.requests == []

    await hooks.notify(a_run(RunStatus.FAILED), Hooks())
    [sent] = server.at("/status")
    assert sent.json()["embeds"][0]["color"] == 0xE74C3C


async def test_duplicate_targets_post_once(server: Recorder) -> None:
    url = f"{server.url}/same"
    hooks = RunHooks(settings(DISCORD_WEBHOOK_PORTFOLIO=url), Metrics())
    await hooks.notify(a_run(), Hooks(discord_webhook=f"{url},portfolio,{url}"))
    assert len(server.at("/same")) == 1


async def test_pushgateway_receives_the_duration_gauge(server: Recorder) -> None:
    hooks = RunHooks(settings(), Metrics())
    run = a_run(RunStatus.TIMED_OUT, task="refresh_index")

    await hooks.notify(run, Hooks(prometheus_endpoint=server.url))

    [push] = server.requests
    assert push.method == "POST"  # pushadd: replaces only this metric in the task's group
    assert push.path == "/metrics/job/mds_tasks/task/refresh_index"
    text = push.body.decode()
    assert "# TYPE mds_task_duration_seconds gauge" in text
    [family] = text_string_to_metric_families(text)
    assert family.name == "mds_task_duration_seconds"
    samples = {s.labels["event"]: s for s in family.samples}
    assert set(samples) == {"slow", "failure"}
    for sample in samples.values():
        assert sample.labels == {
            "task": "refresh_index",
            "event": sample.labels["event"],
            "queue": "market_data",
        }
        assert sample.value == run.duration_s


async def test_pushgateway_gets_nothing_for_a_run_without_events(server: Recorder) -> None:
    hooks = RunHooks(settings(), Metrics())
    await hooks.notify(a_run(RunStatus.SKIPPED), Hooks(prometheus_endpoint=server.url))
    assert server.requests == []


async def test_failed_hooks_are_counted_and_logged_without_secrets(
    server: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    hooks = RunHooks(settings(), metrics)
    server.status[f"/api/webhooks/1/{TOKEN}"] = 500
    server.status["/metrics/job/mds_tasks/task/backfill_eod"] = 500
    closed = f"http://127.0.0.1:{free_port()}/api/webhooks/2/{TOKEN}"
    job_hooks = Hooks(
        discord_webhook=f"{server.url}/api/webhooks/1/{TOKEN},{closed}", prometheus_endpoint=server.url
    )

    with caplog.at_level(logging.WARNING, logger="mds.ops.hooks"):
        await hooks.notify(a_run(), job_hooks)  # returns: the run never fails for a hook

    assert len(server.requests) == 2  # the 500 webhook and the push were tried
    assert metrics.value("hook_failures_total", kind="discord") == 2
    assert metrics.value("hook_failures_total", kind="pushgateway") == 1
    assert len(caplog.records) == 3
    assert "webhook #1" in caplog.text and "webhook #2" in caplog.text
    assert TOKEN not in caplog.text and "/api/webhooks" not in caplog.text


async def test_unset_alias_is_a_failure_and_others_still_send(
    server: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    hooks = RunHooks(settings(DISCORD_WEBHOOK_SIGNALS=f"{server.url}/signals"), metrics)

    with caplog.at_level(logging.WARNING, logger="mds.ops.hooks"):
        await hooks.notify(a_run(), Hooks(discord_webhook=f"playground,signals,{server.url}/direct"))

    assert sorted(r.path for r in server.requests) == ["/direct", "/signals"]
    assert metrics.value("hook_failures_total", kind="discord") == 1
    assert "DISCORD_WEBHOOK_PLAYGROUND" in caplog.text


async def test_a_given_client_is_used_and_left_open(server: Recorder) -> None:
    async with httpx.AsyncClient(headers={"X-Test": "given"}) as client:
        hooks = RunHooks(settings(), Metrics(), client)
        await hooks.notify(a_run(), Hooks(discord_webhook=f"{server.url}/h"))
        await hooks.notify(a_run(), Hooks(discord_webhook=f"{server.url}/h"))
        assert not client.is_closed
    assert [r.headers.get("X-Test") for r in server.requests] == ["given", "given"]
