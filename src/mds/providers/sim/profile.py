"""The sim's company profiles: a deterministic share count per symbol, priced at the sim's price.

Market cap is shares outstanding times the sim's last price at ``now``, so it moves with the
sim's prices like a vendor's does. Share counts are synthetic (drawn from the symbol's name,
between 50 million and 16 billion shares) and the profile carries the provider's name, which
starts with ``sim``: a sim market cap is never mistaken for a real one. Listed names, sectors
and exchanges come from :mod:`mds.providers.sim.reference`; ETFs have no market cap or share
count, as at most vendors.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from mds.domain.profile import CompanyProfile
from mds.providers.sim.market import SimMarket
from mds.providers.sim.reference import sim_listings
from mds.providers.timeconv import local_date

__all__ = ["market_profile", "sim_profile", "sim_shares_outstanding"]

_MIN_SHARES, _MAX_SHARES = 5e7, 1.6e10
_LISTINGS = {s.symbol: s for s in sim_listings(26 * 26)}


def sim_shares_outstanding(symbol: str) -> float:
    """A share count that is the same for ``symbol`` in every process (log-uniform in range)."""
    digest = hashlib.sha256(symbol.upper().encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return float(round(_MIN_SHARES * (_MAX_SHARES / _MIN_SHARES) ** u, -3))


def sim_profile(
    symbol: str, price: float, *, provider: str = "sim", raw_factor: float = 1.0
) -> CompanyProfile:
    """``symbol``'s profile as the sim vendor ``provider`` reports it at the raw ``price``.

    ``raw_factor`` is how much the raw price is scaled by splits still to come (the sim's
    ``raw_scale``): the share count is divided by it, so a split changes the share count and
    the price, never the market cap.
    """
    if not provider.startswith("sim"):
        raise ValueError(f"sim data must be labelled sim (provider {provider!r})")
    listing = _LISTINGS.get(symbol)
    etf = listing is not None and listing.etf
    shares = None if etf else round(sim_shares_outstanding(symbol) / raw_factor, 0)
    return CompanyProfile(
        symbol=symbol,
        provider=provider,
        market_cap=None if shares is None else round(shares * price, 0),
        shares_outstanding=shares,
        currency="USD",
        name=listing.name if listing else f"Sim {symbol} Inc.",
        sector=listing.sector if listing else "",
        industry=listing.sub_industry if listing else "",
        exchange=listing.exchange if listing else "",
    )


def market_profile(market: SimMarket, symbol: str, now: datetime, *, provider: str = "sim") -> CompanyProfile:
    """``symbol``'s profile priced at ``market``'s last trade at ``now``, in the share basis of
    ``now`` (splits still to come scale the raw price up and the share count down)."""
    scale = market.raw_scale(symbol, local_date(now))
    return sim_profile(
        symbol,
        market.last_price(symbol, now),
        provider=provider,
        raw_factor=1.0 if scale is None else scale[0],
    )
