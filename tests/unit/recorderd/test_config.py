from pathlib import Path

import pytest

from recorderd.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "config" / "recorderd.example.toml")
    assert cfg.timezone == "Asia/Tokyo"
    assert cfg.lines[0].numbers == ["0668585050", "0668582525"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[agi]\nlisen = '127.0.0.1:4573'\n", "unknown key 'agi.lisen'"),
        ("tiemzone = 'Asia/Tokyo'\n", "unknown key 'tiemzone'"),
        ("[[lines]]\nname='x'\nnumbers=['0668585050']\nacton='exclude'\n", "unknown key 'lines.0.acton'"),
        ("[[lines]]\nname='x'\nnumbers=['0668585050']\naction='exlude'\n", "lines.0.action"),
        ("timezone = 'Mars/Olympus'\n", "unknown time zone"),
        ("[[lines]]\nname='x'\nnumbers=['not a number']\n", "is not a telephone number"),
        (
            "[[lines]]\nname='x'\nnumbers=['0668585050']\nannouncement='ja'\n",
            "announcement 'ja' is used but not",
        ),
        ("[agi]\nlisten = 'localhost'\n", "agi.listen"),
        ("this is = = not toml", "not valid TOML"),
        ("node = 'hall a'\n", "node: String should match pattern"),
        ("node = ''\n", "node: String should match pattern"),
        ("node = 7\n", "node: Input should be a valid string"),
        ("[cluster]\nleader_retry_s = 0\n", "cluster.leader_retry_s"),
        ("[cluster.data_dirs]\nhall-b = 'relative/dir'\n", "is not an absolute path"),
        ("node = 'hall-a'\n[cluster.data_dirs]\nhall-a = '/srv/a'\n", "names this node"),
    ],
)
def test_bad_configs_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "test.toml")
    assert needle in str(err.value)


def test_same_number_in_two_lines_is_rejected() -> None:
    text = """
[[lines]]
name = "a"
numbers = ["06-6858-5050"]
[[lines]]
name = "b"
numbers = ["+81668585050"]
action = "exclude"
"""
    with pytest.raises(ConfigError, match=r"0668585050 .* both 'a' and 'b'"):
        parse_config(text)


def test_outbound_line_cannot_have_an_announcement() -> None:
    text = """
[announcements.ja]
sound = "x"
[[lines]]
name = "o"
direction = "outbound"
numbers = ["201"]
announcement = "ja"
"""
    with pytest.raises(ConfigError, match="outbound calls cannot carry"):
        parse_config(text)


def test_recipients_file_missing_is_a_clear_error(tmp_path: Path) -> None:
    cfg = parse_config(f"[encryption]\nrecipients_file = '{tmp_path / 'nope'}'\n")
    with pytest.raises(ConfigError, match="cannot read"):
        cfg.encryption.resolved_recipients()
    with pytest.raises(ConfigError, match="no age recipient"):
        parse_config("").encryption.resolved_recipients()


def test_the_node_defaults_to_the_host_name_and_is_kept_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "rec hall#1.example.lg.jp")
    assert parse_config("").node == "rec-hall-1"  # short name, what a node name may hold
    cfg = parse_config("node = 'hall-b'\n[cluster.data_dirs]\nhall-a = '/srv/recorderd/hall-a'\n")
    assert cfg.node == "hall-b" and cfg.node_data_dir("hall-b") == cfg.data_dir
    assert cfg.node_data_dir("hall-a") == Path("/srv/recorderd/hall-a") and cfg.node_data_dir("x") is None
