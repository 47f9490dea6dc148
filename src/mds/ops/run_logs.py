"""The log lines one task run emitted, for its ``job_run`` row (the admin Jobs drill-in).

A run's execution sets :data:`_current` to its own :class:`RunLog`; one
:class:`RunLogHandler` on the root logger appends every record it sees to the log of the
context the record was emitted in. asyncio copies the context into each task it creates
(and ``asyncio.to_thread`` into its thread), so what a run's task and its children log
lands in that run's log, and concurrent runs, each in its own task, never mix. Records
emitted outside any run are ignored.

Only records their logger lets through are seen (``LOG_LEVEL`` decides, as for stderr).
Lines are bounded in count and length and redacted, since they are shown in the console.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from mds.redact import redact

#: The newest lines a run keeps (over all its attempts), and the longest line kept.
MAX_LINES = 200
MAX_LINE_CHARS = 500

_current: ContextVar[RunLog | None] = ContextVar("mds_run_log", default=None)


class RunLog:
    """The newest :data:`MAX_LINES` lines of one run, oldest first."""

    def __init__(self, previous: list[str] | None = None) -> None:
        # A retried run keeps its earlier attempts' lines in front of the new ones.
        self._lines: deque[str] = deque(previous or (), maxlen=MAX_LINES)

    def add(self, line: str) -> None:
        # One line each; NUL dropped, as PostgreSQL's jsonb cannot hold it.
        text = " | ".join(line.replace("\x00", "").splitlines())
        self._lines.append(redact(text)[:MAX_LINE_CHARS])

    def note(self, level: int, source: str, message: str) -> None:
        """Add a line the runner itself writes (an outcome), stamped now."""
        self.add(_line(datetime.now(UTC), logging.getLevelName(level), source, message))

    @property
    def lines(self) -> list[str]:
        return list(self._lines)


def _line(at: datetime, level: str, source: str, message: str) -> str:
    return f"{at.isoformat(timespec='milliseconds')} {level} {source}: {message}"


class RunLogHandler(logging.Handler):
    """Appends each record to the log of the run whose context emitted it."""

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message += f" ({type(exc).__name__}: {exc})"  # one line, not the traceback
            log.add(
                _line(datetime.fromtimestamp(record.created, UTC), record.levelname, record.name, message)
            )
        except Exception:
            self.handleError(record)


def install() -> None:
    """Put the one :class:`RunLogHandler` on the root logger (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h, RunLogHandler) for h in root.handlers):
        root.addHandler(RunLogHandler())


@contextlib.contextmanager
def capturing(log: RunLog) -> Iterator[RunLog]:
    """Send what this context (and the tasks it creates meanwhile) logs to ``log``."""
    install()
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)
