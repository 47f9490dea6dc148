"""Fault settings for a sim provider, read from an environment mapping with a prefix.

``SimFaults.from_env(env, "SIM_")`` configures the ``sim`` provider and
``SimFaults.from_env(env, "SIM_BACKUP_")`` the ``sim_backup`` one, so a demo or a test
can break one provider while its backup stays healthy.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mds.domain.clock import Clock
from mds.domain.models import Bar, ensure_utc
from mds.errors import ConfigError, RateLimited, Unavailable

__all__ = ["SimFaults"]

_RATES = ("error_rate", "missing_rate", "malformed_rate")


@dataclass(frozen=True)
class SimFaults:
    """How a sim provider misbehaves. The defaults are a perfect provider.

    Attributes:
        seed: Ground-truth seed (``{prefix}SEED``); all sim providers in one process
            should share it so they agree on the market.
        latency_ms: Real-time delay before every answer (``{prefix}LATENCY_MS``).
        error_rate: Probability (0..1) of ``Unavailable(code="500")`` (``{prefix}ERROR_RATE``).
        outages: ``(start, end)`` clock-time windows answering ``Unavailable(code="503")``
            (``{prefix}OUTAGES``: comma-separated ``start/end`` ISO-8601 pairs).
        rate_limit_per_min: Calls allowed per 60 s of clock time; beyond it
            ``RateLimited`` (``{prefix}RATE_LIMIT_PER_MIN``; unset or empty = no limit).
        missing_rate: Probability each bar is dropped, drawn afresh per response
            (``{prefix}MISSING_RATE``).
        malformed_rate: Probability a response carries one corrupted bar
            (``{prefix}MALFORMED_RATE``), which validation rejects as ``BadPayload``.
        price_noise: Relative standard deviation of a random factor each bar's prices are
            multiplied by, drawn afresh per bar and response (``{prefix}PRICE_NOISE``; 0 =
            off): a vendor that silently serves wrong but well-formed prices, for
            reconciliation to catch. One factor per bar keeps ``low <= open, close <= high``.
    """

    seed: int = 42
    latency_ms: float = 0.0
    error_rate: float = 0.0
    outages: tuple[tuple[datetime, datetime], ...] = ()
    rate_limit_per_min: int | None = None
    missing_rate: float = 0.0
    malformed_rate: float = 0.0
    price_noise: float = 0.0

    def __post_init__(self) -> None:
        # Direct construction is checked too; from_env checks first to name the variable.
        problem = _problem(self)
        if problem is not None:
            field_name, message = problem
            raise ConfigError(field_name, message)

    def in_outage(self, ts: datetime) -> bool:
        """Whether clock time ``ts`` lies inside an outage window (``start <= ts < end``)."""
        ts = ensure_utc(ts)
        return any(start <= ts < end for start, end in self.outages)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "SIM_") -> SimFaults:
        """Read ``{prefix}SEED``, ``{prefix}LATENCY_MS`` ... from ``environ``.

        Raises:
            ConfigError: naming the variable (e.g. ``SIM_BACKUP_ERROR_RATE``) whose value
                is unparsable or out of range.
        """

        def get(key: str) -> str | None:
            value = environ.get(prefix + key)
            return None if value is None or not value.strip() else value.strip()

        kwargs: dict[str, object] = {}
        if (raw := get("SEED")) is not None:
            kwargs["seed"] = _parse(prefix + "SEED", raw, int)
        if (raw := get("LATENCY_MS")) is not None:
            kwargs["latency_ms"] = _parse(prefix + "LATENCY_MS", raw, float)
        for name in _RATES:
            if (raw := get(name.upper())) is not None:
                kwargs[name] = _parse(prefix + name.upper(), raw, float)
        if (raw := get("PRICE_NOISE")) is not None:
            kwargs["price_noise"] = _parse(prefix + "PRICE_NOISE", raw, float)
        if (raw := get("RATE_LIMIT_PER_MIN")) is not None:
            kwargs["rate_limit_per_min"] = _parse(prefix + "RATE_LIMIT_PER_MIN", raw, int)
        if (raw := get("OUTAGES")) is not None:
            kwargs["outages"] = _parse_outages(prefix + "OUTAGES", raw)
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ConfigError as exc:
            # Range checks live in __post_init__; rename the setting with this prefix.
            raise ConfigError(prefix + exc.setting.removeprefix("SIM_"), exc.message) from None


def _problem(faults: SimFaults) -> tuple[str, str] | None:
    """The first invalid field as (``SIM_<FIELD>``, message), or None."""
    value = functools.partial(getattr, faults)
    latency = value("latency_ms")
    if not isinstance(latency, (int, float)) or not math.isfinite(latency) or latency < 0:
        return "SIM_LATENCY_MS", f"must be a finite number >= 0 (got {latency!r})"
    for name in _RATES:
        rate = value(name)
        if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            return f"SIM_{name.upper()}", f"must be a probability between 0 and 1 (got {rate!r})"
    noise = value("price_noise")
    if not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
        return "SIM_PRICE_NOISE", f"must be a relative standard deviation between 0 and 1 (got {noise!r})"
    limit = value("rate_limit_per_min")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        return "SIM_RATE_LIMIT_PER_MIN", f"must be a positive integer (got {limit!r})"
    for start, end in faults.outages:
        if start.tzinfo is None or end.tzinfo is None:
            return "SIM_OUTAGES", f"outage {start}/{end} needs a time zone (e.g. Z)"
        if start >= end:
            return "SIM_OUTAGES", f"outage start {start.isoformat()} is not before its end"
    return None


def _parse(setting: str, raw: str, kind: type) -> object:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(setting, f"{raw!r} is not a valid {kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(setting, f"{raw!r} is not a finite number")
    return value


def _parse_outages(setting: str, raw: str) -> tuple[tuple[datetime, datetime], ...]:
    windows: list[tuple[datetime, datetime]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        start_s, sep, end_s = item.partition("/")
        if not sep:
            raise ConfigError(setting, f"{item!r} is not a start/end pair")
        try:
            start, end = (
                datetime.fromisoformat(start_s.strip()),
                datetime.fromisoformat(end_s.strip()),
            )
        except ValueError as exc:
            raise ConfigError(setting, f"{item!r}: {exc}") from None
        if start.tzinfo is None or end.tzinfo is None:
            raise ConfigError(setting, f"{item!r}: times need a time zone (e.g. Z)")
        start, end = ensure_utc(start), ensure_utc(end)
        if start >= end:
            raise ConfigError(setting, f"{item!r}: start is not before end")
        windows.append((start, end))
    return tuple(windows)


def _cents(price: float) -> float:
    return max(0.01, round(price, 2))


_WINDOW = 60.0  # seconds of clock time the rate limit counts over


class FaultInjector:
    """Decides, response by response, how a sim source misbehaves.

    Shared by the in-process ``SimProvider`` and ``mds sim-server``, so a fault setting
    means the same thing whether the adapter under test is the sim or a vendor's.
    """

    def __init__(self, name: str, faults: SimFaults, *, rng_seed: int | None = None) -> None:
        self.name = name
        self.faults = faults
        self._rng = random.Random(rng_seed)
        self._calls: deque[float] = deque()  # clock times (epoch s) of admitted calls

    async def admit(self, clock: Clock) -> datetime:
        """Latency, outage, rate limit, random error; return the clock's now if admitted."""
        if self.faults.latency_ms > 0:
            # Real time on purpose: latency is what the router's timers measure.
            await asyncio.sleep(self.faults.latency_ms / 1000.0)
        now = clock.now()
        if self.faults.in_outage(now):
            raise Unavailable(self.name, "simulated outage", code="503")
        self._check_rate(now.timestamp())
        if self.faults.error_rate > 0 and self._rng.random() < self.faults.error_rate:
            raise Unavailable(self.name, "simulated server error", code="500")
        return now

    def _check_rate(self, t: float) -> None:
        limit = self.faults.rate_limit_per_min
        if limit is None:
            return
        while self._calls and self._calls[0] <= t - _WINDOW:
            self._calls.popleft()
        if len(self._calls) >= limit:
            # The oldest admitted call leaves the window first; that frees the next slot.
            retry_after = max(1.0, math.ceil(self._calls[0] + _WINDOW - t))
            raise RateLimited(self.name, f"more than {limit} calls per minute", retry_after=retry_after)
        self._calls.append(t)

    def degrade(self, bars: list[Bar]) -> list[Bar]:
        """Drop bars at ``missing_rate``, add ``price_noise``, maybe corrupt one at ``malformed_rate``."""
        return self._maybe_corrupt(self._add_noise(self._drop_missing(bars)))

    def _add_noise(self, bars: list[Bar]) -> list[Bar]:
        sigma = self.faults.price_noise
        if sigma <= 0:
            return bars
        gauss = self._rng.gauss
        out: list[Bar] = []
        for b in bars:
            # exp(N(0, sigma)) ~ 1 + N(0, sigma) for small sigma, and never zero or negative.
            # One factor for the whole bar and cents rounding (monotone) keep the bar valid.
            f = math.exp(gauss(0.0, sigma))
            out.append(
                b._replace(
                    open=_cents(b.open * f),
                    high=_cents(b.high * f),
                    low=_cents(b.low * f),
                    close=_cents(b.close * f),
                )
            )
        return out

    def _drop_missing(self, bars: list[Bar]) -> list[Bar]:
        rate = self.faults.missing_rate
        if rate <= 0:
            return bars
        return [b for b in bars if self._rng.random() >= rate]

    def _maybe_corrupt(self, bars: list[Bar]) -> list[Bar]:
        rate = self.faults.malformed_rate
        if rate <= 0 or not bars or self._rng.random() >= rate:
            return bars
        i = self._rng.randrange(len(bars))
        # Two ways vendors really get it wrong: inconsistent OHLC, and NaN in a field.
        if self._rng.random() < 0.5:
            bad = bars[i].with_(high=bars[i].low - 0.01)
        else:
            bad = bars[i].with_(close=math.nan)
        return [*bars[:i], bad, *bars[i + 1 :]]
