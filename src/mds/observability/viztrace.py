"""VizTracer captures of slow requests, kept in a folder bounded in file count and size.

A capture records every Python call of this thread while it runs; the file is kept only
when the request it covered was slow. Open a kept file with ``vizviewer <file>``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from viztracer import VizTracer  # type: ignore[import-untyped]

from mds.config import Settings

#: Kept files are named ``<PREFIX><ns>-<label>-<ms>ms.json``; only such files are pruned.
PREFIX = "mds-request-"
#: About what one call costs in the saved JSON (name, file:line, timestamps): sizes the
#: ring buffer so a full buffer still saves under VIZTRACER_MAX_FILE_MB.
ENTRY_BYTES = 160
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class TraceFolder:
    """``VIZ_OUT_DIR``: at most ``max_files`` kept traces (the oldest go first), none larger
    than ``max_bytes``."""

    def __init__(self, path: Path, *, max_files: int, max_bytes: int) -> None:
        self.path = path
        self.max_files = max_files
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> TraceFolder:
        return cls(
            Path(settings.VIZ_OUT_DIR),
            max_files=settings.VIZTRACER_MAX_FILES,
            max_bytes=int(settings.VIZTRACER_MAX_FILE_MB * 1024 * 1024),
        )

    def name_for(self, label: str, elapsed_ms: float) -> Path:
        slug = _UNSAFE.sub("_", label).strip("_")[:80] or "request"
        return self.path / f"{PREFIX}{time.time_ns()}-{slug}-{elapsed_ms:.0f}ms.json"

    def kept(self) -> list[Path]:
        """Kept traces, oldest first (the name starts with its time in ns)."""
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob(f"{PREFIX}*.json"), key=lambda p: p.name)

    def save(self, tracer: VizTracer, label: str, elapsed_ms: float) -> Path | None:
        """Write ``tracer``'s capture; keep it if small enough, then prune. Blocking."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.name_for(label, elapsed_ms)
        partial = target.with_name(target.name + ".partial.json")  # not matched by kept()
        try:
            tracer.save(str(partial))
            if partial.stat().st_size > self.max_bytes:
                return None
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        self.prune()
        return target

    def prune(self) -> None:
        files = self.kept()
        for old in files[: max(0, len(files) - self.max_files)]:
            old.unlink(missing_ok=True)


def new_tracer(settings: Settings) -> VizTracer:
    """A VizTracer whose ring buffer holds what VIZTRACER_MAX_FILE_MB can: a long request
    keeps its last calls rather than growing without bound."""
    entries = max(10_000, int(settings.VIZTRACER_MAX_FILE_MB * 1024 * 1024 / ENTRY_BYTES))
    return VizTracer(
        tracer_entries=entries,
        verbose=0,
        register_global=False,  # not the process's global tracer: this one is ours alone
        file_info=False,  # no source text in the file: smaller, and no code in traces
        log_async=True,  # a task per track: an async request reads as one
    )
