"""Server-side paging of admin tables: ``?page=&per_page=`` in, one page and a pager out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request

T = TypeVar("T")
PER_PAGE = 50
PER_PAGE_MAX = 500


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


async def get_paging(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page")] = 1,
    per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX, description="Rows per page")] = PER_PAGE,
) -> Paging:
    return Paging(page, per_page)


PagingDep = Annotated[Paging, Depends(get_paging)]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows; ``total`` is None where counting all rows would cost a full scan."""

    items: list[T]
    page: int
    per_page: int
    total: int | None
    has_next: bool

    @property
    def pages(self) -> int:
        if self.total is None:
            return self.page + 1 if self.has_next else self.page
        return max(1, -(-self.total // self.per_page))


def page_of(rows: Sequence[T], paging: Paging) -> Page[T]:
    """The page ``paging`` asks for out of all ``rows``."""
    items = list(rows[paging.offset : paging.offset + paging.per_page])
    return Page(items, paging.page, paging.per_page, len(rows), paging.offset + len(items) < len(rows))


def page_probe(rows: Sequence[T], paging: Paging) -> Page[T]:
    """The page out of rows fetched from ``paging.offset`` with one extra row, which only
    says whether a next page exists (for stores that page but do not count)."""
    items = list(rows[: paging.per_page])
    return Page(items, paging.page, paging.per_page, None, len(rows) > paging.per_page)


def url_without_page(request: Request) -> str:
    """The request's path and query without ``page``: the pager appends its own."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return request.url.path + ("?" + urlencode(query) if query else "")
