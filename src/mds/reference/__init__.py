"""Reference-data sources: who is listed, and who is in which index.

One module per source, each a thin translation between its wire format and the records
of :mod:`mds.domain.reference`: ``nasdaqtrader`` (the symbol directory), ``wikipedia`` and
``fmp`` (index constituents). ``sources`` picks the constituent sources for a deployment.
Parsers are pure (text or bytes in, records out); fetchers only add one GET each.
"""
