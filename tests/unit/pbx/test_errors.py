"""Protocol errors end up in logs: they must never carry a full phone number."""

import pytest

from pbx.agi.protocol import AgiServerConnection
from pbx.ami.protocol import AmiClientConnection
from pbx.errors import PeerProtocolError, excerpt


def test_excerpt_masks_digit_runs_and_bounds_length() -> None:
    assert excerpt(b"CallerIDNum: 09012345678") == "'CallerIDNum: 09*******78'"
    assert excerpt("agi_extension: 201") == "'agi_extension: 201'"  # short runs are not numbers
    assert len(excerpt(b"x" * 10_000)) < 100


def test_ami_non_utf8_line_error_hides_the_number() -> None:
    conn = AmiClientConnection()
    conn.receive_data(
        b"Asterisk Call Manager/9.0.0\r\nEvent: Newchannel\r\nCallerIDNum: 09012345678\xff\r\n\r\n"
    )
    conn.next_event()  # banner
    with pytest.raises(PeerProtocolError) as err:
        conn.next_event()
    assert "09012345678" not in str(err.value) and "09*******78" in str(err.value)


def test_agi_env_line_error_hides_the_number() -> None:
    conn = AgiServerConnection()
    conn.receive_data(b"agi_callerid 0311112222\n")
    with pytest.raises(PeerProtocolError) as err:
        conn.next_event()
    assert "0311112222" not in str(err.value)
