"""Invariants of the indicator engine over arbitrary valid OHLC series (hypothesis)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mds.analysis import indicators as ind


@st.composite
def ohlc(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(min_value=0, max_value=320))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    vol = draw(st.sampled_from([0.0, 0.001, 0.02, 0.1]))
    rng = np.random.default_rng(seed)
    c = np.round(50 * np.exp(np.cumsum(rng.normal(0, vol, n))), 2)
    o = np.round(c * np.exp(rng.normal(0, vol / 2, n)), 2)
    h = np.maximum(o, c) + np.round(rng.uniform(0, 1, n) * vol * 10, 2)
    lo = np.maximum(np.minimum(o, c) - np.round(rng.uniform(0, 1, n) * vol * 10, 2), 0.01)
    first = 19000 + draw(st.integers(min_value=0, max_value=6))
    days = np.arange(first, first + 2 * n + 2)
    days = days[((days + 3) % 7) < 5][:n]
    return o, h, lo, c, days


@settings(max_examples=150, deadline=None)
@given(ohlc())
def test_invariants(series: tuple[np.ndarray, ...]) -> None:
    snap = ind.compute_one(*series)
    assert snap["rsi_14"] is None or 0.0 <= snap["rsi_14"] <= 100.0
    assert snap["atr_14"] is None or snap["atr_14"] >= 0.0
    assert snap["ma_bucket"] in ind.BUCKETS
    assert snap["stage_label"] is None or snap["stage_label"] in ind.STAGES
    assert snap["td_setup"] is None or -9 <= snap["td_setup"] <= 9
    for f in ("adx_14", "plus_di_14", "minus_di_14"):
        assert snap[f] is None or 0.0 <= snap[f] <= 100.0
    # Every null has a reason and nothing is NaN or infinite.
    for f in ind.TALIB_FIELDS + ind.HAND_FLOAT_FIELDS:
        assert (snap[f] is None) == (f in snap["reasons"]), f
    json.dumps(snap, allow_nan=False)
    assert snap["bars_used"] == len(series[0])
