"""The contract every HTTP vendor adapter keeps, run over the vendor table in ``cases.py``.

Most tests hand fixture bytes straight to the adapter's ``parse_bars`` (no network, as in
OpenBB's ``Fetcher`` tests); a few run ``fetch_bars`` through ``httpx.MockTransport`` to
cover the HTTP layer: status codes, transport failures and the key kept out of errors.
"""

from __future__ import annotations

import secrets
import traceback
from dataclasses import replace
from datetime import date

import httpx
import pytest

from mds.config import load_settings
from mds.domain.models import Bar, Interval
from mds.errors import BadPayload, NoData, ProviderError, Unavailable
from mds.providers.base import validate_bars
from mds.providers.http import HttpProvider
from mds.providers.ratelimit import RateLimiter
from tests.contract.vendors.cases import CASES, GARBAGE, Answer, Bars, VendorCase
from tests.contract.vendors.harness import CALENDAR, KEY, KEYS, SECRET, Answering, Canned, vendor
from tests.helpers import utc

SYMBOL = "AAPL"
EACH_VENDOR = pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)


_ADAPTERS: dict[type[HttpProvider], HttpProvider] = {}


def adapter(cls: type[HttpProvider]) -> HttpProvider:
    """One adapter per vendor for the pure tests (parsing keeps no state)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = vendor(cls)
    return _ADAPTERS[cls]


def parse(case: VendorCase, body: bytes, asked: Bars) -> list[Bar]:
    """What ``fetch_bars`` makes of one answered body: parse, keep the range asked, validate."""
    p = adapter(case.cls)
    kw = {"symbol": SYMBOL, "interval": asked.interval, "start": asked.start, "end": asked.end}
    page = p.parse_bars(body, **kw)  # type: ignore[arg-type]
    kept = [b for b in page.items if asked.start <= b.ts < asked.end]
    return validate_bars(p.name, kept, **kw)  # type: ignore[arg-type]


async def fetch(case: VendorCase, server: Answering, asked: Bars) -> list[Bar]:
    async with server.client() as client:
        p = vendor(case.cls, client=client)
        return await p.fetch_bars(SYMBOL, asked.interval, asked.start, asked.end)


# -- bars from fixtures ----------------------------------------------------------------


@EACH_VENDOR
@pytest.mark.parametrize("session", ["first-edt", "last-est", "early-close", "daily"])
def test_session_bars(case: VendorCase, session: str) -> None:
    """First EDT session (09:30 ET = 13:30Z), last EST one (14:30Z), the early close, and
    daily stamps (midnight UTC, midnight ET, a bare date) that all become the session open."""
    asked = case.sessions[session]
    bars = parse(case, case.body(asked.fixture), asked)
    assert [b.ts for b in bars] == list(asked.ts)
    for i, values in asked.values.items():
        assert bars[i].values() == values
    assert {(b.symbol, b.interval, b.provider, b.adjusted) for b in bars} == {
        (SYMBOL, asked.interval, case.name, case.adjusted)
    }


@EACH_VENDOR
def test_early_close_ends_at_1300_et(case: VendorCase) -> None:
    asked = case.early_close
    bars = parse(case, case.body(asked.fixture), asked)
    session = CALENDAR.session_on(date(2025, 11, 28))
    assert session is not None and session.close == utc(2025, 11, 28, 18)
    assert all(CALENDAR.bar_end(b.ts, b.interval) <= session.close for b in bars)
    if asked.interval is not Interval.D1:
        assert CALENDAR.bar_end(bars[-1].ts, asked.interval) == session.close


@EACH_VENDOR
def test_empty_answer(case: VendorCase) -> None:
    asked = case.empty
    if case.empty_is_no_data:
        with pytest.raises(NoData):
            parse(case, case.body(asked.fixture), asked)
    else:
        assert parse(case, case.body(asked.fixture), asked) == []


@EACH_VENDOR
def test_high_below_low_is_bad_payload(case: VendorCase) -> None:
    with pytest.raises(BadPayload, match="high .* < low"):
        parse(case, case.body(case.high_below_low), case.first_edt)


@pytest.mark.parametrize(
    ("case", "body"),
    [(case, body) for case in CASES for body in (*GARBAGE, *case.malformed)],
    ids=lambda v: v.name if isinstance(v, VendorCase) else repr(v[:24]),
)
def test_malformed_is_bad_payload(case: VendorCase, body: bytes) -> None:
    with pytest.raises(BadPayload) as info:
        parse(case, body, case.first_edt)
    assert info.value.provider == case.name and KEY not in str(info.value)


# -- over HTTP -------------------------------------------------------------------------


@EACH_VENDOR
async def test_fetch_gives_the_parsed_bars(case: VendorCase) -> None:
    asked = case.first_edt
    body = case.body(asked.fixture)
    server = Answering(Canned(200, body))
    bars = await fetch(case, server, asked)
    assert bars and bars == parse(case, body, asked)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("case", "answer"),
    [(case, answer) for case in CASES for answer in case.answers],
    ids=lambda v: v.name if isinstance(v, VendorCase) else f"{v.status}-{v.error.__name__}",
)
async def test_error_answers_raise_typed_errors_without_the_key(case: VendorCase, answer: Answer) -> None:
    server = Answering(Canned(answer.status, answer.body, answer.headers))
    with pytest.raises(ProviderError) as info:
        await fetch(case, server, case.first_edt)
    err = info.value
    assert type(err) is answer.error, err
    assert err.provider == case.name
    assert KEY not in str(err) and SECRET not in str(err)
    if answer.retry_after is not None:
        assert err.retry_after == answer.retry_after  # type: ignore[attr-defined]
    if answer.code is not None:
        assert err.code == answer.code


@pytest.mark.parametrize(
    ("case", "answer"),
    [(case, answer) for case in CASES for answer in case.answers],
    ids=lambda v: v.name if isinstance(v, VendorCase) else f"{v.status}-{v.error.__name__}",
)
async def test_a_body_echoing_the_bare_key_does_not_leak_it(case: VendorCase, answer: Answer) -> None:
    # Vendors quote what they were sent ("Invalid API key: test-key"); redacting
    # key=value pairs is not enough, the configured secrets themselves are hidden.
    secrets = list(KEYS[case.name].values())
    echo = f"{answer.body.decode(errors='replace')} you sent {' / '.join(secrets)}".encode()
    server = Answering(Canned(answer.status, echo, answer.headers))
    with pytest.raises(ProviderError) as info:
        await fetch(case, server, case.first_edt)
    for secret in secrets:
        assert secret not in str(info.value) and secret not in info.value.message


@pytest.mark.parametrize("case", [c for c in CASES if KEYS[c.name]], ids=lambda c: c.name)
def test_malformed_body_echoing_the_key_does_not_leak_it(case: VendorCase) -> None:
    secrets = list(KEYS[case.name].values())
    with pytest.raises(BadPayload) as info:
        parse(case, b'{"error": "bad request for key ' + secrets[0].encode() + b'"', case.first_edt)
    assert all(secret not in str(info.value) for secret in secrets)


def _raised_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or while handling."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.mark.parametrize(
    ("case", "status"),
    [(case, status) for case in CASES if KEYS[case.name] for status in (401, 500)],
    ids=lambda v: v.name if isinstance(v, VendorCase) else str(v),
)
async def test_no_part_of_a_key_quoted_back_survives_in_the_error(case: VendorCase, status: int) -> None:
    # Long random keys, quoted back by the vendor whole, or cut by the adapter's length
    # limits on quoted bodies (120, 200, 300 characters) halfway through. Nothing of them
    # may show in what a log or a caller sees: str, repr, a formatted traceback, or any
    # exception in the chain behind the error.
    keys = {setting: f"{setting[:3].lower()}{secrets.token_hex(14)}" for setting in KEYS[case.name]}
    settings = load_settings({**keys, f"{case.name.upper()}_BASE_URL": "http://vendor.test"})
    # A cut at a limit leaves the first 12 characters of the first key ("x" * pad + 10).
    for pad in (0, *(limit - 22 for limit in (120, 200, 300))):
        body = ("x" * pad + " you sent " + " ".join(keys.values())).encode()
        server = Answering(Canned(status, body))
        async with server.client() as client:
            p = case.cls(settings=settings, calendar=CALENDAR, limiter=RateLimiter(), client=client)
            with pytest.raises(ProviderError) as info:
                await p.fetch_bars(SYMBOL, case.first_edt.interval, case.first_edt.start, case.first_edt.end)
        shown = [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
        shown += [f"{e!s} {e!r}" for e in _raised_chain(info.value)]
        for key in keys.values():
            assert not any(key[:8] in text for text in shown), (pad, shown)


@EACH_VENDOR
def test_table_has_each_shared_status(case: VendorCase) -> None:
    statuses = {a.status for a in case.answers}
    assert {401, 403, 429} <= statuses and max(statuses) >= 500


@EACH_VENDOR
@pytest.mark.parametrize(
    ("failure", "code"),
    [(httpx.ConnectError, "connect"), (httpx.ReadTimeout, "timeout")],
    ids=["refused", "timeout"],
)
async def test_transport_failures_are_unavailable_without_the_key(
    case: VendorCase, failure: type[httpx.TransportError], code: str
) -> None:
    # Some vendors take the key as a query parameter: the URL in the message is redacted.
    server = Answering(failure("no answer"))
    with pytest.raises(Unavailable) as info:
        await fetch(case, server, case.first_edt)
    assert info.value.code == code and server.requests
    assert KEY not in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("case", [c for c in CASES if c.unsupported], ids=lambda c: c.name)
async def test_unoffered_interval_is_refused_without_a_request(case: VendorCase) -> None:
    server = Answering(Canned(200, b""))
    assert case.unsupported is not None
    with pytest.raises(NoData) as info:
        await fetch(case, server, replace(case.first_edt, interval=case.unsupported))
    assert info.value.code == "unsupported" and server.requests == []
