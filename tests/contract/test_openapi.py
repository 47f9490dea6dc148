"""The OpenAPI document says exactly what the API does, and the docs pages work offline.

Static checks over ``create_app(...).openapi()`` (no runtime, no sockets): every operation
declares a real 2xx schema, every error is problem+json, interval/tier/source are enums,
period/range and times are patterns that agree with the code that parses them. Then, over
ASGI: every path answers an undeclared method with 405 and an exact ``Allow``, and
``/docs`` and ``/redoc`` load nothing from another host.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mds.analysis.service import _RANGE
from mds.api.app import create_app
from mds.api.params import (
    DATE_OR_TIME_PATTERN,
    PERIOD_PATTERN,
    SOURCES,
    TIME_PATTERN,
    CoverageInterval,
    IntradayInterval,
    parse_ts,
)
from mds.api.problems import PROBLEM
from mds.calendar import MarketCalendar
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.errors import InvalidRequest
from mds.providers.registry import SIM_PREFIXES, VENDORS
from mds.services.market import MarketService

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
ALL_INTERVALS = {i.value for i in Interval}
INTRADAY = {"1m", "5m", "15m", "1h"}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS")
#: The one documented exception to "errors are problem+json": a probe's 503 is the health
#: document itself (its ``status`` is "degraded"), what load balancers and Kubernetes read.
NOT_PROBLEMS = {("get", "/health", "503")}


def _unused_runtime() -> Any:
    raise AssertionError("the OpenAPI document and routing need no runtime")


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(_unused_runtime)


@pytest.fixture(scope="module")
def doc(app: Any) -> dict[str, Any]:
    document: dict[str, Any] = app.openapi()
    return document


def deref(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (if any) replaced by the component, and nullability unwrapped."""
    if "$ref" in schema:
        schema = {**doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]}
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return deref(doc, options[0])
    return schema


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def param(op: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in op.get("parameters", []) if p["name"] == name), None)


def test_the_document_covers_every_route(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert len(ops) >= 24
    ids = [op.get("operationId") for _, _, op in ops]
    assert all(ids) and len(set(ids)) == len(ids), "operationIds name the client's methods"


#: JSON answers that are arrays by contract: seed 004's schedule export is the array
#: `POST /api/v1/admin/schedules/import` takes back, a file kept in version control.
ARRAY_ANSWERS = {("get", "/api/v1/admin/schedules/export")}


def test_every_operation_declares_a_real_success_schema(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert ok, f"{method} {path} declares no 2xx"
        for status, response in ok.items():
            content = response.get("content")
            assert content, f"{method} {path} {status} has no content"
            for media_type, body in content.items():
                schema = deref(doc, body.get("schema", {}))
                assert schema and schema != {}, f"{method} {path} {status} {media_type}: any-schema"
                assert "type" in schema or "properties" in schema or "enum" in schema, (method, path, schema)
                if media_type == "application/json" and (method, path) not in ARRAY_ANSWERS:
                    assert schema.get("type") == "object" and schema.get("properties"), (method, path)


def test_every_model_field_is_described(doc: dict[str, Any]) -> None:
    for name, schema in doc["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_every_error_answer_is_problem_json(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"title", "status", "detail"}
    assert problem.get("additionalProperties") is True, "extension members (kind, key, ...) are allowed"
    assert {"type", "title", "status", "detail", "field", "errors"} <= set(problem["properties"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
        assert "500" in errors, f"{method} {path} does not declare 500"
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in errors, f"{method} {path} takes input but declares no 422"
        for status, response in errors.items():
            if (method, path, status) in NOT_PROBLEMS:
                continue
            assert list(response["content"]) == [PROBLEM], (method, path, status)
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_guarded_routes_declare_their_refusals(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        if path.startswith(("/ops", "/api/v1/market-data/admin")):
            assert {"401", "403", "429"} <= set(op["responses"]), (method, path)


@pytest.mark.parametrize(
    ("method", "path", "name", "values"),
    [
        ("get", "/stocks/{symbol}/intraday", "interval", INTRADAY),
        ("get", "/stocks/{symbol}/history", "interval", ALL_INTERVALS),
        ("get", "/api/v1/market/prices", "interval", ALL_INTERVALS),
        ("get", "/ops/coverage", "interval", {"1m", "1d"}),
        ("get", "/ops/cursor/{symbol}/{interval}/{source}", "interval", ALL_INTERVALS),
        ("get", "/ops/cursor/{symbol}/{interval}/{source}", "source", {"auto", *SIM_PREFIXES, *VENDORS}),
        ("get", "/ops/dlq/backfills", "tier", {"T0", "T1", "T2"}),
        ("post", "/ops/dlq/backfills/requeue-all", "tier", {"T0", "T1", "T2"}),
    ],
)
def test_enumerated_parameters(
    doc: dict[str, Any], method: str, path: str, name: str, values: set[str]
) -> None:
    spec = param(doc["paths"][path][method], name)
    assert spec is not None
    assert set(deref(doc, spec["schema"])["enum"]) == values


def test_body_enums(doc: dict[str, Any]) -> None:
    body = doc["components"]["schemas"]["BackfillIn"]["properties"]
    assert set(deref(doc, body["interval"])["enum"]) == ALL_INTERVALS
    assert set(deref(doc, body["priority"])["enum"]) == {t.value for t in Tier}
    assert body["start"]["pattern"] == body["end"]["pattern"] == TIME_PATTERN


def test_interval_subsets_are_intervals() -> None:
    assert set(IntradayInterval.__args__) == INTRADAY <= ALL_INTERVALS
    assert set(CoverageInterval.__args__) == {"1m", "1d"}
    assert set(SOURCES) == {"auto", *SIM_PREFIXES, *VENDORS}


@pytest.mark.parametrize(
    ("path", "name", "pattern"),
    [
        ("/stocks/{symbol}/history", "period", PERIOD_PATTERN),
        ("/api/v1/market/prices", "range", PERIOD_PATTERN),
        ("/stocks/{symbol}/intraday", "start", TIME_PATTERN),
        ("/stocks/{symbol}/intraday", "end", TIME_PATTERN),
        ("/stocks/{symbol}/intraday", "as_of", TIME_PATTERN),
        ("/ops/coverage", "start", TIME_PATTERN),
        ("/ops/coverage", "end", TIME_PATTERN),
        ("/api/v1/market/ta", "as_of", DATE_OR_TIME_PATTERN),
    ],
)
def test_patterned_parameters(doc: dict[str, Any], path: str, name: str, pattern: str) -> None:
    spec = param(doc["paths"][path]["get"], name)
    assert spec is not None and deref(doc, spec["schema"])["pattern"] == pattern


def test_bounded_integers(doc: dict[str, Any]) -> None:
    limit = deref(doc, param(doc["paths"]["/ops/dlq/backfills"]["get"], "limit")["schema"])  # type: ignore[index]
    assert (limit["minimum"], limit["maximum"]) == (1, 1000)
    job = deref(doc, param(doc["paths"]["/ops/dlq/backfills/requeue/{job_id}"]["post"], "job_id")["schema"])  # type: ignore[index]
    assert job["minimum"] == 1 and job["maximum"] == 2**63 - 1


# ---------------------------------------------------------------- patterns vs parsers
def _period_ok(market: MarketService, text: str) -> bool:
    try:
        market.period_start(text, NOW)
    except (InvalidRequest, ValueError, OverflowError):
        return False
    return True


def test_period_pattern_agrees_with_the_services() -> None:
    market = MarketService(store=object(), calendar=MarketCalendar(), clock=ManualClock(NOW))  # type: ignore[arg-type]
    pattern = re.compile(PERIOD_PATTERN)
    ns = [0, 1, 2, 5, 9, 10, 31, 99, 100, 250, 999, 1000, 2024, 2026, 5000, 9999, 10000]
    canonical = [f"{n}{u}" for n in ns for u in ("d", "wk", "mo", "y")] + ["ytd", "max"]
    for text in canonical:
        n = int(text[:-1] if text[-1] in "dy" else text[:-2]) if text[0].isdigit() else 1
        within = n <= (999 if text.endswith("y") and text != "ytd" else 9999)
        # Within its bounds (Ny beyond 999 would start before year 1 as years pass), the
        # pattern admits exactly what the market and analysis services accept.
        if within:
            assert bool(pattern.match(text)) == _period_ok(market, text), text
        else:
            assert not pattern.match(text), text
        if pattern.match(text):
            assert _RANGE.match(text), text
    for text in ["", "1", "d", "01d", "1MO", " 1mo", "1w", "1m", "-1d", "1.5d", "YTD", "maximum"]:
        assert not pattern.match(text), f"{text!r}: only the canonical spelling is accepted"


@settings(max_examples=300, deadline=None)
@given(st.from_regex(TIME_PATTERN, fullmatch=True))
def test_every_time_the_pattern_admits_parses(text: str) -> None:
    ts = parse_ts("start", text)
    assert ts is not None and ts.tzinfo is not None and 1969 <= ts.year <= 2200


@pytest.mark.parametrize(
    "text",
    [
        "2025-10-08T13:30:00",  # no zone
        "2025-02-29T00:00:00Z",  # not a leap year
        "2025-04-31T00:00:00Z",
        "2025-10-08T24:00:00Z",
        "2025-10-08T13:30:00.1234567Z",
        "20251008T133000Z",
        "1969-12-31T00:00:00Z",
        "2200-01-01T00:00:00Z",
        "2025-10-08 13:30:00Z",
        "2025-10-08T13:30:00+2400",
        "２０２５-10-08T13:30:00Z",  # full-width digits: [0-9], not \\d
    ],
)
def test_times_the_pattern_refuses_are_refused_by_parse_ts(text: str) -> None:
    assert not re.match(TIME_PATTERN, text)
    with pytest.raises(InvalidRequest):
        parse_ts("start", text)


def test_parse_ts_reads_the_encoded_and_the_unencoded_plus() -> None:
    assert parse_ts("start", "2025-02-28T09:30:00-05:00") == datetime(2025, 2, 28, 14, 30, tzinfo=UTC)
    assert parse_ts("start", "2024-02-29T09:30 05:00") == datetime(2024, 2, 29, 4, 30, tzinfo=UTC)


# ---------------------------------------------------------------- over ASGI
@pytest.fixture
async def client(app: Any) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mds") as c:
        yield c


def _concrete(path: str) -> str:
    return path.format(
        symbol="AAPL", interval="1m", source="auto", job_id=1, name="ping", run_id=1, factor_key="VIXCLS"
    )


async def test_every_path_answers_an_undeclared_method_with_405_and_allow(
    client: Any, doc: dict[str, Any]
) -> None:
    paths = {path: {m.upper() for m in ops} for path, ops in doc["paths"].items()}
    paths.update({p: {"GET"} for p in ("/docs", "/redoc", "/docs/assets/swagger-ui.css")})
    paths["/openapi.json"] = {"GET", "HEAD"}  # a plain Starlette route: it adds HEAD
    for path, declared in paths.items():
        for method in HTTP_METHODS:
            if method in declared:
                continue
            r = await client.request(method, _concrete(path))
            assert r.status_code == 405, (method, path, r.status_code)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert r.json()["status"] == 405
            # Exactly the declared methods (FastAPI serves no implicit HEAD).
            assert {m.strip() for m in r.headers["allow"].split(",")} == declared, (method, path)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_data(self, data: str) -> None:
        self.inline.append(data)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_from_mds(client: Any, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://|//[a-z]", r.text, re.I), "the page names another host"
    refs = _Refs()
    refs.feed(r.text)
    urls = set(refs.urls) | set(re.findall(r"""url:\s*['"]([^'"]+)['"]""", "".join(refs.inline)))
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts and "/openapi.json" in urls, urls
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    if page == "/docs":
        assert '"validatorUrl": null' in r.text, "Swagger UI would fetch a badge from validator.swagger.io"


async def test_only_the_listed_assets_are_served(client: Any) -> None:
    assert (await client.get("/docs/assets/README.md")).status_code == 404
    assert (await client.get("/docs/assets/..%2Fdocs.py")).status_code == 404
    js = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
