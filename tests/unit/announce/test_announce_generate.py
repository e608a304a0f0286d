"""The shipped wording, and that announce.generate reproduces the shipped prompts from it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from announce import Language, builtin_prompt, validate_prompt
from announce.generate import Sentence, generate, load_sentences, main, phonemes
from announce.info import PromptError

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
# The committed WAVs were made with this release; another one may differ in the last bit.
SHIPPED_WITH = "1.51"
KANJI = re.compile(r"[\u4e00-\u9fff]")


def test_wording_is_exactly_the_approved_sentences() -> None:
    by_name = {s.name: s for s in load_sentences()}
    assert by_name.keys() == {"announce-ja", "announce-en"}
    assert by_name["announce-ja"].text == "この通話は、応対品質の向上のため録音させていただきます。"
    assert by_name["announce-en"].text == "This call will be recorded to improve the quality of our service."
    assert by_name["announce-en"].speak == by_name["announce-en"].text


def test_japanese_is_given_to_espeak_without_kanji() -> None:
    ja = next(s for s in load_sentences() if s.name == "announce-ja")
    assert ja.voice == "ja"
    assert not KANJI.search(ja.speak)


@needs_espeak
def test_kanji_would_be_spelled_out_and_is_refused() -> None:
    # The measurement behind the kana spelling: espeak-ng 1.51 names each kanji in English.
    kanji = Sentence("probe", "ja", 160, "", "この通話は録音されます")
    with pytest.raises(PromptError, match="spell it out"):
        phonemes(str(ESPEAK), kanji)


@needs_espeak
def test_kana_is_read_as_japanese_phonemes() -> None:
    ja = next(s for s in load_sentences() if s.name == "announce-ja")
    transcription = re.sub(r"[',\s]", "", phonemes(str(ESPEAK), ja))  # drop stress marks, pauses
    # この通話は / 応対品質の / 向上の / 録音させていただきます, with long vowels as long vowels.
    for words in ("konot_su:wawa", "o:taiCiu~s\\it_suno", "ko:d_z\\o:no", "r`okuou~saseteitadakimasu"):
        assert words in transcription


@needs_espeak
def test_generate_reproduces_the_shipped_prompts(tmp_path: Path) -> None:
    infos = {i.path.name: i for i in generate(tmp_path, str(ESPEAK))}
    assert infos.keys() == {"announce-ja.wav", "announce-en.wav"}
    version = subprocess.run([str(ESPEAK), "--version"], capture_output=True, text=True).stdout
    langs: tuple[Language, ...] = ("ja", "en")
    for lang in langs:
        shipped, fresh = builtin_prompt(lang), tmp_path / f"announce-{lang}.wav"
        assert validate_prompt(fresh).duration_s == pytest.approx(
            validate_prompt(shipped).duration_s, abs=0.25
        )
        if f"{SHIPPED_WITH} " in version:
            assert fresh.read_bytes() == shipped.read_bytes()


def test_main_without_espeak_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--espeak", "no-such-espeak-binary"]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err
