"""A stdlib-only simulator of the captured Asterisk 20.20.1 (FastAGI client, AMI server, ChanSpy
AudioSocket streams), faithful to ``fixtures/asterisk-20``. It shares no code with the daemon's
own protocol parsers, so a bug there cannot hide in the tests that use it.
"""

from pbx.simulator.model import CallResult, SimCall
from pbx.simulator.simulator import PbxSimulator

__all__ = ["CallResult", "PbxSimulator", "SimCall"]
