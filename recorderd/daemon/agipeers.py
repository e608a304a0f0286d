"""Who may open an AGI session: the configured Asterisk addresses (``[agi] peers``, default loopback).

An AGI session is an unauthenticated claim ("here is a call, record it"); refusing every other
address keeps remote hosts from making such claims at all (docs/threat-model.md). Refusals are
logged aggregated: the first from an address at once, then at most one line per address per
``interval_s`` with the count, so a scanner or a flood cannot fill the journal.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence

import structlog

log = structlog.get_logger("recorderd.agi")

LOG_INTERVAL_S = 60.0
_MAX_TRACKED = 1024  # addresses remembered for aggregation; beyond that, the oldest is forgotten

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PeerFilter:
    def __init__(self, networks: Sequence[Network], *, interval_s: float = LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._networks = list(networks)
        self._interval = interval_s
        self._clock = clock
        self._refused: dict[str, tuple[float, int]] = {}  # address -> (last line at, unlogged count)
        self.refused_total = 0

    def reconfigure(self, networks: Sequence[Network]) -> None:
        self._networks = list(networks)

    def allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._networks)

    def __call__(self, host: str) -> bool:
        if self.allowed(host):
            return True
        self.refused_total += 1
        now = self._clock()
        last, count = self._refused.get(host, (None, 0))
        if last is None or now - last >= self._interval:
            log.warning("agi_peer_refused", peer=host, count=count + 1,
                        interval_s=self._interval if last is not None else None)  # fmt: skip
            self._refused.pop(host, None)
            self._refused[host] = (now, 0)
            if len(self._refused) > _MAX_TRACKED:
                self._refused.pop(next(iter(self._refused)))
        else:
            self._refused[host] = (last, count + 1)
        return False
