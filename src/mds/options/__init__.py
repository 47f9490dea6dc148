"""Options analytics: Black on the forward and implied volatility (``pricing``), vendor chains
priced with MDS's own IV and delta (``chain``), and the chain's metrics (``metrics``).

Pure functions over domain objects and numpy arrays: no I/O, no clock, no settings.
"""
