"""The ``[console]`` section: the web console (``recorderd console``), a process of its own.

It listens on loopback by default: a city puts it behind its own reverse proxy, or gives it a
certificate here (docs/console.md). Sessions live in the console's memory only, so a restart signs
everyone out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from recorderd.config.base import HostPort, Strict, parse_hostport

__all__ = ["ConsoleConfig"]


class ConsoleConfig(Strict):
    listen: HostPort = "127.0.0.1:8080"
    language: Literal["ja", "en"] = "ja"  # the default; each person may switch
    idle_minutes: int = Field(15, ge=1, le=240)  # signed out after this long without a request
    absolute_hours: float = Field(8.0, gt=0, le=24)  # and after this long whatever happens
    page_size: int = Field(50, ge=10, le=500)
    tls_certificate: Path | None = None  # PEM; with tls_key, the console speaks HTTPS itself
    tls_key: Path | None = None
    # Behind a reverse proxy that terminates TLS: mark cookies Secure although the console speaks HTTP.
    behind_tls_proxy: bool = False

    @model_validator(mode="after")
    def _tls_pair(self) -> ConsoleConfig:
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("give tls_certificate and tls_key together")
        return self

    @property
    def address(self) -> tuple[str, int]:
        return parse_hostport(self.listen)

    @property
    def secure(self) -> bool:
        return self.tls_certificate is not None or self.behind_tls_proxy
