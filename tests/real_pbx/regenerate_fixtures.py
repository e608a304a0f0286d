"""Regenerate the fixture pack from the real lane (issue 15, part 2).

    RECORDERD_ASTERISK=/var/cache/recorderd/asterisk-20.20.1 \\
        PYTHONPATH=tests:. python -m real_pbx.regenerate_fixtures --out /tmp/asterisk-20-lane

(as root: SIPp's RTP). Starts the lane with capture proxies on AGI, AMI and AudioSocket, places the
scenarios below (real SIP calls carrying speech, the real daemon) and writes, in the format of
fixtures/asterisk-20 (its README): ``agi/<name>.txt`` + ``.env.json``, ``ami/<name>.txt`` (the
daemon's AMI session from the call's start to its end: the login is in ``ami/login.txt``) and
``audiosocket/<name>.bin`` + ``.json``. The project's fixtures are not overwritten: compare, then copy
what should replace them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from real_pbx.capture import Connection, write_markers
from real_pbx.conversation import agi_environment, parse_env
from real_pbx.lane import CITY_NUMBER, EXCLUDED_LINE, RECORDED_LINE, STAFF_EXTENSION, STEREO_LINE, Lane
from storage.models import Call

SCENARIOS = {  # name: (caller, dialled, what)
    "lane-sip-inbound": ("0311117001", RECORDED_LINE, "inbound SIP call, recorded, announcement, agent"),
    "lane-sip-stereo": ("0311117002", STEREO_LINE, "the same to a stereo line (ChanSpy D)"),
    "lane-sip-outbound": (STAFF_EXTENSION, CITY_NUMBER, "outbound SIP call from extension 201"),
    "lane-sip-excluded": ("0311117004", EXCLUDED_LINE, "inbound SIP call to an excluded line"),
}  # fmt: skip


def audiosocket_sidecar(name: str, what: str, conn: Connection, clock0: float) -> dict[str, object]:
    data = conn.sent_by("asterisk")
    kinds: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    pos, uuid_hex = 0, ""
    while pos + 3 <= len(data):
        kind, length = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        kinds[f"0x{kind:02x}"] += 1
        if kind == 0x01:
            uuid_hex = data[pos + 3 : pos + 3 + length].hex()
        if kind == 0x10:
            sizes[str(length)] += 1
        pos += 3 + length
    frames = kinds["0x10"]
    per_frame = max((int(k) for k in sizes), default=320)
    return {
        "file": f"{name}.bin", "context": what,
        "uuid": f"{uuid_hex[:8]}-{uuid_hex[8:12]}-{uuid_hex[12:16]}-{uuid_hex[16:20]}-{uuid_hex[20:]}",
        "bytes_total": len(data), "tcp_accepted_at_capture_clock_s": round(conn.opened - clock0, 3),
        "messages_by_type": dict(kinds), "frame_count": frames, "frame_payload_bytes": dict(sizes),
        "audio_seconds_by_frames": round(frames * 0.02, 2),
        "channels": 2 if per_frame == 640 else 1,
        "closed_by": "asterisk: TCP FIN, no 0x00 message" if data and not pos - len(data) else "?",
        "trailing_unparsed_bytes": len(data) - pos,
    }  # fmt: skip


def agi_sidecar(conn: Connection) -> dict[str, object]:
    raw = agi_environment_raw(conn)
    commands: list[dict[str, object]] = []
    for piece in conn.pieces:
        text = piece.data.decode(errors="replace")
        if piece.src == "agi-server" and piece.data:
            commands.append({"sent": text.strip(), "received_lines": []})
        elif piece.src == "asterisk" and commands:
            lines = commands[-1]["received_lines"]
            assert isinstance(lines, list)
            lines += [line for line in text.splitlines() if line]
    return {"env": raw, "commands": commands}


def agi_environment_raw(conn: Connection) -> dict[str, str]:
    head = conn.sent_by("asterisk").decode(errors="replace").split("\n\n", 1)[0]
    return parse_env(head)


def remote_is(number: str) -> Callable[[Call], bool]:
    return lambda row: row.remote_number == number


def window(conn: Connection, start: float, end: float) -> Connection:
    return Connection(conn.opened, [p for p in conn.pieces if start <= p.t <= end])


def capture(lane: Lane, out: Path) -> dict[str, dict[str, object]]:
    """Place every scenario on ``lane`` (started, with capture proxies) and write the files."""
    for sub in ("agi", "ami", "audiosocket"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    proxies = lane.proxies
    clock0 = proxies["ami"].connections[0].opened
    ami = proxies["ami"].connections[0]
    login_end = ami.pieces[3].t if len(ami.pieces) > 3 else time.monotonic()
    login = "#### AMI capture (real lane): the daemon's login and the events before any call"
    write_markers(out / "ami" / "lane-login.txt", login, window(ami, 0, login_end), clock0)
    summary: dict[str, dict[str, object]] = {}
    for name, (caller, dialled, what) in SCENARIOS.items():
        seen = {k: len(p.connections) for k, p in proxies.items()}
        start = time.monotonic()
        lane.call(caller=caller, dialled=dialled)
        if dialled == EXCLUDED_LINE:
            lane.wait_row(lambda r: r.status == "excluded")
        else:
            lane.wait_row(remote_is(caller if caller != STAFF_EXTENSION else dialled))
        end = time.monotonic()
        agi = proxies["agi"].connections[seen["agi"] :]
        spies = proxies["audiosocket"].connections[seen["audiosocket"] :]
        for conn in [*agi, *spies]:
            conn.done.wait(10)
        title = f"#### %s capture (real lane, Asterisk 20.20.1, recorderd): {what}"
        for k, conn in enumerate(agi):
            stem = name if k == 0 else f"{name}-{k}"
            write_markers(out / "agi" / f"{stem}.txt", title % "FastAGI", conn, clock0)
            (out / "agi" / f"{stem}.env.json").write_text(json.dumps(agi_sidecar(conn), indent=2) + "\n")
        write_markers(out / "ami" / f"{name}.txt", title % "AMI", window(ami, start, end), clock0)
        for k, conn in enumerate(spies):
            stem = name if k == 0 else f"{name}-{k}"
            (out / "audiosocket" / f"{stem}.bin").write_bytes(conn.sent_by("asterisk"))
            side = audiosocket_sidecar(stem, what, conn, clock0)
            (out / "audiosocket" / f"{stem}.json").write_text(json.dumps(side, indent=2) + "\n")
        summary[name] = {"agi_sessions": len(agi), "spies": len(spies),
                         "env": agi_environment(agi[0]) if agi else {}}  # fmt: skip
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lane-fixtures-") as tmp:
        lane = Lane(Path(tmp), capture=True)
        try:
            lane.start()
            summary = capture(lane, args.out)
        finally:
            lane.close()
    for name, facts in summary.items():
        print(name, json.dumps({k: v for k, v in facts.items() if k != "env"}))
    print(f"written under {args.out}")


if __name__ == "__main__":
    main()
