"""Cross-vendor reconciliation: compare stored bars with a second vendor's, score each
provider's data quality, and re-check minutes recorded as having no trades.

- :mod:`mds.reconcile.records`: what a reconciliation records (scores, disagreements).
- :mod:`mds.reconcile.compare`: the pure comparison and attribution arithmetic.
- :mod:`mds.reconcile.service`: sampling, fetching, recording, feeding the router.
- :mod:`mds.reconcile.empty`: the re-check of confirmed-empty minutes.
"""
