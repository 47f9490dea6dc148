"""One module per admin page, each with a ``router`` (see :mod:`mds.admin`)."""
