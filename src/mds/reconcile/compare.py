"""Bar-by-bar comparison of two series and who a third one sides with. Pure arithmetic.

Hand-written: no library compares vendors' bars in MDS's tick and percentage terms.

- A price agrees when ``|a - b| / TICK <= price_ticks`` (TICK = 0.01, one cent).
- A volume agrees when ``100 · |a - b| / max(|a|, |b|) <= volume_pct`` (symmetric, so it
  does not matter which side is stored; two zero volumes agree).
- A bar agrees when its four prices and its volume agree. A bar time only one side holds
  is ``missing`` (the stored side lacks it) or ``extra`` (the stored side alone has it).

:func:`judge` settles a disagreement by a third series, the referee: the side the referee
agrees with is right and the other is blamed. Without a referee, or when the referee
agrees with both or neither, nobody is blamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mds.domain.models import Bar
from mds.reconcile.records import DiffKind

#: One price tick: US equities quote in cents.
TICK = 0.01
PRICE_FIELDS = ("open", "high", "low", "close")
#: Rounding slack, so 0.03 - 0.02 counts as exactly one tick.
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Tolerance:
    price_ticks: float = 1.0
    volume_pct: float = 10.0


@dataclass(frozen=True)
class Series:
    """A bar series as arrays: ``ts`` (epoch s, ascending), ``prices`` (4 × n: open, high,
    low, close), ``volume``, and each bar's ``provider``."""

    ts: np.ndarray
    prices: np.ndarray
    volume: np.ndarray
    providers: tuple[str, ...] = ()

    @classmethod
    def of(cls, bars: Sequence[Bar]) -> Series:
        n = len(bars)
        ts = np.fromiter((int(b.ts.timestamp()) for b in bars), dtype=np.int64, count=n)
        # One (n × 5) array from the tuples' OHLCV slice: far cheaper than per-field loops.
        values = np.array([b[3:8] for b in bars], dtype=np.float64).reshape(n, 5)
        providers = [b.provider for b in bars]
        if n > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
            providers = [providers[i] for i in order.tolist()]
        return cls(ts, np.ascontiguousarray(values[:, :4].T), values[:, 4].copy(), tuple(providers))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, float, float, float, float, float, str]]) -> Series:
        """From ``(epoch s, open, high, low, close, volume, provider)`` rows in time order
        (what :meth:`~mds.storage.base.QualityStore.bar_rows` returns)."""
        n = len(rows)
        ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        values = np.array([r[1:6] for r in rows], dtype=np.float64).reshape(n, 5)
        return cls(ts, np.ascontiguousarray(values[:, :4].T), values[:, 4].copy(), tuple(r[6] for r in rows))

    def without(self, provider: str) -> Series:
        """This series less the bars of ``provider``."""
        keep = np.array([p != provider for p in self.providers], dtype=bool)
        if keep.all():
            return self
        return Series(
            self.ts[keep],
            self.prices[:, keep],
            self.volume[keep],
            tuple(p for p, k in zip(self.providers, keep.tolist(), strict=True) if k),
        )

    def drop_times(self, ts: np.ndarray) -> Series:
        """This series less the bar times ``ts``."""
        if ts.size == 0:
            return self
        keep = ~np.isin(self.ts, ts)
        return Series(
            self.ts[keep],
            self.prices[:, keep],
            self.volume[keep],
            tuple(p for p, k in zip(self.providers, keep.tolist(), strict=True) if k),
        )

    def __len__(self) -> int:
        return int(self.ts.size)

    def index(self, ts: int) -> int | None:
        """Position of bar time ``ts``, or None when the series lacks it."""
        i = int(np.searchsorted(self.ts, ts))
        return i if i < self.ts.size and int(self.ts[i]) == ts else None

    def row(self, i: int) -> tuple[float, float, float, float, float]:
        p = self.prices[:, i]
        return (float(p[0]), float(p[1]), float(p[2]), float(p[3]), float(self.volume[i]))


def price_diff_ticks(a: float, b: float) -> float:
    """``|a - b|`` in ticks, rounded to 4 places (so float noise never shows)."""
    return round(abs(a - b) / TICK, 4)


def volume_diff_pct(a: float, b: float) -> float:
    """``100 · |a - b| / max(|a|, |b|)``, rounded to 4 places; 0 when both are 0."""
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else round(100.0 * abs(a - b) / top, 4)


def values_agree(
    a: tuple[float, float, float, float, float], b: tuple[float, float, float, float, float], tol: Tolerance
) -> bool:
    """Whether two bars' (open, high, low, close, volume) agree within ``tol``."""
    prices = all(abs(x - y) / TICK <= tol.price_ticks + _EPS for x, y in zip(a[:4], b[:4], strict=True))
    return prices and volume_diff_pct(a[4], b[4]) <= tol.volume_pct + _EPS


@dataclass(frozen=True, slots=True)
class FieldDiff:
    field: str
    stored: float | None
    other: float | None
    #: Ticks for a price, percent for volume, None for a whole missing or extra bar.
    diff: float | None


@dataclass(frozen=True, slots=True)
class BarDiff:
    ts: int
    kind: DiffKind
    fields: tuple[FieldDiff, ...]
    #: The stored bar's provider; None for a bar the store lacks.
    stored_provider: str | None


@dataclass
class Comparison:
    """The outcome of :func:`compare`: counts and each differing bar time."""

    matched: int = 0
    agreeing: int = 0
    diffs: list[BarDiff] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(1 for d in self.diffs if d.kind is DiffKind.MISSING)

    @property
    def extra(self) -> int:
        return sum(1 for d in self.diffs if d.kind is DiffKind.EXTRA)


def compare(stored: Series, other: Series, tol: Tolerance) -> Comparison:
    """Compare ``stored`` with ``other`` bar by bar (vectorised; only differing bars loop)."""
    common, ia, ib = np.intersect1d(stored.ts, other.ts, assume_unique=True, return_indices=True)
    out = Comparison(matched=int(common.size))
    if common.size:
        pa, pb = stored.prices[:, ia], other.prices[:, ib]
        ticks = np.abs(pa - pb) / TICK
        va, vb = stored.volume[ia], other.volume[ib]
        top = np.maximum(np.abs(va), np.abs(vb))
        pct = np.divide(100.0 * np.abs(va - vb), top, out=np.zeros_like(top), where=top > 0)
        bad_price = ticks > tol.price_ticks + _EPS
        bad_volume = pct > tol.volume_pct + _EPS
        bad = bad_price.any(axis=0) | bad_volume
        out.agreeing = int(common.size - np.count_nonzero(bad))
        # The differing bars' figures as Python lists in one go: rounding and converting
        # numpy scalars one by one cost more than the comparison (a noisy vendor differs on
        # every bar).
        k = np.flatnonzero(bad)
        rows = zip(
            common[k].tolist(),
            ia[k].tolist(),
            pa[:, k].T.tolist(),
            pb[:, k].T.tolist(),
            np.round(ticks[:, k], 4).T.tolist(),
            bad_price[:, k].T.tolist(),
            va[k].tolist(),
            vb[k].tolist(),
            np.round(pct[k], 4).tolist(),
            bad_volume[k].tolist(),
            strict=True,
        )
        for t, i, a, b, d, flagged, v_a, v_b, v_pct, v_bad in rows:
            fields = [FieldDiff(name, a[f], b[f], d[f]) for f, name in enumerate(PRICE_FIELDS) if flagged[f]]
            if v_bad:
                fields.append(FieldDiff("volume", v_a, v_b, v_pct))
            out.diffs.append(BarDiff(t, DiffKind.VALUE, tuple(fields), stored.providers[i]))
    for t in np.setdiff1d(other.ts, stored.ts, assume_unique=True).tolist():
        out.diffs.append(BarDiff(int(t), DiffKind.MISSING, (FieldDiff("bar", None, None, None),), None))
    only_stored = np.flatnonzero(~np.isin(stored.ts, other.ts, assume_unique=True))
    for j in only_stored.tolist():
        out.diffs.append(
            BarDiff(
                int(stored.ts[j]), DiffKind.EXTRA, (FieldDiff("bar", None, None, None),), stored.providers[j]
            )
        )
    out.diffs.sort(key=lambda d: d.ts)
    return out


#: Who :func:`judge` blames.
STORED, OTHER = "stored", "other"


def judge(diff: BarDiff, stored: Series, other: Series, referee: Series | None, tol: Tolerance) -> str | None:
    """The side a referee finds wrong at ``diff``: ``STORED``, ``OTHER``, or None (no verdict).

    - value: the side whose bar the referee's disagrees with, when it agrees with the other;
    - missing (store lacks, other has): referee lacks it too → the other invented a bar;
      referee has it → the store has a hole, which is no vendor's answer: no verdict;
    - extra (store has, other lacks): referee has it → the other dropped it; lacks it → the
      stored vendor served a bar two others do not have.
    """
    if referee is None:
        return None
    r = referee.index(diff.ts)
    if diff.kind is DiffKind.MISSING:
        return OTHER if r is None else None
    if diff.kind is DiffKind.EXTRA:
        return STORED if r is None else OTHER
    if r is None:
        return None
    i, j = stored.index(diff.ts), other.index(diff.ts)
    assert i is not None and j is not None
    ref = referee.row(r)
    with_stored = values_agree(stored.row(i), ref, tol)
    with_other = values_agree(other.row(j), ref, tol)
    if with_stored and not with_other:
        return OTHER
    if with_other and not with_stored:
        return STORED
    return None
