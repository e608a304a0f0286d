"""A real Asterisk for the `real_pbx` lane: from the build cache, configured in a tmp dir, unprivileged.

`scripts/build-asterisk` builds it once per machine. The PBX loads the project's own
`config/asterisk/` snippets, with only what a test must change rewritten (ports, the AMI secret, and
the PJSIP dial targets, which cannot work without PJSIP: see `render_extensions`).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "20.20.1"
# What the lane loads (../shared/asterisk/README.md lists what a recorder test needs); autoload is off
# so a module missing from the build is an error at start-up, not a silently different PBX.
MODULES = (
    "chan_sip", "res_rtp_asterisk", "res_agi", "res_speech", "app_chanspy", "chan_audiosocket",
    "res_audiosocket", "app_audiosocket", "app_originate", "app_playback", "app_dial", "app_mixmonitor",
    "pbx_config", "codec_ulaw", "codec_alaw", "format_wav", "format_sln", "format_pcm", "bridge_simple",
    "bridge_native_rtp", "func_channel", "func_callerid", "func_uuid", "res_timing_timerfd",
)  # fmt: skip


def default_cache() -> Path:
    """Where scripts/build-asterisk puts its build when ASTERISK_CACHE is not set."""
    if os.environ.get("ASTERISK_CACHE"):
        return Path(os.environ["ASTERISK_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/recorderd")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recorderd"


def find_prefix() -> tuple[Path | None, str]:
    """(the install prefix, "") or (None, why there is none)."""
    given = os.environ.get("RECORDERD_ASTERISK")
    prefix = Path(given) if given else default_cache() / f"asterisk-{VERSION}"
    where = f"RECORDERD_ASTERISK={given}" if given else f"the build cache {prefix}"
    if not (prefix / "sbin" / "asterisk").is_file():
        return None, (
            f"no Asterisk at {where}: build it with scripts/build-asterisk (needs the source archive, "
            "ASTERISK_SRC) and export RECORDERD_ASTERISK=<prefix>; .ci/run does both"
        )
    if not given and not (prefix / ".built").is_file():
        return None, f"the build in {prefix} is unfinished (no .built stamp): run scripts/build-asterisk"
    return prefix, ""


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port(pairs: int = 1) -> int:
    """An even port with ``2 * pairs`` free UDP ports from it (RTP and RTCP each)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + 2 * pairs):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range on 127.0.0.1")


@dataclass
class Ports:
    sip: int = field(default_factory=free_udp_port)
    rtp_start: int = field(default_factory=lambda: free_udp_port(10))
    ami: int = field(default_factory=free_tcp_port)
    agi: int = field(default_factory=free_tcp_port)
    audiosocket: int = field(default_factory=free_tcp_port)

    @property
    def rtp_end(self) -> int:
        return self.rtp_start + 19


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"{what}: expected {old!r} once in the snippet; did config/asterisk change?")
    return text.replace(old, new)


def render_manager(ports: Ports, secret: str) -> str:
    """config/asterisk/manager.conf as shipped, on the test's port and with the test's secret."""
    text = (ROOT / "config" / "asterisk" / "manager.conf").read_text()
    text = _replace_once(text, "port = 5038", f"port = {ports.ami}", "manager.conf")
    return _replace_once(text, "secret = CHANGE-ME-long-random", f"secret = {secret}", "manager.conf")


def render_extensions(ports: Ports, *, agent_wait_s: float, trunk_wait_s: float) -> str:
    """config/asterisk/extensions.conf as shipped, plus the lane's own contexts.

    Rewritten: the AGI port, and the two Dial() targets. The snippet dials PJSIP/agents (inbound) and
    PJSIP/<number>@trunk (outbound); this build has no PJSIP (nothing may download it), so those legs
    go to Local channels whose dialplan stands in for them: [lane-agent] is the staff phone that
    answers and speaks, [lane-trunk] the city-side party of an outbound call. Everything else in the
    snippet (Answer before the AGI inbound, the AGI before any answer outbound) runs as shipped."""
    text = (ROOT / "config" / "asterisk" / "extensions.conf").read_text()
    text = text.replace("agi://127.0.0.1:4573/", f"agi://127.0.0.1:{ports.agi}/")
    if f"127.0.0.1:{ports.agi}/inbound" not in text or f"127.0.0.1:{ports.agi}/outbound" not in text:
        raise AssertionError("extensions.conf: the AGI() lines moved; cannot point them at the daemon")
    text = _replace_once(text, "Dial(PJSIP/agents,60)", "Dial(Local/s@lane-agent,60)", "extensions.conf")
    text = _replace_once(
        text, "Dial(PJSIP/${EXTEN}@trunk,120)", "Dial(Local/${EXTEN}@lane-trunk,120)", "extensions.conf"
    )
    return f"""[general]
static = yes
writeprotect = yes

; ---- config/asterisk/extensions.conf (PJSIP dial targets replaced, see tests/support/asterisk.py) ----
{text}
; ---- the lane's stand-ins for the PJSIP legs ----
[lane-agent]
; The staff phone: answers, speaks, then listens (Wait() sends no audio at all) until the caller is done.
exten => s,1,Answer()
 same => n,Playback(lane/agent-speech)
 same => n,Wait({agent_wait_s:.2f})
 same => n,Hangup()

[lane-trunk]
; The city-side party of an outbound call: answers at once, speaks, listens, hangs up.
exten => _X.,1,Answer()
 same => n,Playback(lane/agent-speech)
 same => n,Wait({trunk_wait_s:.2f})
 same => n,Hangup()
"""


def render_sip(ports: Ports) -> str:
    return f"""[general]
udpbindaddr = 127.0.0.1:{ports.sip}
transport = udp
; Callers from the "PSTN" are guests, as on the trunk of the captures: they land in from-pstn.
allowguest = yes
context = from-pstn
trustrpid = yes
disallow = all
allow = ulaw
allow = alaw
directmedia = no
rtptimeout = 0
useragent = recorderd-lane

; A staff extension: calls it places go to the outbound context (matched by the From user).
[201]
type = friend
host = dynamic
context = to-pstn
disallow = all
allow = ulaw
"""


@dataclass
class RunAs:
    """Who Asterisk runs as: ``nobody`` when the tests run as root (CI), else the current user."""

    user: str | None
    uid: int
    gid: int

    @staticmethod
    def pick() -> RunAs:
        if os.geteuid() != 0:
            return RunAs(None, os.getuid(), os.getgid())
        entry = pwd.getpwnam("nobody")
        return RunAs("nobody", entry.pw_uid, entry.pw_gid)


class Asterisk:
    """One Asterisk process with every directory in its own tmp dir (which it owns)."""

    def __init__(
        self, prefix: Path, ports: Ports, *, ami_secret: str, extensions: str, sounds: dict[str, Path]
    ) -> None:
        self.prefix = prefix
        self.ports = ports
        self.run_as = RunAs.pick()
        # Not under pytest's tmp_path: that is mode 700 below root's, and Asterisk runs as nobody.
        self.root = Path(tempfile.mkdtemp(prefix="recorderd-pbx-"))
        self.etc = self.root / "etc"
        self.log_dir = self.root / "log"
        self.run_dir = self.root / "run"
        self.data = self.root / "data"
        self.spool = self.root / "spool"
        for d in (self.etc, self.log_dir, self.run_dir, self.data / "sounds", self.spool, self.root / "lib"):
            d.mkdir(parents=True)
        docs = prefix / "var" / "lib" / "asterisk" / "documentation"
        if docs.is_dir():  # AGI usage texts (520 replies) come from the XML documentation
            (self.data / "documentation").symlink_to(docs)
        for name, src in sounds.items():
            dest = self.data / "sounds" / f"{name}.wav"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        self.conf = self.etc / "asterisk.conf"
        self.conf.write_text(f"""[directories]
astetcdir => {self.etc}
astmoddir => {prefix / "lib" / "asterisk" / "modules"}
astvarlibdir => {self.root / "lib"}
astdbdir => {self.root / "lib"}
astkeydir => {self.root / "lib"}
astdatadir => {self.data}
astagidir => {self.data / "agi-bin"}
astspooldir => {self.spool}
astrundir => {self.run_dir}
astlogdir => {self.log_dir}
astsbindir => {prefix / "sbin"}

[options]
verbose = 3
documentation_language = en_US
""")
        loads = "".join(f"load => {m}.so\n" for m in MODULES)
        (self.etc / "modules.conf").write_text(f"[modules]\nautoload = no\n{loads}")
        (self.etc / "logger.conf").write_text(
            "[general]\n[logfiles]\nmessages => notice,warning,error,verbose\n"
        )
        (self.etc / "manager.conf").write_text(render_manager(ports, ami_secret))
        (self.etc / "extensions.conf").write_text(extensions)
        (self.etc / "sip.conf").write_text(render_sip(ports))
        rtp = f"[general]\nrtpstart = {ports.rtp_start}\nrtpend = {ports.rtp_end}\n"
        (self.etc / "rtp.conf").write_text(rtp)
        for path in [self.root, *self.root.rglob("*")]:
            if not path.is_symlink():
                os.chown(path, self.run_as.uid, self.run_as.gid)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def messages(self) -> Path:
        return self.log_dir / "messages"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.messages.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no Asterisk log yet)"

    def start(self, timeout: float = 60.0) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root), "LANG": "C"}
        with (self.log_dir / "console.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.prefix / "sbin" / "asterisk"), "-f", "-n", "-C", str(self.conf)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                user=self.run_as.uid if self.run_as.user else None,
                group=self.run_as.gid if self.run_as.user else None,
                extra_groups=[] if self.run_as.user else None,
            )  # fmt: skip
        ctl = self.run_dir / "asterisk.ctl"
        deadline = time.monotonic() + timeout
        # The control socket is the first sign of life (a file to wait for); then Asterisk itself
        # says when it has loaded everything.
        while not ctl.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"asterisk exited {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"asterisk made no control socket in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)
        self.cli("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
        loaded = self.cli("module show like .so")
        missing = [m for m in MODULES if f"{m}.so" not in loaded]
        if missing:
            raise RuntimeError(f"modules not loaded: {missing}\n{self.log_tail()}")

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """One CLI command over the control socket (``asterisk -rx``)."""
        done = subprocess.run(
            [str(self.prefix / "sbin" / "asterisk"), "-C", str(self.conf), "-rx", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r}: {done.returncode} {done.stdout} {done.stderr}")
        return done.stdout

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.cli("core stop now", timeout=10)
            self.proc.wait(timeout=20)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
