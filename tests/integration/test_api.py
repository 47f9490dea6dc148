"""The HTTP API over a real store: shapes, problem+json naming the field, no 500 from input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mds.domain.models import BarStatus, Interval
from mds.providers.sim.market import ground_truth
from tests.helpers import SIM_ENV

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
ENV = dict(SIM_ENV)


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body["field"] == field, body
        assert field in body["detail"]
    return body


async def test_intraday_bars_shape_order_and_half_open_range(api) -> None:
    client, _ = api
    r = await client.get(
        "/stocks/AAPL/intraday", params={"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T13:40:00Z"}
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["symbol"], body["interval"]) == ("AAPL", "1m")
    ts = [b["ts"] for b in body["bars"]]
    assert ts[0] == "2025-10-08T13:30:00Z" and ts[-1] == "2025-10-08T13:39:00Z" and len(ts) == 10
    assert ts == sorted(ts)
    bar = body["bars"][0]
    assert set(bar) >= {"ts", "open", "high", "low", "close", "volume", "provider", "status", "as_of"}
    truth = ground_truth("AAPL", Interval.M1, OPEN, OPEN + timedelta(minutes=1))[0]
    assert (bar["open"], bar["close"], bar["provider"], bar["status"]) == (
        truth.open,
        truth.close,
        "sim",
        "final",
    )
    assert bar["as_of"] == "2025-10-08T15:00:00Z"


async def test_intraday_rollup_and_default_range(api) -> None:
    client, _ = api
    r = await client.get("/stocks/aapl/intraday", params={"interval": "15m"})
    assert r.status_code == 200
    bars = r.json()["bars"]
    assert [b["ts"] for b in bars] == [
        "2025-10-08T13:30:00Z",
        "2025-10-08T13:45:00Z",
        "2025-10-08T14:00:00Z",
        "2025-10-08T14:15:00Z",
        "2025-10-08T14:30:00Z",
        "2025-10-08T14:45:00Z",
    ]
    truth = ground_truth("AAPL", Interval.M15, OPEN, NOW)
    assert [b["close"] for b in bars] == [t.close for t in truth]


async def test_as_of_returns_what_mds_knew_then(api) -> None:
    client, rt = api
    ts = OPEN
    [old] = await rt.store.read_bars("AAPL", Interval.M1, ts, ts + timedelta(minutes=1))
    later = NOW + timedelta(hours=1)
    await rt.store.write_bars(
        [old.with_(close=old.close + 0.01, high=max(old.high, old.close + 0.01))], as_of=later
    )
    params = {"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T13:31:00Z"}
    latest = (await client.get("/stocks/AAPL/intraday", params=params)).json()["bars"][0]
    then = (
        await client.get("/stocks/AAPL/intraday", params={**params, "as_of": "2025-10-08T15:30:00Z"})
    ).json()
    assert latest["close"] == old.close + 0.01
    assert then["bars"][0]["close"] == old.close and then["as_of"] == "2025-10-08T15:30:00Z"
    before = (
        await client.get("/stocks/AAPL/intraday", params={**params, "as_of": "2025-10-08T14:00:00Z"})
    ).json()
    assert before["bars"] == []


async def test_history_and_price(api) -> None:
    client, _ = api
    r = await client.get("/stocks/AAPL/history", params={"period": "1mo"})
    assert r.status_code == 200
    bars = r.json()["bars"]
    assert len(bars) >= 20 and all(b["status"] == "final" for b in bars)
    r5 = (await client.get("/stocks/AAPL/history", params={"period": "5d"})).json()["bars"]
    assert len(r5) == 4  # five trading days back: four closed daily bars stored, today's not yet
    p = (await client.get("/stocks/AAPL/price")).json()
    last = ground_truth("AAPL", Interval.M1, NOW - timedelta(minutes=1), NOW)[0]
    assert p == {
        "symbol": "AAPL",
        "price": last.close,
        "ts": "2025-10-08T15:00:00Z",
        "source": "bar_1m",
        "provider": "sim",
        "as_of": "2025-10-08T15:00:00Z",
    }


async def test_batch_reports_unknown_symbols_apart(api) -> None:
    client, _ = api
    r = await client.post("/stocks/batch", json={"symbols": ["AAPL", "ZZZZ", "MSFT"]})
    assert r.status_code == 200
    body = r.json()
    assert list(body["prices"]) == ["AAPL"]
    assert set(body["errors"]) == {"ZZZZ", "MSFT"}  # MSFT is known but has no data yet


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [
        ("get", "/stocks/NOPE/price", {}, 404, None),
        ("get", "/stocks/NOPE/intraday", {}, 404, None),
        ("get", "/stocks/AAPL/intraday", {"params": {"interval": "2m"}}, 422, "interval"),
        ("get", "/stocks/AAPL/intraday", {"params": {"interval": "1d"}}, 422, "interval"),
        (
            "get",
            "/stocks/AAPL/intraday",
            {"params": {"start": "2025-10-08T15:00:00Z", "end": "2025-10-08T14:00:00Z"}},
            422,
            "start",
        ),
        (
            "get",
            "/stocks/AAPL/intraday",
            {"params": {"start": "2025-10-08T15:00:00Z", "end": "2025-10-08T15:00:00Z"}},
            422,
            "start",
        ),
        ("get", "/stocks/AAPL/intraday", {"params": {"start": "2025-10-08T13:30:00"}}, 422, "start"),
        ("get", "/stocks/AAPL/intraday", {"params": {"end": "yesterday"}}, 422, "end"),
        ("get", "/stocks/AAPL/intraday", {"params": {"as_of": "2025-13-45T00:00:00Z"}}, 422, "as_of"),
        (
            "get",
            "/stocks/AAPL/intraday",
            {"params": {"start": "2025-01-01T00:00:00Z", "end": "2025-10-01T00:00:00Z"}},
            422,
            "end",
        ),
        ("get", "/stocks/AAPL/history", {"params": {"period": "forever"}}, 422, "period"),
        ("get", "/stocks/AAPL/history", {"params": {"period": "0d"}}, 422, "period"),
        ("get", "/stocks/AAPL/history", {"params": {"interval": "7m"}}, 422, "interval"),
        ("post", "/stocks/batch", {"json": {"symbols": []}}, 422, "symbols"),
        ("post", "/stocks/batch", {"json": {"symbols": [f"S{i}" for i in range(1001)]}}, 422, "symbols"),
        ("post", "/stocks/batch", {"json": {"tickers": ["AAPL"]}}, 422, None),
        (
            "post",
            "/stocks/batch",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        ("post", "/stocks/batch", {"json": {"symbols": ["AAPL; DROP TABLE"]}}, 422, "symbols[0]"),
        ("get", "/ops/cursor/AAPL/9m/auto", {}, 422, "interval"),
        # Sources are an enum (auto or a provider name); a known source without a cursor is 404.
        ("get", "/ops/cursor/AAPL/1m/nobody", {}, 422, "source"),
        ("get", "/ops/cursor/AAPL/1m/yahoo", {}, 404, None),
        ("get", "/no/such/route", {}, 404, None),
    ],
)
async def test_bad_input_gets_problem_json(api, method, path, kwargs, status, field) -> None:
    client, _ = api
    r = await getattr(client, method)(path, **kwargs)
    assert_problem(r, status, field)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {
                "symbol": "AAPL",
                "interval": "1m",
                "start": "2025-10-08T15:00:00Z",
                "end": "2025-10-08T14:00:00Z",
            },
            422,
            "start",
        ),
        (
            {
                "symbol": "AAPL",
                "interval": "1m",
                "start": "2024-01-01T00:00:00Z",
                "end": "2025-10-08T14:00:00Z",
            },
            422,
            "end",
        ),
        (
            {
                "symbol": "AAPL",
                "interval": "3m",
                "start": "2025-10-08T13:00:00Z",
                "end": "2025-10-08T14:00:00Z",
            },
            422,
            "interval",
        ),
        (
            {
                "symbol": "NOPE",
                "interval": "1m",
                "start": "2025-10-08T13:00:00Z",
                "end": "2025-10-08T14:00:00Z",
            },
            422,
            "symbol",
        ),
        ({"symbol": "AAPL", "start": "2025-10-08T13:00:00Z"}, 422, "end"),
        (
            {"symbol": "AAPL", "interval": "1m", "start": "2025-10-08T13:00", "end": "2025-10-08T14:00:00Z"},
            422,
            "start",
        ),
        (
            {
                "symbol": "AAPL",
                "start": "2025-10-08T13:00:00Z",
                "end": "2025-10-08T14:00:00Z",
                "priority": "T7",
            },
            422,
            "priority",
        ),
    ],
)
async def test_ops_backfill_validation(api, body, status, field) -> None:
    client, _ = api
    assert_problem(await client.post("/ops/backfill", json=body), status, field)


async def test_service_endpoints(api) -> None:
    client, _ = api
    root = (await client.get("/")).json()
    assert root["service"] == "mds" and "demo" in root["mode"]
    health = await client.get("/health")
    assert health.status_code == 200 and health.json()["checks"]["store"] == "ok"
    stats = (await client.get("/stats/providers")).json()
    assert {p["provider"] for p in stats["providers"]} == {"sim", "sim_backup"}
    assert stats["policies"]["bars_1m"] == ["sim", "sim_backup"]
    cadence = (await client.get("/stats/cadence")).json()
    assert cadence["tiers"]["T0"]["symbols"] == 10 and cadence["tiers"]["T0"]["cadence"]["bars_1m"] == 60
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    for name in (
        "provider_selected_total",
        "circuit_state",
        "jobs_processed_total",
        "gaps_found_total",
        "write_batch_ms",
        "ingestion_lag_seconds",
        "provider_latency_ms",
        "provider_errors_total",
    ):
        assert f"# TYPE {name}" in metrics.text


async def test_status_of_stored_provisional_bar_is_served(api) -> None:
    client, rt = api
    t = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
    [bar] = ground_truth("AAPL", Interval.M1, t, t + timedelta(minutes=1))
    await rt.store.write_bars([bar.with_(status=BarStatus.PROVISIONAL)], as_of=t)
    r = await client.get(
        "/stocks/AAPL/intraday",
        params={"start": t.isoformat(), "end": (t + timedelta(minutes=1)).isoformat()},
    )
    assert r.json()["bars"][0]["status"] == "provisional"


async def test_coverage_counts_stored_missing_and_confirmed_empty_apart(api) -> None:
    client, rt = api
    # Two minutes of MSFT confirmed as "no trades" by two providers.
    t = [int((OPEN + timedelta(minutes=m)).timestamp()) for m in (0, 1)]
    for provider in ("sim", "sim_backup"):
        await rt.store.record_empty_evidence(
            "MSFT", Interval.M1, t, provider, now=NOW, needed_answers=2, needed_providers=2
        )
    body = (await client.get("/ops/coverage")).json()
    assert body["start"] == "2025-10-08T13:30:00Z"
    t0 = body["tiers"]["T0"]
    assert t0["symbols"] == 10 and t0["expected_bars"] == 10 * 90
    assert t0["stored_bars"] == 90  # AAPL's session so far
    assert t0["confirmed_empty_bars"] == 2
    assert t0["missing_bars"] == 10 * 90 - 90 - 2
    assert t0["symbols_complete"] == 1
    bad = await client.get("/ops/coverage", params={"interval": "5m"})
    assert_problem(bad, 422, "interval")
