"""Versioned SQL migrations, one directory per backend (``NNNN_name.sql`` files)."""
