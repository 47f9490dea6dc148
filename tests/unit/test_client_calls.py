"""The client's requests, frames and errors, over httpx.MockTransport serving bodies built
by the server's own serialisers (mds.serialize.bars_document, the problem handler's shape)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import orjson
import pandas as pd
import polars as pl
import pytest

from mds.client import (
    AsyncClient,
    AuthError,
    Client,
    InvalidRequest,
    MDSError,
    NotFound,
    RateLimited,
    ServerError,
)
from mds.client.calls import as_date, as_date_or_time, as_time
from mds.client.errors import problem_error
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.serialize import bars_document
from tests.helpers import utc

KEY = "mds_secret_key_never_shown"
START = utc(2025, 9, 1)
END = utc(2025, 10, 1)
BARS = ground_truth("AAPL", Interval.D1, START, END)


class Recorder:
    """A MockTransport handler: answers ``body`` and keeps every request it saw."""

    def __init__(self, status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        ctype = "application/problem+json" if self.status >= 400 else "application/json"
        return httpx.Response(self.status, content=self.body, headers={"content-type": ctype, **self.headers})


def bars_body() -> bytes:
    return bars_document("AAPL", "1d", START, END, None, BARS)


def problem(status: int, title: str, detail: str, **extra: object) -> bytes:
    return orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra})


def client(handler: Recorder) -> Client:
    return Client("http://mds.test/", api_key=KEY, transport=httpx.MockTransport(handler))


def test_history_sends_the_parameters_the_server_reads_and_the_key_as_a_bearer_header() -> None:
    rec = Recorder(body=bars_body())
    with client(rec) as mds:
        mds.history(
            "brk.b",
            start=datetime(2025, 9, 1, 9, 30, tzinfo=timezone(timedelta(hours=-4))),
            end=date(2025, 10, 1),
            adjust="split",
            as_of="2025-10-02T00:00:00Z",
            date=date(2025, 9, 30),
        )
    (req,) = rec.requests
    assert req.url.path == "/stocks/brk.b/history"
    assert dict(req.url.params) == {
        "start": "2025-09-01T13:30:00Z",
        "end": "2025-10-01T00:00:00Z",
        "interval": "1d",
        "adjust": "split",
        "as_of": "2025-10-02T00:00:00Z",
        "date": "2025-09-30",
    }
    assert req.headers["authorization"] == f"Bearer {KEY}"


def test_a_symbol_is_one_path_segment_and_unset_parameters_are_not_sent() -> None:
    rec = Recorder(body=bars_body())
    with client(rec) as mds:
        mds.intraday("^GSPC", interval="5m", adjust=None)
    assert rec.requests[0].url.raw_path == b"/stocks/%5EGSPC/intraday?interval=5m"


def test_times_without_a_zone_are_refused_before_anything_is_sent() -> None:
    rec = Recorder(body=bars_body())
    with client(rec) as mds, pytest.raises(ValueError, match="start:.*no time zone"):
        mds.history("AAPL", start=datetime(2025, 9, 1))
    assert rec.requests == []
    assert as_time("t", date(2025, 1, 2)) == "2025-01-02T00:00:00Z"
    assert as_date("d", datetime(2025, 1, 2, 23, tzinfo=timezone(timedelta(hours=-5)))) == "2025-01-03"
    assert as_date_or_time("as_of", date(2025, 1, 2)) == "2025-01-02"
    assert as_date_or_time("as_of", utc(2025, 1, 2, 16)) == "2025-01-02T16:00:00Z"


def test_the_other_endpoints_paths_and_parameters() -> None:
    rec = Recorder(body=b'{"symbol": "AAPL", "as_of": "2025-10-01", "reasons": {}}')
    with client(rec) as mds:
        mds.ta("AAPL", date=date(2025, 9, 30), as_of=date(2025, 10, 1))
    assert rec.requests[-1].url.path == "/api/v1/market/ta"
    assert dict(rec.requests[-1].url.params) == {
        "symbol": "AAPL",
        "date": "2025-09-30",
        "as_of": "2025-10-01",
    }

    rec = Recorder(body=b'{"factor_key": "DGS10", "observations": []}')
    with client(rec) as mds:
        mds.macro("DGS10", start=date(2025, 1, 1), as_of="2025-06-01")
        with pytest.raises(ValueError, match="need a factor"):
            mds.macro(start=date(2025, 1, 1))
    assert rec.requests[-1].url.path == "/factors/macro/DGS10/history"
    assert dict(rec.requests[-1].url.params) == {"start": "2025-01-01", "as_of": "2025-06-01"}

    rec = Recorder(body=b'{"symbol": "SPY", "contracts": []}')
    with client(rec) as mds:
        mds.options_chain("SPY", expiration=date(2025, 12, 19))
    assert rec.requests[-1].url.path == "/options/SPY/chain"
    assert dict(rec.requests[-1].url.params) == {"expiration": "2025-12-19"}

    rec = Recorder(body=b'{"symbol": "AAPL", "gaps": []}')
    with client(rec) as mds:
        mds.coverage("AAPL")
    assert rec.requests[-1].url.path == "/api/v1/market-data/coverage/AAPL"


def test_bars_become_a_frame_indexed_by_utc_ts_equal_to_the_bars() -> None:
    with client(Recorder(body=bars_body())) as mds:
        df = mds.history("AAPL", period="1mo")
    assert isinstance(df, pd.DataFrame)
    assert df.index.name == "ts" and str(df.index.tz) == "UTC"
    assert list(df.index.to_pydatetime()) == [b.ts for b in BARS]
    assert df["close"].tolist() == [b.close for b in BARS]
    assert df["volume"].tolist() == [b.volume for b in BARS]
    assert set(df["status"]) == {"final"} and df["adjusted"].tolist() == [False] * len(BARS)
    # Every member of the answer but the bars (the server may add more, e.g. its adjustment).
    body = orjson.loads(bars_body())
    assert df.attrs == {k: v for k, v in body.items() if k != "bars"}
    assert df.attrs["symbol"] == "AAPL" and df.attrs["start"] == "2025-09-01T00:00:00Z"


def test_an_empty_answer_is_an_empty_frame_with_the_same_columns_and_index_type() -> None:
    body = bars_document("AAPL", "1m", START, END, None, [])
    with client(Recorder(body=body)) as mds:
        df = mds.intraday("AAPL")
    assert len(df) == 0 and df.index.name == "ts" and str(df.index.dtype).endswith("UTC]")
    assert {"open", "close", "as_of", "provider"} <= set(df.columns)


def test_polars_frames_carry_the_index_as_the_first_column() -> None:
    with client(Recorder(body=bars_body())) as mds:
        df = mds.history("AAPL", frame="polars")
    assert isinstance(df, pl.DataFrame)
    assert df.columns[0] == "ts" and df.schema["ts"] == pl.Datetime("us", "UTC")
    assert df["close"].to_list() == [b.close for b in BARS]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, NotFound),
        (422, InvalidRequest),
        (401, AuthError),
        (403, AuthError),
        (503, ServerError),
        (500, ServerError),
        (409, MDSError),
    ],
)
def test_problem_answers_raise_typed_errors_with_the_problem_fields(status: int, cls: type[MDSError]) -> None:
    body = problem(
        status,
        "Some title",
        "period: 'xx' is wrong",
        field="period",
        errors=[{"field": "period", "message": "wrong"}],
        kind="symbol",
    )
    with client(Recorder(status, body)) as mds, pytest.raises(cls) as caught:
        mds.history("AAPL", period="xx")
    err = caught.value
    assert type(err) is cls
    assert (err.status, err.title, err.detail, err.type) == (
        status,
        "Some title",
        "period: 'xx' is wrong",
        "about:blank",
    )
    assert err.field == "period" and err.errors == [{"field": "period", "message": "wrong"}]
    assert err.body["kind"] == "symbol"
    assert KEY not in str(err) and KEY not in repr(err)


def test_a_429_carries_retry_after_and_a_non_problem_body_still_raises() -> None:
    limited = Recorder(429, problem(429, "Too many", "slow down"), {"Retry-After": "7"})
    with client(limited) as mds, pytest.raises(RateLimited) as caught:
        mds.macro()
    assert caught.value.retry_after == 7.0
    err = problem_error(502, {}, b"<html>Bad Gateway</html>")
    assert isinstance(err, ServerError) and err.title == "Bad Gateway" and "Bad Gateway" in err.detail


def test_the_key_is_not_in_the_clients_repr() -> None:
    mds = Client("http://mds.test", api_key=KEY)
    assert KEY not in repr(mds)
    mds.close()


async def test_the_async_client_builds_the_same_request_and_frame() -> None:
    rec = Recorder(body=bars_body())
    async with AsyncClient("http://mds.test", api_key=KEY, transport=httpx.MockTransport(rec)) as mds:
        df = await mds.history("AAPL", period="1mo", as_of=utc(2025, 10, 2))
    assert dict(rec.requests[0].url.params) == {
        "period": "1mo",
        "interval": "1d",
        "adjust": "raw",
        "as_of": "2025-10-02T00:00:00Z",
    }
    assert df["close"].tolist() == [b.close for b in BARS] and df.index.tz == UTC
