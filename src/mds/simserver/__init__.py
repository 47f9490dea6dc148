"""`mds sim-server`: the sim ground truth served over HTTP in a vendor's wire format.

End-to-end and chaos tests point a real adapter at it (``<PROVIDER>_BASE_URL``), so the
adapter's request building, paging, parsing and error mapping run over real sockets.
"""
