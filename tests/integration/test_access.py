"""Every guarded route, on SQLite and PostgreSQL: 401 without a key, 403 with a lower role,
2xx with the right one; reads open unless AUTH_READ_REQUIRED; refusals as problem+json."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from tests.conftest import skip_or_fail
from tests.integration.conftest import API_ENV, API_NOW, API_OPEN
from tests.pgserver import PgProvider, Unavailable, drop_database

SCHEDULES = "/api/v1/admin/schedules"
HOURLY = {"task": "ping", "cron": "0 * * * *"}
DAY = f"start={API_OPEN.isoformat().replace('+00:00', 'Z')}&end={API_NOW.isoformat().replace('+00:00', 'Z')}"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # the route's path template, as FastAPI knows it
    url: str  # a request that answers 2xx for the right role
    role: Role
    body: Any = None


# One 2xx request per guarded route; test_every_guarded_route_is_listed keeps this complete.
CALLS = [
    Call("GET", "/stats/providers", "/stats/providers", Role.READ),
    Call("GET", "/providers/{name}/health-history", "/providers/sim/health-history", Role.READ),
    Call("GET", "/stats/cadence", "/stats/cadence", Role.READ),
    Call("GET", "/stats/quality", "/stats/quality", Role.READ),
    Call("GET", "/stocks/{symbol}/price", "/stocks/AAPL/price", Role.READ),
    Call("GET", "/stocks/{symbol}/history", "/stocks/AAPL/history?period=5d", Role.READ),
    Call("GET", "/stocks/{symbol}/intraday", f"/stocks/AAPL/intraday?{DAY}", Role.READ),
    Call("POST", "/stocks/batch", "/stocks/batch", Role.READ, {"symbols": ["AAPL"]}),
    Call("GET", "/api/v1/market/prices", "/api/v1/market/prices?symbol=AAPL&range=5d", Role.READ),
    Call("GET", "/api/v1/market/atr", "/api/v1/market/atr?symbol=AAPL", Role.READ),
    Call("GET", "/api/v1/market/ta", "/api/v1/market/ta?symbol=AAPL", Role.READ),
    Call("GET", "/ws/replay", "/ws/replay?symbol=AAPL&since=0", Role.READ),
    Call("GET", "/options/{symbol}/chain", "/options/AAPL/chain?max_days=40", Role.READ),
    Call("GET", "/options/{symbol}/metrics", "/options/AAPL/metrics", Role.READ),
    Call("GET", "/options/{symbol}/metrics/history", "/options/AAPL/metrics/history", Role.READ),
    Call("GET", "/options/{symbol}/strategies", "/options/AAPL/strategies?type=vertical", Role.READ),
    Call("GET", "/factors/macro", "/factors/macro", Role.READ),
    Call("GET", "/factors/macro/{factor_key}/history", "/factors/macro/DGS10/history", Role.READ),
    Call("POST", "/admin/macro/refresh", "/admin/macro/refresh", Role.ADMIN, {"factors": ["DGS10"]}),
    Call("GET", "/stocks/{symbol}/actions", "/stocks/AAPL/actions", Role.READ),
    Call("GET", "/coverage/suspected-actions", "/coverage/suspected-actions?symbol=AAPL", Role.READ),
    Call("GET", "/stocks/{symbol}/profile", "/stocks/AAPL/profile?history=5", Role.READ),
    Call(
        "POST",
        "/api/v1/market-data/admin/profiles/refresh",
        "/api/v1/market-data/admin/profiles/refresh",
        Role.ADMIN,
        {"symbols": ["AAPL"], "max_age_days": 0},
    ),
    Call(
        "POST",
        "/api/v1/market-data/admin/corporate-actions/refresh",
        "/api/v1/market-data/admin/corporate-actions/refresh",
        Role.ADMIN,
        {"symbols": ["AAPL"]},
    ),
    Call("GET", "/ops/cursor/{symbol}/{interval}/{source}", "/ops/cursor/AAPL/1m/auto", Role.OPS),
    Call(
        "POST",
        "/ops/backfill",
        "/ops/backfill",
        Role.OPS,
        {"symbol": "MSFT", "interval": "1m", "start": "2025-10-06T13:30:00Z", "end": "2025-10-06T14:30:00Z"},
    ),
    Call("POST", "/ops/validate", "/ops/validate", Role.OPS),
    Call("POST", "/ops/reload", "/ops/reload", Role.OPS),
    Call("POST", "/ops/config/reload", "/ops/config/reload", Role.OPS),
    Call("GET", "/ops/coverage", "/ops/coverage", Role.OPS),
    Call("GET", "/ops/dlq/backfills", "/ops/dlq/backfills?tier=T1", Role.OPS),
    Call("POST", "/ops/dlq/backfills/requeue/{job_id}", "/ops/dlq/backfills/requeue/{failed}", Role.OPS),
    Call("POST", "/ops/dlq/backfills/requeue-all", "/ops/dlq/backfills/requeue-all?tier=T2", Role.OPS),
    Call("GET", "/ops/dlq/stats", "/ops/dlq/stats", Role.OPS),
    Call("DELETE", "/ops/dlq/backfills/purge", "/ops/dlq/backfills/purge?days=30", Role.OPS),
    Call(
        "POST",
        "/api/v1/market-data/admin/indicators/refresh-index",
        "/api/v1/market-data/admin/indicators/refresh-index",
        Role.ADMIN,
        {"symbols": ["AAPL"]},
    ),
    Call(
        "POST",
        "/api/v1/market-data/admin/history/record",
        "/api/v1/market-data/admin/history/record",
        Role.ADMIN,
        {"symbols": ["AAPL"]},
    ),
    Call("GET", "/api/v1/market-data/tracked", "/api/v1/market-data/tracked", Role.READ),
    Call(
        "GET",
        "/api/v1/market-data/db/history",
        "/api/v1/market-data/db/history?symbol=AAPL&interval=1d",
        Role.READ,
    ),
    Call(
        "POST",
        "/api/v1/market-data/backfill/5m",
        "/api/v1/market-data/backfill/5m?n_days=1&batch_size=5",
        Role.ADMIN,
    ),
    Call(
        "POST",
        "/api/v1/market-data/retention/enforce",
        "/api/v1/market-data/retention/enforce?max_days_5m=90",
        Role.ADMIN,
    ),
    Call("GET", "/api/v1/market-data/coverage", "/api/v1/market-data/coverage", Role.READ),
    Call("GET", "/api/v1/market-data/coverage/{symbol}", "/api/v1/market-data/coverage/AAPL", Role.READ),
    Call(
        "POST",
        "/api/v1/market-data/admin/coverage/refresh",
        "/api/v1/market-data/admin/coverage/refresh",
        Role.ADMIN,
    ),
    Call(
        "POST",
        "/api/v1/market-data/admin/coverage/backfill-stale-daily",
        "/api/v1/market-data/admin/coverage/backfill-stale-daily",
        Role.ADMIN,
    ),
    Call(
        "GET",
        "/api/v1/market-data/indexes/constituents",
        "/api/v1/market-data/indexes/constituents?index=DOW30",
        Role.READ,
    ),
    Call(
        "POST",
        "/api/v1/market-data/admin/holdings",
        "/api/v1/market-data/admin/holdings",
        Role.ADMIN,
        {"symbols": ["AAPL"]},
    ),
    Call(
        "DELETE",
        "/api/v1/market-data/admin/holdings",
        "/api/v1/market-data/admin/holdings?symbols=AAPL",
        Role.ADMIN,
    ),
    Call(
        "POST",
        "/api/v1/market-data/admin/backfill/index",
        "/api/v1/market-data/admin/backfill/index?index=DOW30",
        Role.ADMIN,
    ),
    # Schedules, in an order each answers 2xx in: created first, deleted last.
    Call("POST", SCHEDULES, SCHEDULES, Role.ADMIN, {**HOURLY, "name": "access"}),
    Call("GET", SCHEDULES, SCHEDULES, Role.ADMIN),
    Call("POST", f"{SCHEDULES}/preview", f"{SCHEDULES}/preview", Role.ADMIN, {"cron": "0 * * * *"}),
    Call("GET", f"{SCHEDULES}/export", f"{SCHEDULES}/export", Role.ADMIN),
    Call("POST", f"{SCHEDULES}/import", f"{SCHEDULES}/import", Role.ADMIN, [{**HOURLY, "name": "imported"}]),
    Call("GET", f"{SCHEDULES}/{{name}}", f"{SCHEDULES}/access", Role.ADMIN),
    Call("PUT", f"{SCHEDULES}/{{name}}", f"{SCHEDULES}/access", Role.ADMIN, {**HOURLY, "name": "access"}),
    Call("POST", f"{SCHEDULES}/{{name}}/pause", f"{SCHEDULES}/access/pause", Role.ADMIN),
    Call("POST", f"{SCHEDULES}/{{name}}/resume", f"{SCHEDULES}/access/resume", Role.ADMIN),
    Call("POST", f"{SCHEDULES}/{{name}}/run-now", f"{SCHEDULES}/access/run-now", Role.ADMIN),
    Call("DELETE", f"{SCHEDULES}/{{name}}", f"{SCHEDULES}/imported", Role.ADMIN),
    Call("GET", "/api/v1/market-data/admin/jobs", "/api/v1/market-data/admin/jobs?task=ping", Role.ADMIN),
    Call(
        "GET", "/api/v1/market-data/admin/jobs/{run_id}", "/api/v1/market-data/admin/jobs/{run}", Role.ADMIN
    ),
    Call("GET", "/api/v1/market-data/admin/tasks", "/api/v1/market-data/admin/tasks", Role.ADMIN),
    Call(
        "POST",
        "/api/v1/market-data/admin/tasks/run",
        "/api/v1/market-data/admin/tasks/run",
        Role.ADMIN,
        {"task": "ping"},
    ),
]
OPEN_ROUTES = {("GET", "/"), ("GET", "/health"), ("GET", "/metrics")}
BELOW = {Role.OPS: Role.READ, Role.ADMIN: Role.OPS}


@pytest.fixture(scope="module")
def pg_provider() -> AsyncIterator[PgProvider]:
    provider = PgProvider()
    yield provider
    provider.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def guarded(request, tmp_path, pg_provider) -> AsyncIterator[tuple[Runtime, dict[Role, str]]]:
    """A runtime with AUTH_READ_REQUIRED=true, AAPL's bars stored, and one key per role."""
    admin = url = ""
    if request.param == "postgres":
        try:
            admin = await pg_provider.admin_url()
        except Unavailable as exc:
            skip_or_fail(str(exc))
        url = await pg_provider.migrated_database()
    env = {
        **API_ENV,
        "DATABASE_URL": url or f"sqlite:///{tmp_path}/access.db",
        "AUTH_READ_REQUIRED": "true",
        "AUTH_FAILURE_LIMIT": "1000/minute",
    }
    try:
        async with open_runtime(
            load_settings(env), clock=ManualClock(API_NOW), demo=True, collect=False, environ=env
        ) as rt:
            await rt.store.write_bars(ground_truth("AAPL", Interval.M1, API_OPEN, API_NOW), as_of=API_NOW)
            await rt.store.write_bars(
                ground_truth("AAPL", Interval.D1, API_NOW - timedelta(days=40), API_OPEN), as_of=API_NOW
            )
            await rt.store.advance_cursor("AAPL", Interval.M1, "auto", API_NOW, now=API_NOW)
            await rt.profiles.refresh(["AAPL"])  # from the sim: GET /stocks/AAPL/profile answers 200
            keys = {}
            for role in Role:
                keys[role], _ = await issue_key(rt.store, f"{role.value}-key", role, now=API_NOW)
            yield rt, keys
    finally:
        if url:
            await drop_database(admin, url)


def _client(rt: Runtime) -> httpx.AsyncClient:
    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]  # rt is set directly
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.0.0.7", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://mds")


async def _failed_job(rt: Runtime) -> int:
    job = await rt.store.create_backfill(
        "MSFT", Interval.M1, API_OPEN - timedelta(days=2), API_OPEN - timedelta(days=1), Tier.T1, now=API_NOW
    )
    await rt.store.update_backfill(job.id, status=BackfillStatus.FAILED, now=API_NOW, last_error="test")
    return job.id


async def _url(rt: Runtime, call: Call) -> str:
    """``call.url`` with its placeholders filled: a failed backfill job, a queued job run."""
    url = call.url
    if "{failed}" in url:
        url = url.replace("{failed}", str(await _failed_job(rt)))
    if "{run}" in url:
        url = url.replace("{run}", str((await rt.schedules.run_task("ping", by="test")).id))
    return url


async def _send(client: httpx.AsyncClient, call: Call, url: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await client.request(call.method, url, json=call.body, headers=headers)


def _is_problem(r: httpx.Response, status: int) -> bool:
    return (
        r.status_code == status
        and r.headers["content-type"].startswith("application/problem+json")
        and r.json()["status"] == status
    )


def test_every_guarded_route_is_listed() -> None:
    schema = create_app(lambda: None).openapi()  # type: ignore[arg-type, return-value]
    routes = {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}
    assert routes - OPEN_ROUTES == {(c.method, c.path) for c in CALLS}
    for call in CALLS:  # and the document says which key each needs
        security = schema["paths"][call.path][call.method.lower()]["security"]
        assert {"BearerKey": []} in security and {"ApiKeyHeader": []} in security
        assert ({} in security) is (call.role is Role.READ), call.path
        operation = schema["paths"][call.path][call.method.lower()]
        assert operation["x-required-role"] == call.role.value
        assert f"`{call.role.value}` role" in operation["description"]


async def test_each_route_refuses_missing_and_lower_keys_and_admits_its_role(guarded) -> None:
    rt, keys = guarded
    async with _client(rt) as client:
        for call in CALLS:
            url = await _url(rt, call)
            missing = await _send(client, call, url, None)
            assert _is_problem(missing, 401), (call.path, missing.status_code, missing.text)
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await _send(client, call, url, "mds_" + secrets.token_urlsafe(32))
            assert _is_problem(wrong, 401), (call.path, wrong.status_code)
            assert wrong.json()["detail"] == missing.json()["detail"]  # says nothing about the key
            if call.role in BELOW:
                lower = await _send(client, call, url, keys[BELOW[call.role]])
                assert _is_problem(lower, 403), (call.path, lower.status_code)
            ok = await _send(client, call, url, keys[call.role])
            assert 200 <= ok.status_code < 300, (call.path, ok.status_code, ok.text)
            if call.role is not Role.ADMIN:  # admin includes ops, which includes read
                higher = await _send(client, call, url, keys[Role.ADMIN])
                assert higher.status_code not in (401, 403), (call.path, higher.status_code)
    failures = {
        s.labels["reason"]: s.value
        for m in rt.metrics.registry.collect()
        if m.name == "auth_failures"
        for s in m.samples
        if s.name == "auth_failures_total"
    }
    n_lower = sum(1 for c in CALLS if c.role in BELOW)
    assert failures == {"missing": len(CALLS), "invalid": len(CALLS), "forbidden": n_lower}


async def test_reads_are_open_by_default_and_ops_never_are(guarded) -> None:
    rt, keys = guarded
    rt.apply_settings(load_settings({**rt.environ, "AUTH_READ_REQUIRED": "false"}))
    async with _client(rt) as client:
        for call in CALLS:
            url = await _url(rt, call)
            r = await _send(client, call, url, None)
            if call.role is Role.READ:
                assert 200 <= r.status_code < 300, (call.path, r.status_code)
            else:
                assert _is_problem(r, 401), (call.path, r.status_code)
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_revoked_key_stops_within_auth_cache_sec(guarded) -> None:
    rt, _ = guarded
    key, _ = await issue_key(rt.store, "short-lived", Role.OPS, now=API_NOW)
    now = [1000.0]
    rt.auth.monotonic = lambda: now[0]
    async with _client(rt) as client:
        headers = {"X-API-Key": key}
        assert (await client.get("/ops/dlq/stats", headers=headers)).status_code == 200
        await rt.store.revoke_api_key("short-lived", now=API_NOW)
        # Trusted from the cache until AUTH_CACHE_SEC has passed, refused after.
        now[0] += rt.settings.AUTH_CACHE_SEC - 0.5
        assert (await client.get("/ops/dlq/stats", headers=headers)).status_code == 200
        now[0] += 1.0
        r = await client.get("/ops/dlq/stats", headers=headers)
        assert _is_problem(r, 401)


async def test_failed_keys_are_rate_limited_per_address(tmp_path) -> None:
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/rl.db", "AUTH_FAILURE_LIMIT": "3/minute"}
    async with open_runtime(load_settings(env), clock=ManualClock(API_NOW), collect=False, environ=env) as rt:
        good, _ = await issue_key(rt.store, "good", Role.OPS, now=API_NOW)
        async with _client(rt) as client:
            bad = {"X-API-Key": "mds_guess"}
            for _ in range(3):
                assert (await client.get("/ops/dlq/stats", headers=bad)).status_code == 401
            limited = await client.get("/ops/dlq/stats", headers=bad)
            assert _is_problem(limited, 429) and int(limited.headers["retry-after"]) >= 1
            # Once limited, the address gets no answer about any key it has not used before.
            assert (await client.get("/ops/dlq/stats", headers={"X-API-Key": good})).status_code == 429
            # Another address is not affected.
            other = httpx.ASGITransport(app=client._transport.app, client=("10.0.0.8", 5000))  # type: ignore[attr-defined]
            async with httpx.AsyncClient(transport=other, base_url="http://mds") as c2:
                assert (await c2.get("/ops/dlq/stats", headers={"X-API-Key": good})).status_code == 200
        text = rt.metrics.render().decode()
        assert 'auth_failures_total{reason="rate_limited"} 2.0' in text
        assert 'auth_failures_total{reason="invalid"} 3.0' in text


async def test_kept_bars_fast_path_answers_only_checked_keys(guarded) -> None:
    rt, keys = guarded
    url = f"/stocks/AAPL/intraday?{DAY}"
    async with _client(rt) as client:
        first = await client.get(url, headers={"X-API-Key": keys[Role.READ]})
        assert first.status_code == 200 and first.json()["bars"]
        # The bytes are kept now; the fast path must still refuse without a valid key.
        assert _is_problem(await client.get(url), 401)
        assert _is_problem(await client.get(url, headers={"X-API-Key": "mds_nope"}), 401)
        again = await client.get(url, headers={"Authorization": f"Bearer {keys[Role.READ]}"})
        assert again.status_code == 200 and again.content == first.content


async def test_cors_is_off_by_default_and_follows_the_allow_list(guarded) -> None:
    rt, keys = guarded
    preflight = {"Origin": "https://tools.example.com", "Access-Control-Request-Method": "GET"}
    async with _client(rt) as client:
        r = await client.options("/stats/providers", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        rt.apply_settings(load_settings({**rt.environ, "CORS_ALLOW_ORIGINS": "https://tools.example.com"}))
        r = await client.options("/stats/providers", headers=preflight)
        assert (
            r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://tools.example.com"
        )
        r = await client.options("/stats/providers", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        r = await client.get(
            "/stats/providers", headers={"Origin": "https://tools.example.com", "X-API-Key": keys[Role.READ]}
        )
        assert (
            r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://tools.example.com"
        )


async def test_metrics_need_a_read_key_only_when_auth_metrics_required(guarded) -> None:
    rt, keys = guarded
    async with _client(rt) as client:
        assert (await client.get("/metrics")).status_code == 200  # Prometheus scrapes without a key
        rt.apply_settings(load_settings({**rt.environ, "AUTH_METRICS_REQUIRED": "true"}))
        assert _is_problem(await client.get("/metrics"), 401)
        r = await client.get("/metrics", headers={"X-API-Key": keys[Role.READ]})
        assert r.status_code == 200 and "auth_failures_total" in r.text
        assert (await client.get("/health")).status_code == 200  # probes stay open
    # Worker and scheduler processes serve /metrics behind the same guard.
    service = create_app(lambda: None, service_only=True)  # type: ignore[arg-type, return-value]
    service.state.runtime = rt
    transport = httpx.ASGITransport(app=service, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mds") as client:
        assert _is_problem(await client.get("/metrics"), 401)
        assert (await client.get("/metrics", headers={"X-API-Key": keys[Role.READ]})).status_code == 200
    security = service.openapi()["paths"]["/metrics"]["get"]["security"]
    assert {} in security and {"BearerKey": []} in security
