"""Measure the stereo capture (ChanSpy ``D`` over AudioSocket) against the mono mix on the real lane.

    RECORDERD_ASTERISK=/var/cache/recorderd/asterisk-20.20.1 python -m tests.real_pbx.measure_stereo

(as root, from the checkout; PYTHONPATH must hold tests/ and the checkout: the command sets it).
One Asterisk, one daemon; the same scripted call to the mono line and to the stereo line, with
continuous RTP and with silence suppression, ``--rounds`` times; then a stereo call during which the
daemon is killed (SIGKILL) mid-call. Prints one JSON line per call: each voice's gain and position
in its channel, the timeline errors, the pieces of speech that slipped (and by how much), and the
CPU seconds Asterisk and the daemon used during the call. docs/decisions.md quotes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
from pathlib import Path

from real_pbx.lane import RECORDED_LINE, STEREO_LINE, Lane, Recording, locate, pieces
from real_pbx.test_calls import timeline_errors

CALLER_SIDE = ("hello", "caller 1", "caller 2")
CITY_SIDE = ("announcement", "agent")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def analyse(lane: Lane, rec: Recording, stereo: bool) -> dict[str, object]:
    refs = {"announcement": lane.announcement, "agent": lane.agent, **lane.caller}
    out: dict[str, object] = {}
    sounds: dict[str, tuple[float, float]] = {}
    slips: dict[str, list[float]] = {}
    for name, ref in refs.items():
        samples = rec.right if stereo and name in CITY_SIDE else rec.samples
        assert samples is not None
        f = locate(samples, ref)
        sounds[name] = (round(f.gain, 3), round(f.at_s, 4))
        got = pieces(samples, ref, f.at_s, search_s=0.2)
        slips[name] = [round(p.slip_s, 3) for p in got if abs(p.slip_s) >= 0.01 or p.gain < 0.5]
    if stereo:
        assert rec.right is not None
        leak = {n: round(locate(rec.right, refs[n]).gain, 3) for n in CALLER_SIDE}
        leak |= {n: round(locate(rec.samples, refs[n]).gain, 3) for n in CITY_SIDE}
        out["in_the_other_channel"] = leak
    out["sounds"] = sounds
    out["slipped_pieces_s"] = {k: v for k, v in slips.items() if v}
    out["timeline_errors_s"] = {k: round(v, 4) for k, v in timeline_errors(sounds, lane).items()}
    return out


def one_call(lane: Lane, n: int, line: str, suppress: bool) -> dict[str, object]:
    assert lane.daemon is not None
    caller = f"03111160{n:02d}"
    ast0, d0 = cpu_seconds(lane.pbx.proc.pid), cpu_seconds(lane.daemon.proc.pid)  # type: ignore[union-attr]
    lane.call(caller=caller, dialled=line, suppress_silence=suppress)
    row = lane.wait_row(lambda r: r.remote_number == caller)
    ast1, d1 = cpu_seconds(lane.pbx.proc.pid), cpu_seconds(lane.daemon.proc.pid)  # type: ignore[union-attr]
    stereo = line == STEREO_LINE
    rec = lane.recording(row, channels=2 if stereo else 1)
    result: dict[str, object] = {
        "mode": "stereo" if stereo else "mono", "suppressed": suppress, "status": row.status,
        "seconds": round(len(rec.samples) / 8000, 3), "asterisk_cpu_s": round(ast1 - ast0, 2),
        "daemon_cpu_s": round(d1 - d0, 2),
    }  # fmt: skip
    return result | analyse(lane, rec, stereo)


def killed_mid_call(lane: Lane) -> dict[str, object]:
    """SIGKILL the daemon 6 s into a stereo call: the call must go on; nothing in plaintext."""
    assert lane.daemon is not None
    proc = lane.daemon.proc
    timer = threading.Timer(6.0, proc.kill)
    timer.start()
    lane.call(caller="0311116099", dialled=STEREO_LINE)  # asserts SIPp's whole scenario passed
    timer.join()
    part = [p.name for p in lane.data_dir.rglob("*.part")]
    plain = [p.name for p in lane.pbx.root.rglob("*") if p.suffix in {".wav", ".au", ".raw", ".sln", ".gsm"}
             and "sounds" not in p.parts]  # fmt: skip
    return {"daemon_killed_mid_call": True, "call_completed": True, "encrypted_part_files": part,
            "plaintext_audio_files_on_pbx": plain}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stereo-measure-") as tmp:
        lane = Lane(Path(tmp))
        try:
            lane.start()
            n = 0
            for _ in range(args.rounds):
                for suppress in (False, True):
                    for line in (RECORDED_LINE, STEREO_LINE):
                        n += 1
                        print(json.dumps(one_call(lane, n, line, suppress)), flush=True)
            print(json.dumps(killed_mid_call(lane)), flush=True)
        finally:
            lane.close()


if __name__ == "__main__":
    main()
