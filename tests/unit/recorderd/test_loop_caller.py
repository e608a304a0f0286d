"""LoopCaller: callbacks from threads reach the loop in order, with one wake-up per batch, so a
burst of them cannot fill the loop's self-pipe and drop a signal (SIGTERM) arriving meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from recorderd.daemon.diskpool import loop_caller


async def test_a_signal_survives_a_burst_of_thread_callbacks() -> None:
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    try:
        caller = loop_caller(loop)
        assert loop_caller(loop) is caller
        done: list[int] = []

        finished = asyncio.Event()

        def burst() -> None:  # 2,000 recordings sealed at once, say
            for i in range(2000):
                caller.call(done.append, i)
            caller.call(finished.set)

        t = threading.Thread(target=burst)
        t.start()
        t.join()  # the loop is busy meanwhile: it does not drain its self-pipe
        os.kill(os.getpid(), signal.SIGUSR1)
        # One call_soon_threadsafe per callback would have filled the pipe (a few hundred bytes)
        # and the signal's byte would have been dropped: the handler would never run.
        await asyncio.wait_for(got.wait(), 5)
        await asyncio.wait_for(finished.wait(), 5)
        assert done == list(range(2000))
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


async def test_a_failing_callback_does_not_stop_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    caller = loop_caller(asyncio.get_running_loop())
    done: list[str] = []

    def boom() -> None:
        raise ValueError("bad")

    ready = asyncio.Event()

    def calls() -> None:
        caller.call(boom)
        caller.call(done.append, "after")
        caller.call(ready.set)

    threading.Thread(target=calls).start()
    await asyncio.wait_for(ready.wait(), 5)
    assert done == ["after"]
    assert any("failed" in r.getMessage() for r in caplog.records)
