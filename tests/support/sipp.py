"""SIP calls that carry real speech, for the real-PBX lane: G.711 μ-law, RTP in a pcap, SIPp scenarios.

SIPp (Debian `sip-tester`) plays RTP from a pcap with the pcap's own timing (`play_pcap_audio`), so a
pcap decides exactly what the caller sends and when: continuous 20 ms packets (silence as μ-law
0xFF), or packets only while someone speaks (silence suppression: no packets in the pauses, the RTP
timestamp jumps over them and the marker bit starts each talkspurt).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SIPP = shutil.which("sipp")
RATE = 8000
PACKET_SAMPLES = 160  # 20 ms of 8 kHz audio per RTP packet
_BIAS = 0x84
_CLIP = 32635


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """G.711 μ-law of 16-bit samples."""
    x = pcm.astype(np.int32) >> 2  # as the reference (Sun) encoder: 14 bits, rounding towards -inf
    sign = (x < 0).astype(np.int32)
    mag = np.minimum(np.abs(x), _CLIP >> 2) + (_BIAS >> 2)
    exponent = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 5, 0, 7)
    mantissa = (mag >> (exponent + 1)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _BIAS) << exponent
    value = mag - _BIAS
    return np.where(u & 0x80, -value, value).astype(np.int16)


@dataclass(frozen=True)
class Spurt:
    """Speech starting ``at`` seconds after the caller's first packet."""

    at: float
    pcm: npt.NDArray[np.int16]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(
    path: Path, spurts: list[Spurt], *, total_s: float, source_port: int, suppress_silence: bool
) -> None:
    """A pcap of PCMU RTP from 127.0.0.1:``source_port``, ``total_s`` long, with ``spurts`` in it.

    ``suppress_silence``: packets only inside the spurts (as a phone with VAD sends), else a
    packet every 20 ms for the whole length, silence (0xFF) between the spurts."""
    n_packets = round(total_s * RATE / PACKET_SAMPLES)
    timeline = np.zeros(n_packets * PACKET_SAMPLES, dtype=np.int16)
    speaking = np.zeros(n_packets, dtype=bool)
    for spurt in spurts:
        start = round(spurt.at * RATE)
        end = start + len(spurt.pcm)
        if end > len(timeline):
            raise ValueError(f"spurt at {spurt.at} s does not fit in {total_s} s")
        timeline[start:end] = spurt.pcm
        speaking[start // PACKET_SAMPLES : -(-end // PACKET_SAMPLES)] = True
    payload = ulaw_encode(timeline)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet link type
    seq, ssrc, previous_sent = 1000, 0x5EC0DE, False
    lo = socket.inet_aton("127.0.0.1")
    dest_port = 6000  # SIPp rewrites it to the port in the PBX's SDP
    for i in range(n_packets):
        if suppress_silence and not speaking[i]:
            previous_sent = False
            continue
        marker = 0x80 if (i == 0 or (suppress_silence and not previous_sent)) else 0
        previous_sent = True
        rtp = struct.pack("!BBHII", 0x80, marker, seq & 0xFFFF, (i * PACKET_SAMPLES) & 0xFFFFFFFF, ssrc)
        rtp += payload[i * PACKET_SAMPLES : (i + 1) * PACKET_SAMPLES]
        seq += 1
        udp_len = 8 + len(rtp)
        pseudo = lo + lo + struct.pack("!BBH", 0, 17, udp_len)
        udp_nosum = struct.pack("!HHHH", source_port, dest_port, udp_len, 0) + rtp
        udp_sum = _checksum(pseudo + udp_nosum) or 0xFFFF
        udp = struct.pack("!HHHH", source_port, dest_port, udp_len, udp_sum) + rtp
        ip_nosum = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i & 0xFFFF, 0, 64, 17, 0, lo, lo)
        ip = ip_nosum[:10] + struct.pack("!H", _checksum(ip_nosum)) + ip_nosum[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        t_us = i * PACKET_SAMPLES * 1_000_000 // RATE
        out.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def uac_scenario(*, caller: str, caller_name: str, dialled: str, pcap: Path) -> str:
    """A SIPp UAC: INVITE with a PCMU offer, ACK, play ``pcap`` as the caller's RTP, then wait
    for the PBX to hang up (BYE) and answer it."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="recorderd real-PBX lane: a caller who speaks">
  <send retrans="500">
    <![CDATA[
      INVITE sip:{dialled}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{caller_name}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{dialled}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: recorderd real-PBX lane
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=lane 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:{dialled}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{caller_name}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{dialled}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
  <recv request="BYE" timeout="90000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@dataclass
class SippResult:
    returncode: int
    output: str


def run_uac(
    workdir: Path, scenario: str, *, pbx_port: int, sip_port: int, media_port: int, timeout: float
) -> SippResult:
    """Place one call and wait for SIPp to exit (it exits when the PBX has hung up)."""
    assert SIPP is not None
    workdir.mkdir(parents=True, exist_ok=True)
    xml = workdir / "uac.xml"
    xml.write_text(scenario)
    cmd = [
        SIPP, f"127.0.0.1:{pbx_port}", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(sip_port),
        "-mi", "127.0.0.1", "-mp", str(media_port), "-m", "1", "-l", "1", "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 10, check=False)
    errors = "".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    return SippResult(proc.returncode, proc.stdout[-3000:] + proc.stderr[-2000:] + errors[-3000:])
