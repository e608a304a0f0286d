"""Configuration of people, permissions, passwords, export copies and the ledger ([people], [exports],
[ledger] in the TOML). Kept apart from model.py so that file stays about calls; model.py embeds these.

Roles are fixed (they are the regulations' roles); what each role may do is set per profile. A role
holds a copy of the recording key only if it may ``play`` or ``export``: a role without either cannot
decrypt a recording with any password, because it has nothing to decrypt with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator

from recorderd.config.base import Strict

Role = Literal["manager", "operations_manager", "handler", "contractor", "auditor"]
Permission = Literal[
    "search",
    "play",
    "copy",
    "export",
    "instruct",
    "hold",
    "delete",
    "preserve",
    "manage_users",
    "audit",
    "incidents",
]

ROLES: tuple[Role, ...] = ("manager", "operations_manager", "handler", "contractor", "auditor")
ROLE_LABELS: dict[str, str] = {
    "manager": "管理責任者",
    "operations_manager": "運用責任者",
    "handler": "取扱員",
    "contractor": "運営受託者",
    "auditor": "監査担当者",
}
# What each permission lets a person do (recorderd/service/door.py names every operation's one):
#   search: find calls and read their metadata, holds, exports, disclosures and the retention plan;
#   play: hear a raw recording; copy: write a raw recording to a file (a copy outside the export
#   flow: profiles whose regulation allows copies only on an instruction or a legal basis grant it
#   to no one); export: make an export copy and record its provision and disposal; instruct: order
#   (approve) an export made by someone else; hold: holds and disclosure requests; delete: deletion
#   requests and clearing a clock-jump stop; preserve: external preservation; manage_users: accounts
#   and key copies; audit: read the ledger, the retention report and catalogue, verify, print forms;
#   incidents: open an incident by hand, acknowledge one, print its report (Kawasaki 第7条).
DEFAULT_PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    "manager": (
        "manage_users", "search", "play", "copy", "export", "instruct", "hold", "delete", "preserve", "audit",
        "incidents",
    ),
    "operations_manager": (
        "manage_users", "search", "play", "copy", "export", "instruct", "hold", "delete", "preserve", "audit",
        "incidents",
    ),
    "handler": ("search", "play", "copy", "export"),
    "contractor": ("export",),
    "auditor": ("search", "audit"),
}  # fmt: skip
KEY_PERMISSIONS = frozenset({"play", "copy", "export"})


class PasswordPolicy(Strict):
    max_age_days: StrictInt = Field(
        0, ge=0
    )  # 0: passwords never expire (Toyonaka 5-3 asks for periodic change)
    min_length: StrictInt = Field(10, ge=4)
    max_failures: StrictInt = Field(5, ge=1, le=100)  # consecutive failures that lock the account
    lockout_minutes: StrictInt = Field(0, ge=0)  # 0: locked until an administrator unlocks it
    # Cost of the password hash (argon2id) and of each person's key copy (age scrypt, log2 N).
    argon2_time_cost: StrictInt = Field(3, ge=1, le=20)
    argon2_memory_kib: StrictInt = Field(65536, ge=8)
    key_work_factor: StrictInt = Field(18, ge=1, le=22)


class PeopleConfig(Strict):
    keyring_dir: Path | None = None  # each key holder's copy of the recording key; default data_dir/keyring
    roles: dict[Role, list[Permission]] = {}  # overrides per role; roles not named keep DEFAULT_PERMISSIONS
    passwords: PasswordPolicy = PasswordPolicy()

    def permissions(self, role: str) -> frozenset[str]:
        if role in self.roles:
            return frozenset(self.roles[role])
        return frozenset(DEFAULT_PERMISSIONS.get(role, ()))

    def holds_key(self, role: str) -> bool:
        return bool(self.permissions(role) & KEY_PERMISSIONS)


class ExportPolicy(Strict):
    # Someone with "instruct" must order the export first, and may not carry it out themselves
    # (Toyonaka's chain of instruction; Saitama's instruction to the contractor, 様式第1号).
    two_person: StrictBool = False
    formats: list[Literal["wav", "age"]] = ["wav", "age"]  # plain WAV, or re-encrypted to the recipient
    # How long the export copy itself is kept, in the retention rules' terms (docs/retention.md): day 1 is
    # the day it was made. Saitama 4-6(2), output data to the end of the following fiscal year, is
    # keep_unit = "fiscal_year_end", keep_count = 1.
    keep_unit: Literal["days", "months", "years", "month_end", "fiscal_year_end"] = "days"
    keep_count: StrictInt = Field(90, ge=0)
    fiscal_year_start_month: StrictInt = Field(4, ge=1, le=12)
    # Legal bases an export may cite; empty means any text.
    legal_bases: list[str] = []
    # The chain of instruction, as the regulation writes it: each role instructs the next, the last
    # carries the export out. Toyonaka 第8条: ["manager", "operations_manager", "handler"] (the
    # manager instructs the operations manager, who names a handler and the calls' date and time);
    # Saitama 第4条第2項: ["operations_manager", "contractor"]. Empty: two_person alone decides.
    chain: list[Role] = []

    @field_validator("chain")
    @classmethod
    def _chain(cls, value: list[str]) -> list[str]:
        if value and (len(value) < 2 or len(set(value)) != len(value)):
            raise ValueError("chain: at least two different roles, the one who instructs first")
        return value

    @field_validator("formats")
    @classmethod
    def _some_format(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one export format")
        return value


class LedgerConfig(Strict):
    # Ed25519 key that signs checkpoints and export packages; default data_dir/ledger-signing.key
    signing_key: Path | None = None
    # The daemon signs a checkpoint of the ledger this often and at shutdown (0: never), and sends it
    # where this host cannot rewrite it alone: retained on MQTT (when [mqtt] is set) and into
    # checkpoint_dirs (another volume, another host's share). `ledger verify` uses the newest.
    checkpoint_interval_s: StrictFloat = Field(3600.0, ge=0)
    checkpoint_dirs: list[Path] = []
    # The public key (base64) checkpoints must carry; empty: any valid signature (then a checkpoint
    # signed with a key stolen from this host would be believed).
    trusted_key: str = ""
