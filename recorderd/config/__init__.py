"""The configuration: one strict base (``base``), its sections, and the whole (``model``).

Callers import from here; the sections import only ``base`` (and never the whole), so there is no
import circle between the model and its parts.
"""

from recorderd.config.base import ConfigError, read_credential
from recorderd.config.model import (
    Action,
    Announcement,
    Channels,
    Config,
    Direction,
    LineRule,
    MqttConfig,
    TimeWindow,
    load_config,
    parse_config,
)

__all__ = [
    "Action",
    "Announcement",
    "Channels",
    "Config",
    "ConfigError",
    "Direction",
    "LineRule",
    "MqttConfig",
    "TimeWindow",
    "load_config",
    "parse_config",
    "read_credential",
]
