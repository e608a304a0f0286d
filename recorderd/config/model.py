"""The daemon's configuration: TOML validated by pydantic with ``extra="forbid"``.

A misspelt key must stop start-up with a message naming it, never be silently ignored: a city that
writes ``exlude`` instead of ``exclude`` would otherwise record its counselling line.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tomllib
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from recorderd.config.base import (
    ConfigError,
    CredentialName,
    HostPort,
    Strict,
    parse_hostport,
    read_credential,
)
from recorderd.config.cluster import ClusterConfig, NodeName, default_node
from recorderd.config.console import ConsoleConfig
from recorderd.config.people import ExportPolicy, LedgerConfig, PeopleConfig
from recorderd.config.retention import RetentionConfig
from recorderd.numbers import normalise

Direction = Literal["inbound", "outbound"]
Action = Literal["record", "exclude"]
# "stereo": the caller (the counterpart) on the left, the city side on the right, one 2-channel file
Channels = Literal["mono", "stereo"]


class AgiConfig(Strict):
    listen: HostPort = "127.0.0.1:4573"
    env_timeout_s: StrictFloat = Field(5.0, gt=0)
    # Addresses (or networks, "10.0.0.5" / "10.0.0.0/24") allowed to open an AGI session: the
    # Asterisk host(s). Anything else is closed unread (docs/threat-model.md).
    peers: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"], min_length=1)

    @field_validator("peers")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {item!r}") from exc
        return value

    def peer_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.peers]

    @property
    def address(self) -> tuple[str, int]:
        return parse_hostport(self.listen)


class AudioSocketConfig(Strict):
    listen: HostPort = "127.0.0.1:9092"
    # What Asterisk dials in the AudioSocket/<advertise>/<uuid> string. Differs from `listen` when
    # recorderd listens on 0.0.0.0 or sits behind NAT. Empty: the address actually bound.
    advertise: str = ""
    first_frame_timeout_s: StrictFloat = Field(2.0, gt=0, le=10)

    @property
    def address(self) -> tuple[str, int]:
        return parse_hostport(self.listen)


class AmiConfig(Strict):
    enabled: StrictBool = True
    host: str = "127.0.0.1"
    port: StrictInt = Field(5038, ge=1, le=65535)
    username: str = "recorder"
    secret: str = ""
    secret_file: Path | None = None
    secret_credential: CredentialName | None = None  # systemd LoadCredential= name, e.g. "ami-secret"
    ping_interval_s: StrictFloat = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _one_secret(self) -> AmiConfig:
        given = [k for k in ("secret", "secret_file", "secret_credential") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give the AMI secret one way only, not {' and '.join(given)}")
        return self

    def resolved_secret(self) -> str:
        if self.secret_credential is not None:
            return read_credential(self.secret_credential, "ami.secret_credential")
        if self.secret_file is not None:
            try:
                return self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"ami.secret_file: cannot read {self.secret_file}: {exc.strerror}") from exc
        return self.secret


class EncryptionConfig(Strict):
    recipients: list[str] = []
    recipients_file: Path | None = None

    def resolved_recipients(self) -> list[str]:
        found = list(self.recipients)
        if self.recipients_file is not None:
            try:
                text = self.recipients_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"encryption.recipients_file: cannot read {self.recipients_file}: {exc.strerror}"
                ) from exc
            found += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not found:
            raise ConfigError("encryption: no age recipient configured (recipients or recipients_file)")
        return found


class Announcement(Strict):
    # The name Asterisk plays: the path under its sounds directory without extension.
    sound: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_./-]+$")
    # A local copy to validate at start-up (same host as Asterisk); omit when Asterisk is remote.
    file: Path | None = None


class TimeWindow(Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    ]  # fmt: skip
    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self


class LineRule(Strict):
    """One line: the numbers it covers, in one direction, and what happens to its calls.

    Inbound rules match the number called (DNID); outbound rules match the extension or trunk number
    that placed the call (the city-side number).
    """

    name: str = Field(min_length=1)
    direction: Direction = "inbound"
    numbers: list[str] = Field(min_length=1)
    action: Action = "record"
    announcement: str | None = None  # key into [announcements]; inbound only
    hours: list[TimeWindow] = []  # empty: always
    outside_hours: Action = "exclude"
    keep_numbers_when_excluded: StrictBool = False
    retention: str | None = None  # a policy under [retention.policies]; default: retention.default
    channels: Channels | None = None  # None: the global ``channels``

    @field_validator("numbers")
    @classmethod
    def _normalisable(cls, values: list[str]) -> list[str]:
        out = []
        for v in values:
            n = normalise(v)
            if n is None:
                raise ValueError(f"{v!r} is not a telephone number")
            out.append(n)
        return out


class Defaults(Strict):
    """What happens to calls no line rule names."""

    inbound: Action = "exclude"
    outbound: Action = "exclude"
    announcement: str | None = None  # for inbound calls recorded by default


class PrivacyConfig(Strict):
    log_full_numbers: StrictBool = False  # logs show 06*****50 unless this is set
    keep_excluded_rows: StrictBool = True  # an "excluded" metadata row, with no party numbers


class MqttConfig(Strict):
    """Events and alerts to an MQTT broker. Optional: without [mqtt] nothing is published."""

    host: str = Field(min_length=1)
    port: StrictInt = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str = ""
    password_file: Path | None = None
    password_credential: CredentialName | None = None  # systemd LoadCredential= name
    # Every topic starts with this, e.g. "recorderd/toyonaka-hall": <prefix>/status, /events/…, /alerts/…
    topic_prefix: str = Field("recorderd", min_length=1)
    client_id: str = ""  # empty: recorderd-<host name>
    tls: StrictBool = False
    tls_ca_file: Path | None = None  # empty: the system's CA store
    keepalive_s: StrictInt = Field(30, ge=5, le=3600)
    queue_size: StrictInt = Field(1000, ge=10, le=1_000_000)  # events held while the broker is away
    reconnect_max_s: StrictFloat = Field(60.0, ge=0.1, le=3600)

    @field_validator("topic_prefix")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(f"{value!r}: no wildcards, no empty levels, no leading or trailing '/'")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        given = [k for k in ("password", "password_file", "password_credential") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give the MQTT password one way only, not {' and '.join(given)}")
        if given and self.username is None:
            raise ValueError("a password needs a username")
        return self

    def resolved_password(self) -> str | None:
        if self.password_credential is not None:
            return read_credential(self.password_credential, "mqtt.password_credential")
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"mqtt.password_file: cannot read {self.password_file}: {exc.strerror}"
                ) from exc
        return self.password or None


class MonitoringConfig(Strict):
    """Health thresholds: when an alert is raised and when systemd's watchdog stops being fed."""

    disk_low_free_mb: StrictInt = Field(2048, ge=0)  # alert "disk_low" below this much free space in data_dir
    # The metadata writer stalled (database locked or failing) or the database unreachable for longer
    # than this: stop the watchdog pings, so systemd restarts the service (WatchdogSec=).
    stall_bound_s: StrictFloat = Field(300.0, gt=0)
    # The ledger chain and every recording file are verified this often (and at start-up); a failure
    # raises an incident (Kawasaki 第7条, recorderd/daemon/incidentwatch.py).
    verify_interval_s: StrictFloat = Field(21600.0, gt=0)


class Config(Strict):
    municipality: str = ""
    timezone: str = "Asia/Tokyo"
    data_dir: Path = Path("/var/lib/recorderd")
    database_url: str = ""  # empty: sqlite file in data_dir
    channels: Channels = "mono"  # per-direction recording for every line that does not say otherwise
    # This recorder's name on the rows it writes (config/cluster.py); several recorders sharing one
    # PostgreSQL catalogue each have their own. Default: the host's name.
    node: NodeName = Field(default_factory=default_node)
    cluster: ClusterConfig = ClusterConfig()
    agi: AgiConfig = AgiConfig()
    audiosocket: AudioSocketConfig = AudioSocketConfig()
    ami: AmiConfig = AmiConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    announcements: dict[str, Announcement] = {}
    defaults: Defaults = Defaults()
    lines: list[LineRule] = []
    privacy: PrivacyConfig = PrivacyConfig()
    mqtt: MqttConfig | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    people: PeopleConfig = PeopleConfig()  # roles, permissions, passwords (config/people.py)
    exports: ExportPolicy = ExportPolicy()
    ledger: LedgerConfig = LedgerConfig()
    retention: RetentionConfig = RetentionConfig()  # config/retention.py
    console: ConsoleConfig = ConsoleConfig()  # the web console (config/console.py)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        named = {self.defaults.announcement} | {r.announcement for r in self.lines}
        for key in sorted(k for k in named if k is not None):
            if key not in self.announcements:
                raise ValueError(f"announcement {key!r} is used but not defined under [announcements]")
        seen: dict[tuple[str, str], str] = {}
        for rule in self.lines:
            if rule.announcement and rule.direction == "outbound":
                raise ValueError(f"line {rule.name!r}: outbound calls cannot carry an announcement")
            for n in rule.numbers:
                other = seen.setdefault((rule.direction, n), rule.name)
                if other != rule.name:
                    raise ValueError(f"number {n} ({rule.direction}) is in both {other!r} and {rule.name!r}")
            if rule.retention is not None:
                self.retention.require(rule.retention, f"line {rule.name!r}: retention")
        if self.node in self.cluster.data_dirs:
            raise ValueError(f"cluster.data_dirs names this node ({self.node!r}): its data_dir is its own")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'recorderd.db'}"

    def node_data_dir(self, node: str) -> Path | None:
        """Where a node's data directory is reachable from here: ours, a mounted one, or None."""
        return self.data_dir if node == self.node else self.cluster.data_dirs.get(node)

    @property
    def keyring_dir(self) -> Path:
        return self.people.keyring_dir or self.data_dir / "keyring"

    @property
    def signing_key_path(self) -> Path:
        return self.ledger.signing_key or self.data_dir / "ledger-signing.key"


def _format_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"{source}: unknown key '{where}' (misspelt? see config/recorderd.example.toml)")
        else:
            parts.append(f"{source}: {where}: {err['msg']}")
    return "\n".join(parts)


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from exc


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, str(path))
