"""The options limits (issue 16): IV throughput on a chain, and the metrics' latency.

**IV** (target: at least 50,000 contracts/s on a 5,000-contract chain). Sim chains
(:func:`~mds.providers.sim.options.sim_option_chain`) of a few underlyings, priced by
Black-Scholes from the sim surface, are pooled until ``contracts`` contracts with a mid
are at hand (bid and ask quoted); their mids, forwards, strikes and times go through
:func:`~mds.options.pricing.implied_vols` in one call, ``repeats`` times, and the median
run gives ``contracts_per_s``. Beside it, vollib's own per-contract
``black_scholes.implied_volatility.implied_volatility`` on the first ``vollib_contracts``
of the same contracts (a subset: it is ~100x slower), one call each, gives
``vollib_contracts_per_s`` (a rate, so it extrapolates to the whole chain at the same
pace); ``speedup`` is the ratio. ``fallback`` counts the contracts that went to Let's Be
Rational, and ``max_abs_diff_vs_vollib`` checks the two agree on the subset.

**Metrics** (target: ``/options/{symbol}/metrics`` p99 under 50 ms, of which the
computation is a small part). :func:`~mds.options.metrics.compute_metrics` on a priced
sim chain trimmed to ``metrics_contracts`` contracts (whole expirations, nearest first),
``metrics_runs`` times: ``metrics_p50_ms`` and ``metrics_p99_ms``.
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from vollib.black_scholes.implied_volatility import (  # type: ignore[import-untyped]
    implied_volatility as vollib_implied_volatility,
)

from mds.benchmarks.live import percentile
from mds.domain.models import OptionQuote, OptionRight
from mds.options.chain import expiry_close, price_chain, year_fraction
from mds.options.metrics import compute_metrics
from mds.options.pricing import discount, forward, solve_implied_vols
from mds.providers.sim.market import SimMarket
from mds.providers.sim.options import sim_option_chain

#: A Wednesday mid-session: weeklies and monthlies a year out are all listed.
AS_OF = datetime(2025, 10, 15, 15, 0, tzinfo=UTC)
SYMBOLS = ("SPY", "MSFT", "TSLA", "QQQ", "NVDA", "AMZN", "META", "GOOG")
RATE = 0.04
IV_TARGET_PER_S = 50_000
METRICS_P99_TARGET_MS = 50.0


def _pooled_quotes(market: SimMarket, contracts: int) -> list[tuple[OptionQuote, float]]:
    """(quote, spot) of sim contracts with a bid and an ask, pooled over SYMBOLS."""
    pool: list[tuple[OptionQuote, float]] = []
    for symbol in SYMBOLS:
        chain = sim_option_chain(market, symbol, AS_OF, rate=RATE)
        pool += [(q, q.underlying_price or 0.0) for q in chain if q.bid and q.ask]
        if len(pool) >= contracts:
            break
    return pool[:contracts]


def _iv_inputs(market: SimMarket, contracts: int) -> dict[str, np.ndarray]:
    pool = _pooled_quotes(market, contracts)
    closes = {
        q.expiration: year_fraction(AS_OF, expiry_close(q.expiration, market.calendar)) for q, _ in pool
    }
    t = np.array([closes[q.expiration] for q, _ in pool])
    spot = np.array([s for _, s in pool])
    return {
        "price": np.array([((q.bid or 0.0) + (q.ask or 0.0)) / 2 for q, _ in pool]),
        "spot": spot,
        "forward": forward(spot, RATE, t),
        "strike": np.array([q.strike for q, _ in pool]),
        "t": t,
        "discount": discount(RATE, t),
        "call": np.array([q.right is OptionRight.CALL for q, _ in pool]),
    }


def _vollib_rate(inputs: dict[str, np.ndarray], n: int) -> tuple[float, list[float]]:
    """vollib's per-contract IV over the first ``n`` contracts: (contracts/s, answers)."""
    args = list(
        zip(
            inputs["price"][:n].tolist(),
            inputs["spot"][:n].tolist(),
            inputs["strike"][:n].tolist(),
            inputs["t"][:n].tolist(),
            ["c" if c else "p" for c in inputs["call"][:n].tolist()],
            strict=True,
        )
    )
    answers: list[float] = []
    start = time.perf_counter()
    for price, s, k, t, flag in args:
        try:
            answers.append(float(vollib_implied_volatility(price, s, k, t, RATE, flag)))
        except Exception:  # vollib's below-intrinsic/above-maximum: no answer
            answers.append(math.nan)
    elapsed = time.perf_counter() - start
    return len(args) / elapsed, answers


def run_iv_bench(
    contracts: int = 5_000,
    repeats: int = 7,
    vollib_contracts: int = 1_000,
    metrics_contracts: int = 2_000,
    metrics_runs: int = 300,
    seed: int = 42,
) -> dict[str, Any]:
    """Both options benchmarks; one dict of figures (see the module docstring)."""
    market = SimMarket(seed)
    inputs = _iv_inputs(market, contracts)
    n = inputs["price"].size
    solve_args = (
        inputs["price"],
        inputs["forward"],
        inputs["strike"],
        inputs["t"],
        inputs["discount"],
        inputs["call"],
    )
    solve_implied_vols(*solve_args)  # warm up imports and caches
    runs = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        solution = solve_implied_vols(*solve_args)
        runs.append(time.perf_counter() - start)
    seconds = statistics.median(runs)
    rate = n / seconds

    subset = min(vollib_contracts, n)
    vollib_rate, answers = _vollib_rate(inputs, subset)
    ours = solution.iv[:subset]
    theirs = np.array(answers)
    both = ~np.isnan(ours) & ~np.isnan(theirs) & (theirs > 0)
    max_diff = float(np.max(np.abs(ours[both] - theirs[both]))) if both.any() else None

    metrics_n, p50, p99 = _metrics_latency(market, metrics_contracts, metrics_runs)
    return {
        "benchmark": "options",
        "contracts": n,
        "iv_seconds_median": round(seconds, 5),
        "contracts_per_s": round(rate),
        "target_contracts_per_s": IV_TARGET_PER_S,
        "fallback": int(solution.fallback.sum()),
        "no_iv": int(np.isnan(solution.iv).sum()),
        "vollib_contracts": subset,
        "vollib_contracts_per_s": round(vollib_rate),
        "speedup": round(rate / vollib_rate, 1),
        "max_abs_diff_vs_vollib": max_diff,
        "metrics_contracts": metrics_n,
        "metrics_p50_ms": p50,
        "metrics_p99_ms": p99,
        "metrics_p99_target_ms": METRICS_P99_TARGET_MS,
    }


def _metrics_chain_quotes(market: SimMarket, contracts: int) -> list[OptionQuote]:
    """Whole expirations of one sim chain, nearest first, up to ``contracts`` contracts."""
    quotes = sim_option_chain(market, SYMBOLS[0], AS_OF, rate=RATE)
    out: list[OptionQuote] = []
    for expiration in sorted({q.expiration for q in quotes}):
        block = [q for q in quotes if q.expiration == expiration]
        if out and len(out) + len(block) > contracts:
            break
        out += block
    return out


def _metrics_latency(market: SimMarket, contracts: int, runs: int) -> tuple[int, float | None, float | None]:
    """(contracts in the chain, p50 ms, p99 ms) of ``compute_metrics``."""
    quotes = _metrics_chain_quotes(market, contracts)
    spot = quotes[0].underlying_price or 0.0
    chain = price_chain(
        quotes,
        symbol=SYMBOLS[0],
        spot=spot,
        as_of=AS_OF,
        rate=RATE,
        rate_source="RISK_FREE_RATE",
        provider="sim",
        calendar=market.calendar,
    )
    compute_metrics(chain)  # warm-up
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        compute_metrics(chain)
        times.append((time.perf_counter() - start) * 1000)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    return len(chain.contracts), _ms(p50), _ms(p99)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
