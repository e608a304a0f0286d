"""The shipped unit: its sandbox score, its directives, and that its command line is ours."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recorderd.cli.daemon import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "recorderd.service"
SYSUSERS = ROOT / "systemd" / "recorderd.sysusers.conf"
MAX_EXPOSURE = 1.5
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@needs_analyze
def test_security_exposure_is_at_most_1_5() -> None:
    run = subprocess.run([str(ANALYZE), "security", "--offline=true", "--no-pager", str(UNIT)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", run.stdout)
    assert found, run.stdout[-2000:] + run.stderr
    score = float(found.group(1))
    # Printed on purpose: the issue asks for the score to be visible in CI output (pytest -s / -rA).
    print(f"\nsystemd-analyze security --offline=true {UNIT.name}: {score} {found.group(2)}", file=sys.stderr)
    assert score <= MAX_EXPOSURE, run.stdout


@needs_analyze
def test_systemd_accepts_every_directive(tmp_path: Path) -> None:
    # verify also checks that ExecStart exists: point it at this checkout's entry point.
    exe = Path(sys.executable).with_name("recorderd")
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    unit = tmp_path / "recorderd.service"
    unit.write_text(UNIT.read_text().replace("/opt/recorderd/venv/bin/recorderd", str(exe)))
    run = subprocess.run([str(ANALYZE), "verify", "--man=no", str(unit)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    complaints = [ln for ln in (run.stdout + run.stderr).splitlines()
                  if ln.strip() and "asterisk.service" not in ln]  # fmt: skip
    assert complaints == [], complaints  # an unknown key is a warning systemd would silently ignore


def test_unit_has_what_the_issue_asks_for() -> None:
    d = directives(UNIT.read_text())
    one = {k: v[-1] for k, v in d.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["WatchdogSec"] and one["User"] == "recorderd" and one["StateDirectory"] == "recorderd"
    assert one["UMask"] == "0077" and one["NoNewPrivileges"] == "yes" and one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == "" and one["MemorySwapMax"] == "0" and one["LimitCORE"] == "0"
    assert "@system-service" in d["SystemCallFilter"]
    assert one["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert one["LoadCredential"] == "ami-secret:/etc/recorderd/ami-secret"
    assert one["RestartPreventExitStatus"] == "2"  # a config error must not restart-loop


def test_exec_start_is_a_valid_command_line() -> None:
    one = {k: v[-1] for k, v in directives(UNIT.read_text()).items()}
    argv = one["ExecStart"].split()
    assert argv[0].endswith("/recorderd")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.config == "/etc/recorderd/recorderd.toml"


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not installed")
def test_sysusers_creates_the_dedicated_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    [user] = [
        ln for ln in (tmp_path / "etc" / "passwd").read_text().splitlines() if ln.startswith("recorderd:")
    ]
    _name, _x, uid, _gid, _gecos, home, shell = user.split(":")
    assert int(uid) < 1000 and home == "/var/lib/recorderd" and shell == "/usr/sbin/nologin"


CONSOLE_UNIT = ROOT / "systemd" / "recorderd-console.service"
CONSOLE_MAX_EXPOSURE = 2.0  # issue 13


@needs_analyze
def test_console_unit_security_exposure_is_at_most_2_0() -> None:
    run = subprocess.run([str(ANALYZE), "security", "--offline=true", "--no-pager", str(CONSOLE_UNIT)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", run.stdout)
    assert found, run.stdout[-2000:] + run.stderr
    print(f"\nsystemd-analyze security --offline=true {CONSOLE_UNIT.name}: {found.group(1)}", file=sys.stderr)
    assert float(found.group(1)) <= CONSOLE_MAX_EXPOSURE, run.stdout


@needs_analyze
def test_systemd_accepts_every_console_directive(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("recorderd")
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    unit = tmp_path / "recorderd-console.service"
    unit.write_text(CONSOLE_UNIT.read_text().replace("/opt/recorderd/venv/bin/recorderd", str(exe)))
    run = subprocess.run([str(ANALYZE), "verify", "--man=no", str(unit)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    complaints = [ln for ln in (run.stdout + run.stderr).splitlines()
                  if ln.strip() and "recorderd.service" not in ln]  # fmt: skip
    assert complaints == [], complaints


def test_console_unit_runs_the_console_as_the_daemons_user() -> None:
    d = directives(CONSOLE_UNIT.read_text())
    one = {k: v[-1] for k, v in d.items()}
    argv = one["ExecStart"].split()
    args = build_parser().parse_args(argv[1:])
    assert args.command == "console" and args.config == "/etc/recorderd/recorderd.toml"
    assert one["User"] == "recorderd" and one["StateDirectory"] == "recorderd" and one["UMask"] == "0077"
    assert (
        one["NoNewPrivileges"] == "yes" and one["ProtectSystem"] == "strict" and one["MemorySwapMax"] == "0"
    )
    assert "Type" in one and one["Type"] != "notify"  # the console sends no READY=1
