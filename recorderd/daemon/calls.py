"""Call orchestration: one AGI session in, one decision, at most one recording out.

Flow for a recorded inbound call (see docs/ARCHITECTURE.md and the fixture README):
  AGI env → policy → Originate a ChanSpy→AudioSocket spy → ORIGINATE_STATUS → wait (bounded) for
  the spy's FIRST AUDIO FRAME (ChanSpy attaches ~100-140 ms after the UUID; a prompt started at the
  UUID loses its start) → STREAM FILE the announcement → SET VARIABLE RECORDING_ID → return.
The recording then runs on its own AudioSocket connection until Asterisk closes it at hang-up.
Every failure ends in a clear status and one log line; none escapes to other calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from pbx.agi.protocol import originate_spy
from pbx.agi.server import AgiClosedError, AgiSession
from pbx.audiosocket.server import AudioSocketPeer
from pbx.errors import PeerProtocolError
from recorderd.config import Config
from recorderd.daemon.amitrack import AmiEvent, ChannelTracker
from recorderd.daemon.diskpool import DiskPool
from recorderd.daemon.events import Events
from recorderd.daemon.metadata import MetadataWriter, utcnow
from recorderd.daemon.policy import CallFacts, Decision, decide
from recorderd.daemon.recording import Recording, RecordingResult
from recorderd.daemon.timeline import TICK_S
from recorderd.numbers import mask, normalise
from storage.models import COMPLETED, EXCLUDED, FAILED, INCOMPLETE, RECORDING, UNVERIFIED

log = structlog.get_logger("recorderd.calls")

STREAM_TIMEOUT_S = 120.0  # an announcement is seconds long; this only guards a stuck PBX
HANGUP_GRACE_S = 1.0  # after the spy's EOF, how long to wait for AMI's Hangup (cause, exact time)


@dataclass(eq=False)
class ActiveCall:
    call_id: uuid.UUID
    uniqueid: str | None
    path: Path
    attached: asyncio.Future[Recording]
    log: structlog.typing.FilteringBoundLogger
    failure: str | None = None
    peer: AudioSocketPeer | None = None
    hangup_seen: asyncio.Event = field(default_factory=asyncio.Event)
    spy_started: asyncio.Event = field(default_factory=asyncio.Event)  # AMI ChanSpyStart
    ami_seen: bool = False  # AMI named the channel the AGI environment claims (its Uniqueid)
    duplicate_of: str | None = None  # another live call already claimed that Uniqueid
    ended_at: dt.datetime | None = None
    channels: int = 1  # 2: ChanSpy D (stereo), the counterpart left and the city side right
    swap: bool = False  # stereo outbound: the spied channel is the city side, stored on the right
    summary: dict[str, object] = field(default_factory=dict)  # for events: ids, line, masked numbers


def _text(row: dict[str, object], key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) else None


def call_facts(env_script: str, dnid: str | None, extension: str | None, callerid: str | None) -> CallFacts:
    """Read the city-side and counterpart numbers from the AGI environment.

    Inbound: the number called is ``agi_dnid``, except on Local/Originate channels where Asterisk
    says "unknown" and ``agi_extension`` holds it. Outbound (script ``outbound``, AGI before Answer):
    the caller id is our extension, the extension is the number dialled.
    """
    if env_script == "outbound":
        return CallFacts("outbound", normalise(callerid), normalise(extension))
    return CallFacts("inbound", normalise(dnid) or normalise(extension), normalise(callerid))


class CallManager:
    def __init__(
        self,
        config: Config,
        recipients: list[str],
        writer: MetadataWriter,
        pool: DiskPool,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        events: Events | None = None,
        media_clock: Callable[[], float] | None = time.monotonic,
        tick_s: float = TICK_S,
    ) -> None:
        """``media_clock``: the time recordings follow (seconds; None: frames end to end, for a
        simulator running faster than real time); ``tick_s``: how often pauses are filled (loop time)."""
        self.config = config
        self.events = events or Events(None)
        self._recipients = recipients
        self._writer = writer
        self._pool = pool
        self._clock = clock
        self.advertise = ""  # HOST:PORT Asterisk dials; set by the daemon once the listener is bound
        self.tracker = ChannelTracker()
        self.ami_connected = False
        self._pending: dict[uuid.UUID, ActiveCall] = {}
        self._by_uniqueid: dict[str, ActiveCall] = {}
        self._finishers: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.recording_refusal: Callable[[], str | None] = lambda: None  # a reason not to record now
        self._media_clock = media_clock
        self._tick_s = tick_s
        self._recordings: set[Recording] = set()  # open, on the media clock
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def active(self) -> int:
        return len(self._pending)

    def reconfigure(self, config: Config, recipients: list[str] | None = None) -> None:
        """New rules (and recipients, already checked) for calls that start from now on."""
        self.config = config
        if recipients is not None:
            self._recipients = recipients

    def _mask(self, number: str | None) -> str | None:
        return mask(number, full=self.config.privacy.log_full_numbers)

    # -- AGI -----------------------------------------------------------------------------------
    async def handle_agi(self, session: AgiSession) -> None:
        env = session.env
        started = self._clock()
        facts = call_facts(env.script, env.dnid, env.extension, env.callerid)
        decision = decide(self.config, facts, started)
        call_id = uuid.uuid4()
        clog = log.bind(
            call_id=str(call_id),
            direction=facts.direction,
            line=decision.line,
            local=self._mask(facts.local_number),
            remote=self._mask(facts.remote_number),
            pbx_uniqueid=env.uniqueid,
        )
        common: dict[str, object] = {
            "pbx_uniqueid": env.uniqueid,
            "channel": env.channel,
            "direction": facts.direction,
            "line": decision.line,
            "started_at": started,
        }
        numbers: dict[str, object] = {
            "local_number": facts.local_number,
            "remote_number": facts.remote_number,
        }
        if not decision.record:
            if self.config.privacy.keep_excluded_rows:
                self._writer.insert(
                    str(call_id), status=EXCLUDED, **common, **(numbers if decision.keep_numbers else {})
                )
            clog = clog.unbind("local", "remote") if not decision.keep_numbers else clog
            clog.info("call_excluded", reason=decision.reason)
            # No numbers, whatever keep_numbers says: who called the counselling line is nobody's event.
            self.events.event("call_excluded", call_id=str(call_id), direction=facts.direction,
                              line=decision.line, reason=decision.reason)  # fmt: skip
            await self._set_status(session, "excluded", clog)
            return
        if not self.accepting:
            clog.error("call_not_recorded", reason="daemon shutting down")
            self.events.event("call_failed", call_id=str(call_id), direction=facts.direction,
                              line=decision.line, local=mask(facts.local_number),
                              remote=mask(facts.remote_number), reason="daemon shutting down")  # fmt: skip
            await self._set_status(session, "failed", clog)
            return
        refusal = self.recording_refusal()  # the disk guard (recorderd/diskguard.py): never delete to fit
        if refusal is not None:
            self._writer.insert(str(call_id), status=FAILED, failure_reason=refusal, **common, **numbers)
            clog.error("call_not_recorded", reason=refusal)
            await self._set_status(session, "failed", clog)
            return
        await self._record(session, call_id, decision, common | numbers, clog)

    async def _record(
        self,
        session: AgiSession,
        call_id: uuid.UUID,
        decision: Decision,
        row: dict[str, object],
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        started = row["started_at"]
        assert isinstance(started, dt.datetime)
        local_day = started.astimezone(self.config.zone)
        rel = Path("recordings") / f"{local_day:%Y/%m/%d}" / f"{call_id}.age"
        uniqueid = session.env.uniqueid
        call = ActiveCall(
            call_id, uniqueid, self.config.data_dir / rel, asyncio.get_running_loop().create_future(), clog
        )
        if decision.channels == "stereo":
            call.channels, call.swap = 2, row["direction"] == "outbound"
        call.summary = {"call_id": str(call_id), "direction": row["direction"], "line": decision.line,
                        "local": mask(_text(row, "local_number")),
                        "remote": mask(_text(row, "remote_number"))}  # fmt: skip
        self._pending[call_id] = call
        self._writer.insert(
            str(call_id),
            status=RECORDING,
            audio_path=str(rel),
            announcement=decision.announcement.sound if decision.announcement else None,
            notes=None if self.ami_connected else "AMI link down at call start",
            **row,
        )
        other = self._by_uniqueid.get(uniqueid) if uniqueid else None
        if other is not None:
            # Two AGI sessions claiming one channel: one is not what it says. Keep the first's
            # AMI evidence to the first; this one cannot be corroborated.
            call.duplicate_of = str(other.call_id)
        elif uniqueid:  # after the insert: the tracker may already know the answer time
            self._by_uniqueid[uniqueid] = call
            call.ami_seen = self.tracker.seen(uniqueid)
            for upd in self.tracker.watch(uniqueid, str(call_id)):
                self._writer.update(upd.call_id, **upd.fields)
        clog.info("call_recording_requested", reason=decision.reason)
        try:
            await self._start_spy(session, call)
            alive = not session.hung_up
            if call.failure is None and alive and decision.announcement is not None:
                alive = await self._announce(session, call, decision.announcement.sound)
            # After a hang-up, return at once: an open AGI keeps the dead channel (and the spy) alive.
            if alive:
                if call.failure is None:
                    await session.set_variable("RECORDING_ID", call_id.hex)
                await self._set_status(
                    session, "recording" if call.failure is None else "failed", clog, force=True
                )
        except (AgiClosedError, ConnectionError) as exc:
            # Asterisk went away mid-session (shutdown, network). The spy has its own connection:
            # if it is running the recording goes on; if not, the call is lost and we say so.
            if not call.attached.done():
                self._fail(call, "agi_disconnected", str(exc) or type(exc).__name__)
            else:
                clog.warning("agi_disconnected_while_recording", error=str(exc) or type(exc).__name__)
        except (TimeoutError, PeerProtocolError) as exc:
            reason = "agi_timeout" if isinstance(exc, TimeoutError) else "agi_protocol_error"
            if not call.attached.done():
                self._fail(call, reason, str(exc))
            else:
                clog.warning(reason, error=str(exc))
        finally:
            if call.failure is not None and not call.attached.done():
                self._forget(call)  # no spy will come: nothing to finalise

    async def _start_spy(self, session: AgiSession, call: ActiveCall) -> None:
        """Originate the spy and wait, bounded, until ChanSpy has really attached (the first
        frame, or AMI's ChanSpyStart: frames only flow while something is audible, e.g. on Local
        channels or a line with silence suppression), inbound and outbound alike. The AudioSocket
        connection comes ~100-140 ms before the attach: an inbound announcement started at the
        connection loses its start, and an outbound far end that answers at once its first words.
        """
        target = call.uniqueid or ""
        await session.command(originate_spy(self.advertise, call.call_id, target, stereo=call.channels == 2))
        status = await session.get_variable("ORIGINATE_STATUS")
        self._writer.update(str(call.call_id), spy_status=status)
        if status != "SUCCESS":
            # e.g. FAILED at once when nothing listens on the AudioSocket address Asterisk dials.
            self._fail(
                call, "spy_originate_failed", f"ORIGINATE_STATUS={status} (advertise {self.advertise})"
            )
            return
        timeout = self.config.audiosocket.first_frame_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                recording = await asyncio.shield(call.attached)
        except TimeoutError:
            self._fail(call, "no_audio", f"no AudioSocket connection within {timeout:g} s")
            return
        frame: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(recording.first_frame))
        spy: asyncio.Future[Any] = asyncio.ensure_future(call.spy_started.wait())
        try:
            done, _ = await asyncio.wait({frame, spy}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            frame.cancel()
            spy.cancel()
        if frame in done and frame.exception() is not None:
            self._fail(call, "spy_closed_early", str(frame.exception()))
        elif not done:
            # Connected but silent: keep recording, but say the notice may have been clipped.
            call.log.warning("spy_attach_unconfirmed", waited_s=timeout)
            self._writer.update(
                str(call.call_id),
                notes=f"no audio or ChanSpyStart within {timeout:g} s before the AGI returned",
            )

    async def _announce(self, session: AgiSession, call: ActiveCall, sound: str) -> bool:
        """Play the announcement; returns whether the channel is still alive afterwards."""
        cid = str(call.call_id)
        self._writer.update(cid, announcement_started_at=self._clock())
        resp = await session.command(f'STREAM FILE {sound} ""', timeout=STREAM_TIMEOUT_S)
        completed = resp.code == 200 and resp.result is not None and resp.result >= 0
        alive = completed
        if not completed and resp.code == 200 and resp.endpos == 0:
            # `result=-1 endpos=0` is both "caller gone" and "file not found on the PBX".
            # A dead channel answers CHANNEL STATUS with 511; a live one with 200.
            status = await session.command("CHANNEL STATUS")
            alive = status.code == 200
            if alive:
                call.log.error("announcement_missing_on_pbx", sound=sound)
        self._writer.update(cid, announcement_completed=completed)
        if not alive:
            call.log.info("caller_hung_up_during_announcement", sound=sound)
        return alive

    async def _set_status(
        self,
        session: AgiSession,
        value: str,
        clog: structlog.typing.FilteringBoundLogger,
        *,
        force: bool = False,
    ) -> None:
        try:
            if force or not session.hung_up:
                await session.set_variable("RECORDING_STATUS", value)
        except (AgiClosedError, ConnectionError, TimeoutError, PeerProtocolError) as exc:
            clog.info("status_not_set", error=str(exc) or type(exc).__name__)

    def _fail(self, call: ActiveCall, reason: str, detail: str) -> None:
        call.failure = reason
        self._writer.update(str(call.call_id), status=FAILED, failure_reason=reason, notes=detail)
        # "Should have been recorded and was not" is an error an operator must see.
        call.log.error("call_not_recorded", reason=reason, detail=detail)
        self.events.event("call_failed", **call.summary, reason=reason, detail=detail)
        self.events.alert("recording_failed", transient=True, **call.summary, reason=reason)

    def _forget(self, call: ActiveCall) -> None:
        self._pending.pop(call.call_id, None)
        if call.uniqueid and self._by_uniqueid.get(call.uniqueid) is call:
            del self._by_uniqueid[call.uniqueid]
            self.tracker.unwatch(call.uniqueid)

    # -- AudioSocket ---------------------------------------------------------------------------
    def on_audiosocket(self, spy_uuid: uuid.UUID, peer: AudioSocketPeer) -> Recording | None:
        call = self._pending.get(spy_uuid)
        if call is None or call.attached.done() or call.failure is not None:
            log.warning("audiosocket_refused", spy_uuid=str(spy_uuid), peer=peer.peername,
                        reason="unknown or finished call")  # fmt: skip
            return None
        recording = Recording(str(spy_uuid), call.path, self._recipients, self._pool, call_log=call.log,
                              clock=self._media_clock, peer=peer, channels=call.channels,
                              swap=call.swap)  # fmt: skip
        if self._media_clock is not None:
            self._recordings.add(recording)
            if self._ticker is None:
                self._ticker = asyncio.get_running_loop().call_later(self._tick_s, self._tick)
        call.peer = peer
        call.attached.set_result(recording)
        self.events.event("call_started", **call.summary)
        task = asyncio.get_running_loop().create_task(self._finish(call, recording))
        self._finishers.add(task)
        task.add_done_callback(self._finishers.discard)
        return recording

    def _tick(self) -> None:
        """One timer for every open recording (not one per call): ~0.3 µs per call per tick."""
        self._ticker = None
        clock = self._media_clock
        if clock is None or not self._recordings:
            return
        now = clock()
        try:
            for recording in self._recordings:
                try:
                    recording.tick(now)
                except Exception:  # one call's trouble must not stop the others' timelines
                    log.exception("timeline_tick_failed", call_id=recording.call_id)
        finally:
            self._ticker = asyncio.get_running_loop().call_later(self._tick_s, self._tick)

    async def _finish(self, call: ActiveCall, recording: Recording) -> None:
        cid = str(call.call_id)
        try:
            try:
                result = await recording.done
            finally:
                self._recordings.discard(recording)
            if self.ami_connected and not call.hangup_seen.is_set():
                try:
                    async with asyncio.timeout(HANGUP_GRACE_S):
                        await call.hangup_seen.wait()
                except TimeoutError:
                    pass
            fields = self._final_fields(call, result)
            self._writer.update(cid, **fields)
            self._ended(call, fields)
        finally:
            self._forget(call)

    def _final_fields(self, call: ActiveCall, result: RecordingResult) -> dict[str, object]:
        fields: dict[str, object] = {
            "audio_bytes": result.ciphertext_bytes,
            "audio_sha256": result.sha256,
            "audio_seconds": round(result.audio_seconds, 3),
        }
        if not result.sealed:
            # The .part left to salvage, or no file at all when it could not even be created (a
            # full disk): a row must never point at a file that does not exist.
            left = result.path.exists()
            fields["audio_path"] = str(result.path.relative_to(self.config.data_dir)) if left else None
        if not call.hangup_seen.is_set():
            fields["ended_at"] = self._clock()
            fields["notes"] = "no AMI Hangup seen: end time from the recorder's clock, cause unknown"
        if call.failure is not None:
            call.log.info(
                "recording_closed_after_failure", reason=call.failure, seconds=fields["audio_seconds"]
            )
        elif not result.sealed or result.error is not None:
            fields |= {"status": INCOMPLETE, "failure_reason": (result.error or "not sealed")[:64]}
            call.log.error("recording_incomplete", error=result.error, seconds=fields["audio_seconds"])
        elif (doubt := self._doubt(call)) is not None:
            fields |= {"status": UNVERIFIED, "failure_reason": doubt[:64]}
            fields["notes"] = "; ".join(str(n) for n in (fields.get("notes"), f"unverified: {doubt}") if n)
            call.log.warning("recording_unverified", reason=doubt, seconds=fields["audio_seconds"])
        else:
            fields["status"] = COMPLETED
            call.log.info("recording_completed", seconds=fields["audio_seconds"],
                          bytes=result.ciphertext_bytes, silence_s=result.silence_seconds,
                          dropped_s=result.dropped_seconds)  # fmt: skip
        return fields

    def _doubt(self, call: ActiveCall) -> str | None:
        """Why the PBX did not confirm this call, or None. The AGI session and the AudioSocket
        stream are plain TCP any local process can open (docs/threat-model.md); AMI is our own
        authenticated connection to Asterisk, so only its events corroborate a call."""
        if call.duplicate_of is not None:
            return f"uniqueid already claimed by call {call.duplicate_of}"
        if not call.uniqueid:
            return "no uniqueid in the AGI environment"
        if not self.config.ami.enabled:
            return "AMI disabled: channel and spy not confirmed"
        if not call.spy_started.is_set() and not call.ami_seen and not self.ami_connected:
            return "AMI link down: channel and spy not confirmed"
        if not call.ami_seen:
            return "AMI never reported the channel"
        if not call.spy_started.is_set():
            return "AMI reported no ChanSpyStart on the channel"
        return None

    def _ended(self, call: ActiveCall, fields: dict[str, object]) -> None:
        status = str(fields.get("status", FAILED))
        reason = fields.get("failure_reason") or call.failure
        self.events.event("call_ended", **call.summary, status=status, reason=reason,
                          seconds=fields["audio_seconds"])  # fmt: skip
        if status == INCOMPLETE and reason != "shutdown":  # a sealed-at-shutdown call is no failure
            self.events.alert("recording_failed", transient=True, **call.summary, reason=reason)
        elif status == UNVERIFIED:
            self.events.alert("recording_unverified", transient=True, **call.summary, reason=reason)

    # -- AMI -----------------------------------------------------------------------------------
    def on_ami_event(self, event: AmiEvent) -> None:
        if event.get("Event") == "ChanSpyStart":
            spied = self._by_uniqueid.get(event.get("SpyeeUniqueid") or "")
            if spied is not None:
                spied.spy_started.set()
                spied.ami_seen = True  # the PBX names the spied channel itself
        watched = self._by_uniqueid.get(event.get("Uniqueid") or "")
        if watched is not None:
            watched.ami_seen = True
        for upd in self.tracker.feed(event, self._clock()):
            self._writer.update(upd.call_id, **upd.fields)
            if "ended_at" in upd.fields:
                call = self._pending.get(uuid.UUID(upd.call_id))
                if call is not None:
                    call.hangup_seen.set()

    async def sealed(self) -> None:
        """Wait until every recording that has started is sealed on disk (rows may still be queued)."""
        while self._finishers:
            await asyncio.wait(set(self._finishers))

    async def drain(self) -> None:
        """Wait until every recording that has started is sealed and its row written."""
        await self.sealed()
        await self._writer.flush()

    # -- shutdown ------------------------------------------------------------------------------
    async def seal_all(self, reason: str, bound_s: float) -> int:
        """Stop every open recording now and wait (bounded) until each is sealed and written."""
        self.accepting = False
        open_calls = [c for c in self._pending.values() if c.attached.done()]
        for call in open_calls:
            recording = call.attached.result()
            recording.connection_closed(reason)
            if call.peer is not None:
                call.peer.abort()
        if self._finishers:
            _done, pending = await asyncio.wait(set(self._finishers), timeout=bound_s)
            for task in pending:
                task.cancel()
        return len(open_calls)
