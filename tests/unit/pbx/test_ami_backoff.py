"""AmiClient pieces that need no server: backoff arithmetic, argument checks, not-connected actions."""

from __future__ import annotations

import random

import pytest

from pbx.ami.client import AmiClient, AmiNotConnected, backoff_delay


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(1)
    for failures, bound in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (10_000, 30.0)]:
        delays = [backoff_delay(failures, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # the whole range is used, not just its top
        assert min(delays) < bound * 0.2


@pytest.mark.parametrize(
    "options",
    [
        {"ping_interval": 0},
        {"backoff_initial": -1},
        {"action_timeout": 0},
        {"backoff_initial": 2, "backoff_max": 1},
    ],
)
def test_bad_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message is not the point)
        AmiClient("h", 1, "u", "s", on_event=lambda m: None, **options)  # type: ignore[arg-type]


async def test_action_before_run_raises_not_connected() -> None:
    client = AmiClient("127.0.0.1", 1, "u", "s", on_event=lambda m: None)
    assert not client.connected
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")
