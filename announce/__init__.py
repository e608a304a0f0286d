"""Recording announcements: "this call is recorded", played before a caller reaches staff.

Matsumoto regulation 3(3) requires it on inbound recorded calls. This package ships the default
prompts, converts a city's own recording into the one format Asterisk's ``.wav`` reader accepts,
and checks installed prompts at start-up. It depends on the standard library, numpy and soundfile
only, so ``recorderctl`` can use it without the daemon's other dependencies.
"""

from announce.builtin import Language, builtin_prompt
from announce.info import PromptError, PromptInfo
from announce.prepare import prepare
from announce.validate import load_pcm, validate_prompt

__all__ = [
    "Language",
    "PromptError",
    "PromptInfo",
    "builtin_prompt",
    "load_pcm",
    "prepare",
    "validate_prompt",
]
