"""Property: a mangled vendor body gives bars that pass validation, or a typed error.

Hypothesis takes each vendor's session fixtures and damages them as a broken or hostile
upstream might: bytes cut off, numbers turned into strings, nulls, NaN, infinities and
huge values, keys deleted, values swapped. Whatever comes back, ``parse_bars`` (then the
range trim and ``validate_bars``, as in ``fetch_bars``) must end in bars fit to store or
in ``BadPayload`` (``NoData`` too, where the damage switched on the vendor's own "no
data" field), never a ``ValueError`` or ``TypeError`` escaping from the parser.

Derandomised, so CI runs the same examples every time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mds.errors import BadPayload, NoData
from tests.contract.vendors.cases import CASES, Bars, VendorCase
from tests.contract.vendors.test_contract import parse

Path = tuple[str | int, ...]

#: How a body is damaged; each kind is drawn as often as the others.
KINDS = ("truncate", "string", "null", "nan", "huge", "far", "delete", "swap")
#: What a value becomes, by kind. JSON's NaN and Infinity tokens are refused by every
#: decoder, so NaN also comes as the strings that ``float()`` reads as NaN.
NEW_VALUE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.sampled_from(["", "x", "1,5", "2025-13-45"]),
    "null": st.none(),
    "nan": st.sampled_from([float("nan"), float("inf"), float("-inf"), "NaN", "nan", "-Infinity", "1e999"]),
    # Numbers past 64 bits and past any epoch in seconds, milliseconds or nanoseconds.
    "huge": st.one_of(
        st.sampled_from([2**64, -(2**64), 10**30, 1e308, -1e308]),
        st.integers(min_value=2**53, max_value=2**90),
    ),
}
#: An ISO date, and the time of day after it.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(?<=^.{10}[ T])\d{2}:\d{2}")


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and _DATE.match(value) is not None


def _new_value(draw: st.DrawFn, kind: str, old: Any) -> Any:
    if kind == "string" and draw(st.booleans()):
        return str(old)  # 235.54 -> "235.54", as some vendors send numbers
    if kind == "far" and _is_date(old):
        # The same format at the first or last minute a datetime can hold.
        if draw(st.booleans()):
            return _TIME.sub("23:59", _DATE.sub("9999-12-31", old))
        return _TIME.sub("00:00", _DATE.sub("0001-01-01", old))
    return draw(NEW_VALUE["huge" if kind == "far" else kind])


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _parent(doc: Any, path: Path) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _mutate_json(draw: st.DrawFn, doc: Any, kind: str) -> Any:
    paths = _paths(doc)
    if not paths:
        return None
    # A new value goes where values are (a number, a time, a flag), not over a whole row;
    # a far date where dates are, if the body has any.
    values = [p for p in paths if not isinstance(_parent(doc, p)[p[-1]], dict | list)]
    dates = [p for p in values if _is_date(_parent(doc, p)[p[-1]])]
    targets = (dates or values) if kind == "far" else values if kind in NEW_VALUE else paths
    path = draw(st.sampled_from(targets or paths))
    parent, key = _parent(doc, path), path[-1]
    if kind == "delete":
        del parent[key]
    elif kind == "swap":
        # With any value that is neither inside this one nor around it: a sibling field,
        # a number in another row, a whole array.
        apart = [p for p in paths if p[: len(path)] != path and path[: len(p)] != p]
        other = draw(st.sampled_from(apart or [path]))
        other_parent = _parent(doc, other)
        parent[key], other_parent[other[-1]] = other_parent[other[-1]], parent[key]
    else:
        parent[key] = _new_value(draw, kind, parent[key])
    return doc


def _mutate_csv(draw: st.DrawFn, table: list[list[str]], kind: str) -> list[list[str]]:
    cells = [(r, c) for r, row in enumerate(table) for c in range(len(row))]
    dates = [(r, c) for r, c in cells if _is_date(table[r][c])]
    r, c = draw(st.sampled_from(dates if kind == "far" and dates else cells))
    if kind == "delete":
        del table[r][c]
    elif kind == "swap":
        r2, c2 = draw(st.sampled_from(cells))
        table[r][c], table[r2][c2] = table[r2][c2], table[r][c]
    else:
        table[r][c] = str(_new_value(draw, kind, table[r][c]))
    return table


@st.composite
def mangled(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` cut short, or after one to three other kinds of damage."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
    if "truncate" in kinds:
        return body[: draw(st.integers(0, len(body) - 1))]
    if body.startswith(b"Date,"):
        table = list(csv.reader(io.StringIO(body.decode())))
        for kind in kinds:
            table = _mutate_csv(draw, table, kind)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(table)
        return out.getvalue().encode()
    doc = json.loads(body)
    for kind in kinds:
        doc = _mutate_json(draw, doc, kind)
    # json, not orjson: it writes NaN, Infinity and integers past 64 bits, as a vendor might.
    return json.dumps(doc).encode()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_mangled_bodies_end_in_valid_bars_or_a_typed_error(case: VendorCase, data: st.DataObject) -> None:
    asked: Bars = data.draw(st.sampled_from(list(case.sessions.values())), label="session")
    body = data.draw(mangled(case.body(asked.fixture)), label="body")
    try:
        bars = parse(case, body, asked)
    except (BadPayload, NoData):
        return
    assert all(not b.problems() and asked.start <= b.ts < asked.end for b in bars)
