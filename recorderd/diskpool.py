"""A pool of threads that do the slow disk work (encrypt, write, fsync) for every recording.

Each recording is pinned to one thread, so its chunks are written in order without locks, and the
event loop only appends bytes to a buffer. fsync of one call never delays another call's frames.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# The daemon's pool size, whatever the number of cores: a disk thread spends its time waiting (for
# fsync, and for the GIL between its system calls while the event loop holds it), not computing.
# With 3,000 calls on one core, 4 threads let blocks queue for seconds, 16 kept it to tens of ms
# (docs/PERFORMANCE.md).
DISK_THREADS = 16

_STOP = object()


class DiskPool:
    def __init__(self, threads: int = 4, *, name: str = "recorderd-disk") -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self._queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"{name}-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()
        self._closed = False

    def submit(self, key: str, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the thread that owns ``key``, after everything submitted before for that key."""
        if self._closed:
            raise RuntimeError("disk pool is shut down")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queues[zlib.crc32(key.encode()) % len(self._queues)].put((fut, fn))
        return fut

    @staticmethod
    def _work(q: queue.SimpleQueue[Any]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            fut, fn = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiter, never lost in the thread
                fut.set_exception(exc)

    def shutdown(self) -> None:
        """Finish queued work, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        for q in self._queues:
            q.put(_STOP)
        for t in self._threads:
            t.join()
