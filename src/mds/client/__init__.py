"""A Python client for MDS: answers as pandas (or polars) DataFrames, typed errors, and a
WebSocket stream that resumes by offset across reconnects.

    from mds.client import Client

    with Client("http://127.0.0.1:8001", api_key="...") as mds:
        bars = mds.history("AAPL", period="1y", adjust="split")   # index ts (UTC)

``AsyncClient`` has the same methods as coroutines, and ``stream(symbols)``. polars frames
(``frame="polars"``) need the ``client`` extra: ``pip install "mds[client]"``.
"""

from mds.client.api import AsyncClient, Client
from mds.client.errors import AuthError, InvalidRequest, MDSError, NotFound, RateLimited, ServerError

__all__ = [
    "AsyncClient",
    "AuthError",
    "Client",
    "InvalidRequest",
    "MDSError",
    "NotFound",
    "RateLimited",
    "ServerError",
]
