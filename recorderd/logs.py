"""Logging: structlog JSON lines on stdout for journald; readable lines on a terminal.

The protocol packages (pbx.*) log through the standard library; their records pass through the same
renderer so every line has one shape. Phone numbers are masked at the call site (recorderd.numbers).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

# syslog priorities (sd-daemon(3)): journald strips a leading "<N>" and files the line at that level,
# so `journalctl -u recorderd -p warning` shows exactly our warnings and errors.
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "exception": 3, "critical": 2}


def to_journald(stream: Any, env: dict[str, str] | None = None) -> bool:
    """Whether ``stream`` is connected to journald: systemd sets $JOURNAL_STREAM to its device:inode."""
    expected = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


class _LevelPrefix:
    """Wraps the JSON renderer: ``<3>{"event": ...}``; the JSON that lands in the journal is unchanged."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        level = str(event_dict.get("level", "info"))
        return f"<{_PRIORITY.get(level, 6)}>{self._inner(logger, name, event_dict)}"


def configure(*, json: bool | None = None, level: int = logging.INFO, stream: Any = None) -> None:
    stream = stream or sys.stdout
    if json is None:
        json = not stream.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    )
    if json and to_journald(stream):
        renderer = _LevelPrefix(renderer)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("sqlalchemy", "alembic", "aiomqtt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
