"""A one-thread executor with two lanes: live work runs before queued backfill work.

The SQLite store does every query on one writer thread and one reader thread. With a
plain ThreadPoolExecutor those serve in arrival order, so a live sweep's write waited
behind every backfill write already queued; with a deep backlog that was most of a
cadence. Here work submitted from a task marked as backfill (``mds.domain.work``) goes
to the second lane, and the thread takes the first lane's work whenever it has any.
A backfill statement already running is never interrupted, so a live write waits at most
for one of them. Hand-written: the standard library's executors have no priorities.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from mds.domain import work

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class LaneExecutor(Executor):
    def __init__(self, thread_name: str) -> None:
        self._live: deque[_Item] = deque()
        self._backfill: deque[_Item] = deque()
        self._cv = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name=thread_name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cv:
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            lane = self._backfill if work.is_backfill() else self._live
            lane.append((future, fn, args, kwargs))
            self._cv.notify()
        return future

    def queued(self) -> tuple[int, int]:
        """Work waiting in the (live, backfill) lanes."""
        with self._cv:
            return len(self._live), len(self._backfill)

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._live and not self._backfill and not self._closing:
                    self._cv.wait()
                if not self._live and not self._backfill:
                    return  # closing, and nothing left to run
                future, fn, args, kwargs = (self._live or self._backfill).popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cv:
            self._closing = True
            if cancel_futures:
                for lane in (self._live, self._backfill):
                    while lane:
                        lane.popleft()[0].cancel()
            self._cv.notify_all()
        if wait:
            self._thread.join()
