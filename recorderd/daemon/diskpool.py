"""A pool of threads that do the slow disk work (encrypt, write, fsync) for every recording.

Each recording is pinned to one thread, so its chunks are written in order without locks, and the
event loop only appends bytes to a buffer. fsync of one call never delays another call's frames.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import weakref
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("recorderd.diskpool")

# The daemon's pool size, whatever the number of cores: a disk thread spends its time waiting (for
# fsync, and for the GIL between its system calls while the event loop holds it), not computing.
# With 3,000 calls on one core, 4 threads let blocks queue for seconds, 16 kept it to tens of ms
# (docs/PERFORMANCE.md).
DISK_THREADS = 16

_STOP = object()


class LoopCaller:
    """Runs callbacks on an event loop from other threads, with at most one wake-up pending.

    ``loop.call_soon_threadsafe`` writes one byte to the loop's self-pipe per call, and that pipe
    also carries the numbers of the signals the loop handles. It holds only a few hundred bytes
    (278 one-byte writes on Linux), so a burst of calls from threads (hundreds of recordings sealed
    at once: the PBX restarted) while the loop is busy fills it, and a SIGTERM arriving then is
    dropped ("Exception ignored when trying to write to the signal wakeup fd"): the daemon would
    not stop. Queueing the callbacks and waking the loop once per batch keeps the pipe near empty.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[Callable[..., object], tuple[Any, ...]]] = []

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        with self._lock:
            self._pending.append((fn, args))
            if len(self._pending) > 1:
                return  # a wake-up is already on its way: it runs this one too
        self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for fn, args in batch:
            try:
                fn(*args)
            except Exception:  # one bad callback must not starve the others
                log.exception("loop callback %r failed", fn)


_callers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopCaller] = weakref.WeakKeyDictionary()


def loop_caller(loop: asyncio.AbstractEventLoop) -> LoopCaller:
    """The one ``LoopCaller`` of ``loop`` (created on first use; call from the loop's thread)."""
    caller = _callers.get(loop)
    if caller is None:
        caller = _callers[loop] = LoopCaller(loop)
    return caller


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
