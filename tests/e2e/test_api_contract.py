"""The API contract: schemathesis over the whole /openapi.json of a live ``mds serve --demo``.

Every check schemathesis has runs (server errors, status codes, content types, response
schemas and headers, positive data accepted, negative data refused, undeclared methods
answered 405 with ``Allow``, auth enforced, stateful links), over every operation, with
positive and negative data, with an admin key so the guarded routes are exercised too
(``/ops/reload``, purges and requeues change the demo's state; that is the point). A
failure prints schemathesis's own account of it, with a curl line to reproduce it.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema
from schemathesis.generation.modes import GenerationMode

from mds.domain.models import Tier

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Rules no JSON Schema can state, per operation: a 422 for schema-valid data is right
#: when, and only when, its detail is one of these (see ``cross_field_rules_only``).
TIMING_RULES = (r"^(cron|timezone|calendar|when): ",)
SCHEDULE_RULES = (
    *TIMING_RULES,
    r"^body: Value error, (give `cron`|a schedule cannot depend on itself)",
    r"^name: Value error, '.*' is reserved",
    r"^task: unknown task ",
    r"^(kwargs\.|args: )",
    r"^metadata\.(queue|dependencies|preflight_checks): ",
    r"^metadata\.maintenance_windows\[\d+\](\.timezone)?: Value error, ",
    r"^metadata\.hooks\.(discord_webhook|prometheus_endpoint): Value error, ",
)
CROSS_FIELD_RULES: dict[str, tuple[str, ...]] = {
    "GET /stocks/{symbol}/intraday": (
        r"^start: start must be before end$",
        r"^end: intraday ranges are limited to \d+ days$",
    ),
    # history with start/end (instead of a period), or a date that cuts the range before it starts.
    "GET /stocks/{symbol}/history": (
        r"^start: start must be before end$",
        r"^end: intraday ranges are limited to \d+ days$",
    ),
    "GET /ops/coverage": (
        r"^start: start must be before end$",
        r"^end: 1m coverage windows are limited to \d+ days$",
    ),
    "POST /ops/backfill": (
        r"^start: start must be before end$",
        r"^end: range exceeds BACKFILL_MAX_RANGE_DAYS=\d+$",
        # An unknown symbol in a body is a bad field, not a missing resource (a decision
        # of the route; the universe is data, not schema).
        r"^symbol: \S+ is not in the universe$",
    ),
    "GET /ws/replay": (r"^epoch: epoch goes with an offset, not a time$",),
    "GET /api/v1/market-data/db/history": (r"^start: start must be before end$",),
    # A schedule's timing, task, parameters and metadata are checked against croniter, the
    # time-zone database, the exchange calendars, the task catalog, TASK_QUEUES and the other
    # schedules: data, not schema.
    "POST /api/v1/admin/schedules": SCHEDULE_RULES,
    "PUT /api/v1/admin/schedules/{name}": (*SCHEDULE_RULES, r"^name: the body names "),
    # Resume checks the saved metadata again: a dependency may have been deleted meanwhile.
    "POST /api/v1/admin/schedules/{name}/resume": (*TIMING_RULES, r"^metadata\.(queue|dependencies): "),
    "POST /api/v1/admin/schedules/preview": (*TIMING_RULES, r"^cron: give `cron`"),
    "POST /api/v1/admin/schedules/import": (
        *(rule.replace("^", r"^(\[\d+\]\.?)?", 1) for rule in SCHEDULE_RULES),
        r"^\[\d+\]: Value error, (give `cron`|a schedule cannot depend on itself)",
        r"^name: .* listed twice$",
    ),
    "POST /api/v1/market-data/admin/tasks/run": (r"^task: unknown task ", r"^kwargs\."),
    # Which expirations are listed, and how far MDS fetches (OPTIONS_MAX_DAYS), are data.
    "GET /options/{symbol}/chain": (
        r"^expiration: \S+ is not a listed expiration of ",
        r"^max_days: at most OPTIONS_MAX_DAYS ",
        r"^max_days: give expiration or max_days, not both$",
    ),
    "GET /options/{symbol}/metrics/history": (r"^end: end must be after start$",),
    "GET /factors/macro/{factor_key}/history": (r"^end: end \S+ is before start ",),
    "GET /stocks/{symbol}/actions": (r"^end: end \S+ is before start ",),
}
#: Symbols in the demo universe, so some requests reach past "404 unknown symbol".
DEMO_SYMBOLS = ["AAPL", "MSFT", "SPY", "QQQ", "NVDA"]
MAX_EXAMPLES = 12


@schemathesis.check
def cross_field_rules_only(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 for schema-valid data must name one of the operation's cross-field rules."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    rules = CROSS_FIELD_RULES.get(case.operation.label, ())
    detail = str(response.json().get("detail", ""))
    if not any(re.match(rule, detail) for rule in rules):
        raise AssertionError(f"schema-valid request refused with 422 by no cross-field rule: {detail}")
    return None


def contract_config(key: str) -> schemathesis.Config:
    operations: list[dict[str, Any]] = [
        {
            "include-name": label,
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]
                }
            },
        }
        for label in CROSS_FIELD_RULES
    ]
    return schemathesis.Config.from_dict(
        {
            # Reproducible: a failure here is the same failure on a rerun. CONTRACT_SEED
            # explores other inputs (not MDS_*: mds refuses unknown settings with its prefix).
            "seed": int(os.environ.get("CONTRACT_SEED", "20251008")),
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": 20},
            },
            "checks": {"enabled": True},
            # Every failure of every operation, not only the first of each.
            "continue-on-failure": True,
            "dictionaries": {
                "symbols": {"values": DEMO_SYMBOLS},
                "tiers": {"values": [t.value for t in Tier]},
            },
            "parameters": {
                "path.symbol": {"dictionary": "symbols", "probability": 0.5},
                "query.symbol": {"dictionary": "symbols", "probability": 0.5},
                "body.symbol": {"dictionary": "symbols", "probability": 0.5},
            },
            "operations": operations,
        }
    )


def failures_of(event: events.EngineEvent) -> list[str]:
    if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
        if event.status != Status.FAILURE:
            return []
        out = []
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    out.append(
                        f"{failure.operation} [{check.name}] {failure.title}: {failure.message}\n"
                        f"{check.failure_info.code_sample}\n(case {case_id})"
                    )
        return out
    if isinstance(event, events.NonFatalError):
        return [f"{event.label}: error {event.info.title}: {event.info.message}"]
    if isinstance(event, events.FatalError):
        return [f"fatal: {event.exception!r}"]
    if isinstance(event, events.EngineFinished):
        return [f"{f.operation} {f.title}: {f.message}" for f in event.failures]
    return []


def pinned_regressions(url: str, key: str) -> None:
    """What earlier fuzzing runs found, asked directly (a seed may not reach them again)."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        # The calendar reads a margin before its start: 1900-01-01 was a 500; now years are 1970-2199.
        assert (
            http.get("/ops/coverage", params={"interval": "1d", "start": "1970-01-01T00:00Z"}).status_code
            == 200
        )
        r = http.get("/ops/coverage", params={"interval": "1d", "start": "1900-01-01T00:00Z"})
        assert r.status_code == 422 and r.json()["field"] == "start"
        # Years of 1m coverage blocked the event loop past any client's timeout.
        r = http.get("/ops/coverage", params={"start": "2020-01-01T00:00Z"})
        assert r.status_code == 422 and r.json()["field"] == "end"
        # A window with fractions of a second, asked twice: the second was a 500 (a sliver
        # of a second between the stored jobs and the window made an empty job).
        now = datetime.fromisoformat(http.get("/").json()["now"])
        start, end = now - timedelta(days=3, seconds=0.430667), now - timedelta(days=1, seconds=0.732273)
        body = {"symbol": "MSFT", "start": start.isoformat(), "end": end.isoformat()}
        first, again = http.post("/ops/backfill", json=body), http.post("/ops/backfill", json=body)
        # 409 too: the demo's start-up backfill may still hold active jobs over that window.
        assert first.status_code in (202, 409), first.text
        assert again.status_code == 409 and again.headers["content-type"].startswith(
            "application/problem+json"
        )


def test_the_whole_api_keeps_its_openapi_contract(start_mds, tmp_path: Path) -> None:
    # The fuzzer sends bad keys on purpose (to prove auth is enforced); the default failure
    # limit would soon answer 429 to every request from this address, good key or not.
    mds = start_mds(["serve", "--demo"], env={"AUTH_FAILURE_LIMIT": "1000000/minute"})
    key = mds.key  # an admin key, so every guarded route is exercised
    pinned_regressions(mds.url, key)
    schema = schemathesis.openapi.from_url(f"{mds.url}/openapi.json", config=contract_config(key))
    assert len(list(schema.get_all_operations())) >= 24

    found: list[str] = []
    seen_negative = seen_stateful = False
    for event in from_schema(schema).execute():
        found += failures_of(event)
        if isinstance(event, events.ScenarioFinished):
            cases = event.recorder.cases.values()
            seen_negative |= any(
                c.value.meta is not None and c.value.meta.generation.mode is GenerationMode.NEGATIVE
                for c in cases
            )
            seen_stateful |= event.phase.value == "stateful"
        if isinstance(event, events.EngineFinished):
            assert event.stop_reason.value == "completed", event.stop_reason

    assert not found, f"{len(found)} contract failures:\n\n" + "\n\n".join(found)
    # The run really covered what it claims to (a misconfigured run would pass vacuously).
    assert seen_negative and seen_stateful
    assert "Traceback" not in mds.logs()
