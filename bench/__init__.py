"""Benchmarks for recorderd (issue 6). Not tests: each writes its figures into docs/PERFORMANCE.md.

One command per benchmark::

    python -m bench.concurrent_calls --calls 100,500,1000,2000 --seconds 30
    python -m bench.encryption --hours 1
    python -m bench.startup --runs 5

CI runs only a tiny smoke version of each (tests/bench/test_bench_smoke.py).
"""
