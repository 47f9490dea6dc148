"""The migration runner on throwaway directories of .sql files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mds.errors import StorageError
from mds.storage.migrate import SQLITE_MIGRATIONS, apply_sqlite, discover, split_statements


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    yield c
    c.close()


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_applies_in_version_order_once(tmp_path: Path, conn: sqlite3.Connection) -> None:
    d = write(
        tmp_path / "m",
        {
            # 0002 needs 0001's table, so running out of order would fail
            "0002_add_col.sql": "ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b (z);",
            "0001_first.sql": "-- first; with a semicolon in a comment\nCREATE TABLE a (x);",
            "README.md": "not a migration",
        },
    )
    found = discover(d)
    assert [(m.version, m.name) for m in found] == [("0001", "first"), ("0002", "add_col")]
    assert apply_sqlite(conn, found) == ["0001", "0002"]
    assert {"a", "b", "schema_migrations"} <= tables(conn)
    assert apply_sqlite(conn, discover(d)) == []  # idempotent
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY 1")
    assert [(v, n) for v, n, _ in rows] == [("0001", "first"), ("0002", "add_col")]

    write(d, {"0003_third.sql": "CREATE TABLE c (w)"})
    assert apply_sqlite(conn, discover(d)) == ["0003"]


def test_failing_migration_rolls_back_and_names_file(tmp_path: Path, conn: sqlite3.Connection) -> None:
    d = write(
        tmp_path / "m",
        {
            "0001_ok.sql": "CREATE TABLE a (x);",
            "0002_broken.sql": "CREATE TABLE half (x);\nINSERT INTO missing VALUES (1);",
        },
    )
    with pytest.raises(StorageError, match="0002_broken.sql"):
        apply_sqlite(conn, discover(d))
    assert "half" not in tables(conn)  # the failing file left nothing behind
    assert not conn.in_transaction
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == ["0001"]

    write(d, {"0002_broken.sql": "CREATE TABLE half (x);"})  # fixed: now it applies
    assert apply_sqlite(conn, discover(d)) == ["0002"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_bad.sql": ""}, "NNNN_name.sql"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, "share version 0001"),
    ],
)
def test_misnamed_or_duplicate_files_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        discover(write(tmp_path / "m", files))


def test_split_keeps_semicolons_in_strings_and_triggers() -> None:
    script = """
    CREATE TABLE t (x TEXT);  -- trailing comment
    INSERT INTO t VALUES ('a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO t VALUES ('c'); INSERT INTO t VALUES ('d');
    END;
    /* only a comment; */
    SELECT 1
    """
    parts = split_statements(script)
    assert len(parts) == 4
    assert parts[1].endswith("INSERT INTO t VALUES ('a;b');")  # comments ride along
    assert parts[2].startswith("CREATE TRIGGER") and parts[2].endswith("END;")
    assert parts[3].endswith("SELECT 1")


def test_shipped_sqlite_migrations(conn: sqlite3.Connection) -> None:
    found = discover(SQLITE_MIGRATIONS)
    assert found[0].filename == "0001_initial.sql"
    apply_sqlite(conn, found)
    assert {
        "candles",
        "candle_history",
        "quotes_l1",
        "symbol_universe",
        "universe_versions",
        "ingestion_cursor",
        "backfill_jobs",
    } <= tables(conn)
