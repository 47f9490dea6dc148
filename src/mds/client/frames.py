"""JSON answers → DataFrames: pandas by default, polars with ``frame="polars"``.

Each answer has one natural index:

| method | index | rows |
|---|---|---|
| ``history``, ``intraday`` | ``ts``: tz-aware UTC open time of the bar | bars, oldest first |
| ``ta`` | ``symbol`` | one: the snapshot, nested objects flattened (``ma_alignment.bullish_stack``) |
| ``coverage()`` | ``symbol`` | tracked symbols holding daily bars, ``last`` daily bar (UTC) |
| ``coverage(symbol)`` | ``start`` (UTC) | runs of missing daily bars (``end``, ``missing_bars``) |
| ``macro()`` | ``factor_key`` | one per factor: latest value, changes, z-score |
| ``macro(factor)`` | ``date`` (observation date, no zone) | observations, oldest first |
| ``options_chain`` | ``contract`` (OCC symbol) | contracts by expiration, strike, call before put |

Everything else the answer says (range, ``as_of``, the chain's spot and rate, coverage's SLA)
is kept in ``frame.attrs`` (pandas) as the JSON values. Polars has no index: the index is the
first column, and the answer's other members are not kept (polars frames carry no attrs).

pandas is a dependency of MDS; polars (and pyarrow, which pandas → polars goes through) come
with the ``client`` extra and are imported only when ``frame="polars"`` is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

FrameKind = Literal["pandas", "polars"]
#: ``pandas.DataFrame``, or ``polars.DataFrame`` with ``frame="polars"``. ``Any`` so that
#: neither library has to be imported to name the type.
Frame = Any

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "provider", "status", "as_of", "adjusted")


def raw(body: Any) -> Any:
    return body


def bars(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """A BarsOut answer: index ``ts`` (UTC), the bar columns, ``as_of`` as UTC times."""
    return _frame(
        body.get("bars") or [],
        index="ts",
        columns=BAR_COLUMNS,
        times=("ts", "as_of"),
        attrs=_rest(body, "bars"),
        kind=kind,
    )


def snapshot(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """A technical snapshot as one row indexed by ``symbol``; nested objects become dotted columns."""
    flat = pd.json_normalize(dict(body), sep=".", max_level=1)
    times = [c for c in ("computed_at",) if c in flat.columns]
    for c in times:
        flat[c] = _utc(flat[c])
    df = flat.set_index("symbol")
    df.attrs = {k: body[k] for k in ("reasons", "source") if k in body}
    return _to(df, kind)


def coverage(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """The tracked set's coverage: one row per symbol holding daily bars, ``last`` (UTC)."""
    daily = body.get("daily") or {}
    rows = [{"symbol": s, "last": ts} for s, ts in (daily.get("last") or {}).items()]
    attrs = _rest(body)
    attrs["daily"] = _rest(daily, "last")
    return _frame(rows, index="symbol", columns=("last",), times=("last",), attrs=attrs, kind=kind)


def symbol_coverage(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """One symbol's runs of missing daily bars, indexed by ``start`` (UTC)."""
    return _frame(
        body.get("gaps") or [],
        index="start",
        columns=("end", "missing_bars"),
        times=("start", "end"),
        attrs=_rest(body, "gaps"),
        kind=kind,
    )


def macro_snapshot(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """Every factor's latest value, indexed by ``factor_key``."""
    rows = list((body.get("factors") or {}).values())
    return _frame(
        rows,
        index="factor_key",
        columns=("value", "date", "realtime_start", "source"),
        dates=("date", "realtime_start"),
        attrs=_rest(body, "factors"),
        kind=kind,
    )


def macro_history(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """A factor's observations, indexed by observation ``date`` (a day, so no zone)."""
    return _frame(
        body.get("observations") or [],
        index="date",
        columns=("value", "realtime_start", "as_of", "source"),
        times=("as_of",),
        dates=("date", "realtime_start"),
        attrs=_rest(body, "observations"),
        kind=kind,
    )


def chain(body: Mapping[str, Any], kind: FrameKind) -> Frame:
    """An option chain's contracts, indexed by OCC ``contract``; the header goes to attrs."""
    return _frame(
        body.get("contracts") or [],
        index="contract",
        columns=("type", "strike", "expiration", "bid", "ask", "mid", "iv", "delta", "quote_time"),
        times=("quote_time",),
        dates=("expiration",),
        attrs=_rest(body, "contracts"),
        kind=kind,
    )


def _rest(body: Mapping[str, Any], *without: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in without}


def _frame(
    rows: Sequence[Mapping[str, Any]],
    *,
    index: str,
    columns: Sequence[str],
    times: Iterable[str] = (),
    dates: Iterable[str] = (),
    attrs: dict[str, Any],
    kind: FrameKind,
) -> Frame:
    """Rows → frame; ``columns`` are there even when ``rows`` is empty (others the server adds
    are kept), ``times`` become UTC datetimes, ``dates`` zone-less ones, ``index`` the index."""
    df = pd.DataFrame.from_records(list(rows)) if rows else pd.DataFrame(columns=[index, *columns])
    for c in columns:
        if c not in df.columns:
            df[c] = None
    for c in times:
        df[c] = _utc(df[c])
    for c in dates:
        df[c] = pd.to_datetime(df[c], format="ISO8601")
    df = df.set_index(index)
    df.attrs = attrs
    return _to(df, kind)


def _utc(values: Any) -> Any:
    # ISO8601: MDS writes whole seconds without a fraction and others with microseconds.
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _to(df: pd.DataFrame, kind: FrameKind) -> Frame:
    if kind == "pandas":
        return df
    if kind == "polars":
        try:
            import polars as pl
        except ImportError:
            raise ImportError('frame="polars" needs polars: pip install "mds[client]"') from None
        return pl.from_pandas(df.reset_index())
    raise ValueError(f"frame: {kind!r} is not 'pandas' or 'polars'")
