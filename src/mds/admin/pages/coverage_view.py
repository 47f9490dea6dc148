"""What the coverage page shows, from the coverage service's snapshot (cache or db).

The snapshot keeps only the first 50 symbols of each stale bucket (seed 004); the page's
lists are complete and paged, so each tracked symbol is bucketed here from the snapshot's
own ``last`` times, against the sessions the snapshot was measured on: the lists always
agree with the counts above them, whether the snapshot came from the cache or the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mds.calendar import MarketCalendar
from mds.services.coverage import BUCKETS, STALE_BUCKETS, FreshnessBucket, SessionMarks

#: The catalog task (and default schedule name) that refreshes the cached snapshot.
MONITOR = "monitor_coverage_health"


@dataclass(frozen=True, slots=True)
class Row:
    """One tracked symbol of a freshness list: its newest bar (ISO, None: no bar) and bucket."""

    symbol: str
    last: str | None
    bucket: FreshnessBucket


def measured_at(snap: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(snap["meta"]["updated_at"].replace("Z", "+00:00"))


def bucket_rows(
    snap: dict[str, Any], series: str, tracked: Iterable[str], calendar: MarketCalendar
) -> list[Row]:
    """Every symbol of ``tracked`` with its bucket in ``snap[series]`` (``daily`` or ``m5``),
    sorted by symbol.

    A symbol tracked since the snapshot was taken has no ``last`` in it: it reads "none"
    until the next refresh, as it would in the snapshot's own counts.
    """
    marks = SessionMarks.at(calendar, measured_at(snap))
    last: dict[str, str] = snap[series]["last"]
    rows = []
    for symbol in sorted(tracked):
        text = last.get(symbol)
        ts = None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))
        rows.append(Row(symbol, text, marks.bucket(ts)))
    return rows


def stale(rows: Iterable[Row], bucket: str = "") -> list[Row]:
    """The rows of a stale bucket (``>48h``, ``none``, ``24-48h``), or of all three when
    ``bucket`` is empty, worst bucket first."""
    wanted = (bucket,) if bucket in BUCKETS else STALE_BUCKETS
    order = {b: i for i, b in enumerate(STALE_BUCKETS)}
    return sorted(
        (r for r in rows if r.bucket in wanted and r.bucket != "<=24h"), key=lambda r: order[r.bucket]
    )


def missing_5m(rows: Iterable[Row]) -> list[Row]:
    """Tracked symbols without a 5m (or 1m) bar of the last closed session: what the SLA's
    ``m5_previous_session`` check counts."""
    return [r for r in rows if r.bucket != "<=24h"]


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"
