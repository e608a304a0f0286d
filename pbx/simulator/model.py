"""What a simulated call is (:class:`SimCall`) and what came out of it (:class:`CallResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pbx.errors import UsageError

__all__ = ["CallResult", "SimCall"]


@dataclass(frozen=True)
class SimCall:
    """One call offered to the daemon, shaped after the captured scenarios.

    Audio is signed 16-bit little-endian PCM at 8 kHz mono (what ``c(slin)`` carries).
    """

    caller: str  # calling number ("0311112222"); outbound: the extension ("201")
    dialled: str  # "0668585050"; outbound: "0312345678"
    direction: Literal["inbound", "outbound"] = "inbound"
    # Local: the ;2 leg of an AMI-originated Local channel, as in agi/local-inbound.txt
    # (agi_dnid "unknown", Linkedid is the ;1 leg, no frames while nothing is audible).
    tech: Literal["SIP", "Local"] = "SIP"
    caller_name: str = "SIPp Caller"
    caller_audio: bytes = b""  # what the caller says, after the AGI returns
    agent_audio: bytes = b""  # what the agent / PBX plays to the caller, after the caller's speech
    # Dial() after the AGI and bridge: an agent channel like ami/sip-bridged-call.txt (inbound), the
    # far end through Local/<dialled>@trunk-sim like the real lane's outbound call (outbound)
    bridged: bool = False
    # The caller hangs up this many seconds of call time after the AGI connection opened.
    hangup_after_agi_s: float | None = None
    # ChanSpy attaches this long after the AudioSocket UUID; audio before that is lost.
    spy_attach_delay_s: float = 0.12
    # Silence suppression (DTX) on the line, also what hold does: RTP flows only while someone
    # speaks, and ChanSpy then sends NO AudioSocket frame while neither side is audible (as the
    # captured Asterisk did). Digital silence (zero samples) in caller_audio / agent_audio is
    # such a pause: no frame is sent for a 20 ms frame that is all zeros (files the PBX plays,
    # like the announcement, are sent whole).
    silence_suppression: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("inbound", "outbound"):
            raise UsageError(f"direction must be inbound or outbound, not {self.direction!r}")
        if self.tech not in ("SIP", "Local"):
            raise UsageError(f"tech must be SIP or Local, not {self.tech!r}")
        if len(self.caller_audio) % 2 or len(self.agent_audio) % 2:
            raise UsageError("caller_audio and agent_audio must hold whole 16-bit samples")
        if self.hangup_after_agi_s is not None and self.hangup_after_agi_s < 0:
            raise UsageError("hangup_after_agi_s must be >= 0")
        if self.spy_attach_delay_s < 0:
            raise UsageError("spy_attach_delay_s must be >= 0")


@dataclass
class CallResult:
    """What the simulated PBX observed during one call, for assertions."""

    uniqueid: str  # of the channel that ran the AGI
    linkedid: str
    channel: str
    agi_commands: list[str] = field(default_factory=list)  # lines the daemon sent, without "\n"
    variables: dict[str, str] = field(default_factory=dict)  # set by SET VARIABLE / EXEC Set
    originate_status: str | None = None  # ORIGINATE_STATUS after the last originate, if any
    spy_uuid: str | None = None  # UUID of the spy whose audio is in spy_pcm
    spy_pcm: bytes = b""  # exactly the 0x10 payload bytes streamed to that AudioSocket
    # (sound name, seconds into spy_pcm where it started). Negative when its start was lost
    # before ChanSpy attached; measured from the AGI start when no frame was ever streamed.
    played: list[tuple[str, float]] = field(default_factory=list)
    hung_up_by_caller: bool = False
    # The call's real timeline, on its own grid (sample 0 = call start, frame n = samples
    # [160 n, 160 n + 160)): every sound that was audible (name, first sample, end sample), the
    # spy's first streamed frame, the frame at which the call hung up, and when the spy's socket
    # was closed (a little after that: the hang-up takes the PBX some time).
    sources: list[tuple[str, int, int]] = field(default_factory=list)
    spy_first_frame: int | None = None
    end_frame: int | None = None
    spy_closed_at: float | None = None  # when the spy's AudioSocket was closed, in (fractional) frames
    agi_status: str = ""  # SUCCESS / HANGUP / FAILURE, as AGISTATUS
    agi_closed_by_daemon: bool = False
