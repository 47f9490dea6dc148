"""``python -m mds.cli``."""

from mds.cli import app

app()
