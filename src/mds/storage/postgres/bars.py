"""Bars and quotes on PostgreSQL: :class:`~mds.storage.base.BarStore` and :class:`~mds.storage.base.RollupReader`.

A bulk write COPYs the batch into a per-connection temporary staging table and runs one
merge statement (see ``sql.MERGE``); a row trigger files replaced rows as history inside
that statement. A batch whose series hold no bar yet in its time span (a backfill, a new
session) skips staging and is COPYed straight into ``candles``: every key is new, so
there is nothing to merge.

The service's 5m/15m/1h reads are rolled up on read in the database
(:meth:`PostgresBars.read_rollup`, ``date_bin`` from each session's open), point in time
like every read, with or without TimescaleDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mds.domain.models import Bar, BarStatus, Interval, Quote, ensure_utc
from mds.domain.records import WriteResult
from mds.storage.postgres import sql as q
from mds.storage.postgres.connection import PostgresPool


def _series_spans(
    records: Sequence[tuple[Any, ...]],
) -> tuple[list[str], list[str], list[datetime], list[datetime]]:
    """Per (symbol, interval) in a batch: the first and last ts, as four parallel arrays."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for r in records:
        span = spans.get((r[0], r[1]))
        if span is None:
            spans[(r[0], r[1])] = [r[2], r[2]]
        elif r[2] < span[0]:
            span[0] = r[2]
        elif r[2] > span[1]:
            span[1] = r[2]
    keys = list(spans)
    return (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [spans[k][0] for k in keys],
        [spans[k][1] for k in keys],
    )


async def _copy(conn: asyncpg.Connection, table: str, records: Sequence[tuple[Any, ...]]) -> None:
    """COPY ``records`` into ``table``, failing at once if the connection drops meanwhile.

    asyncpg (0.32) waits for its flow control to allow writing again without looking at
    the connection: a COPY paused on a full socket when the server dies waits for ever
    (``connection_lost`` never wakes it; seen in test_postgres_outage, where an in-flight
    write then outlived its whole retry budget). The connection's termination listener
    does fire, so the COPY is cancelled from there and the outage retry takes over.
    """
    copy = asyncio.ensure_future(conn.copy_records_to_table(table, records=records, columns=q.BAR_COLUMNS))
    lost = asyncio.get_running_loop().create_future()

    def on_terminated(_: object) -> None:
        if not lost.done():
            lost.set_result(None)

    conn.add_termination_listener(on_terminated)
    try:
        await asyncio.wait({copy, lost}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        copy.cancel()
        await asyncio.gather(copy, return_exceptions=True)
        raise
    finally:
        conn.remove_termination_listener(on_terminated)
    if not copy.done():
        copy.cancel()
        await asyncio.gather(copy, return_exceptions=True)
        raise asyncpg.ConnectionDoesNotExistError("connection lost during COPY")
    copy.result()


async def _copy_new(conn: asyncpg.Connection, records: Sequence[tuple[Any, ...]]) -> bool:
    """COPY bars with new keys straight into candles (no staging, no per-row conflict check).

    False when a key is there after all (a concurrent writer stored it since the caller
    looked, or it repeats within the batch): the savepoint undoes the partial COPY and the
    caller merges instead, key by key.
    """
    try:
        async with conn.transaction():
            await _copy(conn, "candles", records)
    except asyncpg.UniqueViolationError:
        return False
    return True


def _new_since(
    records: Sequence[tuple[Any, ...]], since: datetime | None
) -> tuple[tuple[str, str, datetime], ...]:
    """The keys of an all-new batch at or after ``since``, as the merge would report them."""
    if since is None:
        return ()
    return tuple(sorted({(r[0], r[1], r[2]) for r in records if r[2] >= since}))


class PostgresBars:
    """The :class:`~mds.storage.base.BarStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def write_bars(
        self, bars: Sequence[Bar], *, as_of: datetime, changed_since: datetime | None = None
    ) -> WriteResult:
        stamp = ensure_utc(as_of)
        if any(b.ts.tzinfo is None for b in bars):
            raise ValueError("a bar's ts is a naive datetime with no time zone")
        # ``+ ""`` turns the str enums into their plain values at C speed (a dict lookup
        # hashes the enum in Python, and this loop is a large part of a million-bar write).
        # Repeated keys are not removed here: the COPY below then fails and the merge keeps
        # each key's last bar, which costs nothing when keys are unique (nearly always).
        records = [
            (
                b.symbol,
                b.interval + "",
                b.ts,
                float(b.open),
                float(b.high),
                float(b.low),
                float(b.close),
                float(b.volume),
                b.provider,
                stamp,
                b.status + "",
                bool(b.adjusted),
                0,
            )
            for b in bars
        ]
        if not records:
            return WriteResult()
        spans = _series_spans(records)
        since = ensure_utc(changed_since) if changed_since is not None else None

        async def run(conn: asyncpg.Connection) -> WriteResult:
            async with conn.transaction():
                # Every key new: straight into candles, the database's fastest path.
                if not await conn.fetchval(q.ANY_STORED_IN_SPAN, *spans) and await _copy_new(conn, records):
                    await conn.execute(q.DROP_EVIDENCE_OF_STORED, spans[0])
                    return WriteResult(len(records), 0, 0, _new_since(records, since))
                await _copy(conn, "stage_bars", records)
                merged = await conn.fetchrow(q.MERGE, stamp, since)
                assert merged is not None  # an aggregate: always one row
                inserted, revised, keys, symbols, intervals, times = merged
            changed = tuple(zip(symbols or (), intervals or (), times or (), strict=True))
            return WriteResult(inserted, revised, keys - inserted - revised, changed)

        return await self.db.write(run)

    async def read_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        if limit is not None and limit <= 0:
            return []
        args: list[Any] = [symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end)]
        if as_of is None:
            sql = q.READ_CURRENT
        else:
            sql = q.READ_AS_OF
            args.append(ensure_utc(as_of))
        if limit is None:
            sql += " ORDER BY ts"
        else:
            sql += f" ORDER BY ts DESC LIMIT ${len(args) + 1}"
            args.append(limit)
        rows = await self.db.fetch(sql, *args)
        if limit is not None:
            rows.reverse()
        return [q.bar(r) for r in rows]

    async def read_rollup(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        sessions: Sequence[tuple[datetime, datetime]],
        *,
        as_of: datetime | None = None,
    ) -> list[Bar]:
        args: list[Any] = [symbol, Interval.M1.value, ensure_utc(start), ensure_utc(end)]
        if as_of is not None:
            args.append(ensure_utc(as_of))
        args += [[o for o, _ in sessions], [c for _, c in sessions], Interval(interval).delta]
        rows = await self.db.fetch(q.rollup_sql(as_of is not None), *args)
        return [
            Bar(
                symbol=symbol,
                interval=interval,
                ts=ts,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                provider=providers,
                adjusted=adjusted,
                status=BarStatus.FINAL if final else BarStatus.PROVISIONAL,
                as_of=learned,
            )
            for ts, o, h, lo, c, v, providers, final, learned, adjusted in rows
        ]

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        sql = f"SELECT extract(epoch FROM ts)::bigint FROM candles WHERE {q.RANGE} ORDER BY ts"
        rows = await self.db.fetch(sql, symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end))
        return [r[0] for r in rows]

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None:
        sql = f"SELECT {q.BAR_COLS} FROM candles WHERE symbol = $1 AND interval = $2 ORDER BY ts DESC LIMIT 1"
        row = await self.db.fetchrow(sql, symbol, Interval(interval).value)
        return None if row is None else q.bar(row)

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        rows = await self.db.fetch(q.REVISIONS, symbol, Interval(interval).value, ensure_utc(ts))
        return [q.bar(r) for r in rows]

    async def write_quotes(self, quotes: Sequence[Quote]) -> int:
        if not quotes:
            return 0
        columns = (
            [x.symbol for x in quotes],
            [ensure_utc(x.ts) for x in quotes],
            [x.bid for x in quotes],
            [x.ask for x in quotes],
            [x.bid_size for x in quotes],
            [x.ask_size for x in quotes],
            [x.last for x in quotes],
            [x.provider for x in quotes],
            [None if x.as_of is None else ensure_utc(x.as_of) for x in quotes],
        )
        return await self.db.write(lambda conn: conn.fetchval(q.WRITE_QUOTES, *columns))

    async def latest_quote(self, symbol: str) -> Quote | None:
        row = await self.db.fetchrow(
            "SELECT symbol, ts, bid, ask, last, bid_size, ask_size, provider, as_of"
            " FROM quotes_l1 WHERE symbol = $1 ORDER BY ts DESC, as_of DESC NULLS LAST LIMIT 1",
            symbol,
        )
        return None if row is None else Quote(*row)
