"""What a local peer can make the daemon write (issue 12 item 9): junk connections are counted, one
line per peer per interval; a peer's bytes reach an alert escaped and cut short; the configuration
takes no string for a number."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from e2e.conftest import Harness, MakeHarness
from pbx.peerlog import PeerLog
from recorderd.config import ConfigError, parse_config
from support.recordings import when

pytestmark = pytest.mark.timeout(60)

EVIL = "Authentication failed \x1b[2J\x1b[31mFAKE: all calls deleted\r\n" + "A" * 5000


async def _hostile_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An AMI peer that refuses the login with terminal escapes and a 5 kB message."""
    writer.write(b"Asterisk Call Manager/7.0.3\r\n")
    block = await reader.readuntil(b"\r\n\r\n")
    action_id = re.search(rb"ActionID: ([^\r]+)", block)
    assert action_id is not None
    message = EVIL.replace("\r\n", " ").encode()
    writer.write(
        b"Response: Error\r\nActionID: " + action_id.group(1) + b"\r\nMessage: " + message + b"\r\n\r\n"
    )
    await writer.drain()
    writer.close()


async def test_the_pbx_link_alert_quotes_the_peer_escaped_and_truncated(make_harness: MakeHarness) -> None:
    server = await asyncio.start_server(_hostile_ami, "127.0.0.1", 0)
    try:
        h = await make_harness(ami_port=server.sockets[0].getsockname()[1])
        events = h.daemon.events
        if "pbx_link_down" not in events.open_alerts:
            await asyncio.wait_for(when(events, "pbx_link_down", state="raised"), 15)
        detail = str(events.open_alerts["pbx_link_down"]["detail"])
        assert "\x1b" not in detail and "\\x1b" in detail  # escaped, not interpreted by a terminal
        assert len(detail) <= 130, len(detail)
    finally:
        server.close()


async def test_junk_connections_are_one_line_per_peer(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = await make_harness()
    caplog.set_level(logging.INFO, logger="pbx")
    for port in (h.endpoints.agi_port, h.endpoints.audiosocket_port):
        for _ in range(200):
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"\xff" * 64 + b"\n" * 3)  # not AGI, not AudioSocket
            await w.drain()
            w.close()
    # Wait until both servers have seen and closed every one (they log each end, counted or not).
    assert h.daemon.manager is not None
    async with asyncio.timeout(20):
        while True:
            if sum(p.counted for p in _peerlogs(h)) == 2 * 199:
                break
            await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pbx")]
    assert len(lines) == 2, lines  # the first of each server, at once
    for p in _peerlogs(h):
        p.flush_all()  # the interval's end (or shutdown): one line with the count
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pbx")]
    assert len(lines) == 4, lines
    assert any("AGI 127.0.0.1: 199 more like this in 60s" in line for line in lines), lines
    assert any("AudioSocket 127.0.0.1: 199 more like this in 60s" in line for line in lines), lines


def _peerlogs(h: Harness) -> list[PeerLog]:
    agi, spy = h.daemon.agi_server, h.daemon.audiosocket_server
    assert agi is not None and spy is not None
    return [agi.peerlog, spy.peerlog]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[ami]\nport = "5038"\n', "ami.port"),
        ('[ami]\nenabled = "false"\n', "ami.enabled"),
        ('[mqtt]\nhost = "x"\nport = "1883"\n', "mqtt.port"),
        ('[agi]\nenv_timeout_s = "5"\n', "agi.env_timeout_s"),
        ('[people.passwords]\nmin_length = "12"\n', "min_length"),
    ],
)
def test_a_string_is_not_a_number_in_the_config(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(text)
    assert parse_config("[agi]\nenv_timeout_s = 5\n").agi.env_timeout_s == 5.0  # an int is a number
