"""The synthetic market and the ``sim`` providers that serve it (``--demo`` mode)."""

from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket, ground_truth
from mds.providers.sim.provider import SimProvider

__all__ = ["SimFaults", "SimMarket", "SimProvider", "ground_truth"]
