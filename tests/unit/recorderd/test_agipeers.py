"""Who may open an AGI session (``[agi] peers``), and how refusals are logged (aggregated)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from recorderd.config import ConfigError, parse_config
from recorderd.config.model import AgiConfig
from recorderd.daemon.agipeers import PeerFilter


def test_default_is_loopback_only() -> None:
    f = PeerFilter(AgiConfig().peer_networks())
    assert f.allowed("127.0.0.1") and f.allowed("::1") and f.allowed("::ffff:127.0.0.1")
    assert not f.allowed("127.0.0.2") and not f.allowed("192.168.1.10") and not f.allowed("garbage")


def test_networks_and_addresses() -> None:
    f = PeerFilter(AgiConfig(peers=["10.0.0.0/24", "192.168.1.5"]).peer_networks())
    assert f.allowed("10.0.0.77") and f.allowed("192.168.1.5")
    assert not f.allowed("10.0.1.1") and not f.allowed("127.0.0.1")


def test_refusals_are_one_line_per_address_per_interval_with_a_count() -> None:
    now = [1000.0]
    f = PeerFilter(AgiConfig().peer_networks(), interval_s=60, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(500):
            assert not f("10.9.9.9")
        assert not f("10.9.9.8")
        now[0] += 61
        assert not f("10.9.9.9")
        assert f("127.0.0.1")
    lines = [(e["peer"], e["count"]) for e in logs if e["event"] == "agi_peer_refused"]
    assert lines == [("10.9.9.9", 1), ("10.9.9.8", 1), ("10.9.9.9", 500)]
    assert f.refused_total == 502


def test_bad_peer_in_config_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match="not-an-address"):
        parse_config('data_dir = "/tmp/x"\n[agi]\npeers = ["not-an-address"]\n'
                     '[encryption]\nrecipients = ["age1x"]\n')  # fmt: skip
