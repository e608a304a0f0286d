"""``python -m pbx.simulator``: offer N calls to a running daemon, print one JSON line per call.

The AudioSocket address needs no flag: the daemon names it in its ``EXEC Originate``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import wave
from pathlib import Path

from pbx.simulator.model import CallResult, SimCall
from pbx.simulator.simulator import PbxSimulator


def _pcm(path: Path | None) -> bytes:
    if path is None:
        return b""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
            raise SystemExit(f"{path}: need 8 kHz mono 16-bit PCM")
        return w.readframes(w.getnframes())


def _summary(r: CallResult) -> str:
    return json.dumps(
        {
            "uniqueid": r.uniqueid,
            "channel": r.channel,
            "agi_status": r.agi_status,
            "originate_status": r.originate_status,
            "spy_uuid": r.spy_uuid,
            "spy_seconds": len(r.spy_pcm) / 16000,
            "played": r.played,
            "variables": r.variables,
            "hung_up_by_caller": r.hung_up_by_caller,
        }
    )


async def _main(a: argparse.Namespace) -> None:
    sim = PbxSimulator(
        agi_host=a.agi_host,
        agi_port=a.agi_port,
        ami_username=a.ami_username,
        ami_secret=a.ami_secret,
        sounds_dir=a.sounds_dir,
        speed=a.speed,
    )
    await sim.start(a.ami_host, a.ami_port)
    print(json.dumps({"ami_port": sim.ami_port}), flush=True)
    call = SimCall(
        caller=a.caller,
        dialled=a.dialled,
        direction=a.direction,
        tech=a.tech,
        caller_audio=_pcm(a.caller_wav),
        agent_audio=_pcm(a.agent_wav),
        hangup_after_agi_s=a.hangup_after,
    )
    gate = asyncio.Semaphore(a.concurrency)

    async def one() -> None:
        async with gate:
            print(_summary(await sim.run_call(call)), flush=True)

    try:
        await asyncio.gather(*(one() for _ in range(a.calls)))
        if a.linger:
            await asyncio.sleep(a.linger)  # let AMI clients see the last events
    finally:
        await sim.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m pbx.simulator", description=__doc__)
    p.add_argument("--agi-host", default="127.0.0.1")
    p.add_argument("--agi-port", type=int, default=4573)
    p.add_argument("--ami-host", default="127.0.0.1")
    p.add_argument("--ami-port", type=int, default=5038)
    p.add_argument("--ami-username", default="recorder")
    p.add_argument("--ami-secret", default="recorder-secret")
    p.add_argument("--sounds-dir", type=Path)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--caller", default="0311112222")
    p.add_argument("--dialled", default="0668585050")
    p.add_argument("--direction", choices=("inbound", "outbound"), default="inbound")
    p.add_argument("--tech", choices=("SIP", "Local"), default="SIP")
    p.add_argument("--caller-wav", type=Path, help="what the caller says (8 kHz mono 16-bit)")
    p.add_argument("--agent-wav", type=Path, help="what the agent / prompt says")
    p.add_argument("--hangup-after", type=float, help="caller hangs up N s after the AGI starts")
    p.add_argument("--linger", type=float, default=0.0, help="seconds to keep AMI up after the calls")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()
