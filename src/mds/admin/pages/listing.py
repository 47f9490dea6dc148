"""Server-side filtering for the symbol tables of the coverage and tracked pages.

Lists are filtered and cut to one page (:mod:`mds.admin.paging`) before anything per row
is read, so a page costs its own rows' reads whether the list holds 50 symbols or 8,000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from mds.admin.paging import Page, Paging, page_of

T = TypeVar("T")


def matching(rows: Sequence[T], q: str, key: Callable[[T], str] = str) -> list[T]:
    """The rows whose ``key`` contains ``q``, case-insensitively (all rows for a blank ``q``)."""
    needle = q.strip().upper()
    return [r for r in rows if needle in key(r).upper()] if needle else list(rows)


#: Rows per page at most on these pages: a tracked row with every column costs a few reads,
#: and 200 of them stay well inside the 300 ms a page may take.
PER_PAGE_MAX = 200


def page_within(rows: Sequence[T], paging: Paging) -> Page[T]:
    """The asked page of ``rows`` (at most :data:`PER_PAGE_MAX` a page), or the last one when
    the list has shrunk below it since the link was made (a filter narrowed it, symbols
    left the set)."""
    size = min(paging.per_page, PER_PAGE_MAX)
    last = max(1, -(-len(rows) // size))
    return page_of(rows, Paging(min(paging.page, last), size))
