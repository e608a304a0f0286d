import threading

import pytest

from recorderd.daemon.diskpool import DiskPool


def test_work_for_one_key_runs_in_order_on_one_thread() -> None:
    pool = DiskPool(threads=3)
    seen: dict[str, list[tuple[int, str]]] = {}

    def job(key: str, i: int) -> int:
        seen.setdefault(key, []).append((i, threading.current_thread().name))
        return i

    futs = [pool.submit(f"k{k}", lambda k=k, i=i: job(f"k{k}", i)) for i in range(200) for k in range(5)]
    assert [f.result(timeout=5) for f in futs] == [i for i in range(200) for _ in range(5)]
    pool.shutdown()
    for entries in seen.values():
        assert [i for i, _ in entries] == list(range(200))
        assert len({name for _, name in entries}) == 1


def test_exceptions_reach_the_caller_and_the_pool_survives() -> None:
    pool = DiskPool(threads=1)

    def boom() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        pool.submit("a", boom).result(timeout=5)
    assert pool.submit("a", lambda: 42).result(timeout=5) == 42
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit("a", lambda: 1)
