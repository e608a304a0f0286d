"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium with the driver's path given: no download). The page decrypts the recording itself with
age-encryption; the test reads the decoded samples back out of the page and compares them, sample for
sample, with the audio the recording was made from."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from storage import ledger
from support.console_site import Running, running

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and DRIVER.exists()) and not shutil.which("chromedriver"),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, script: str, timeout: float = 60) -> object:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def sign_in(driver: WebDriver, c: Running, pid: str = "boss", password: str = "boss-password-1") -> None:
    driver.get(f"{c.url}/signin")
    driver.find_element(By.ID, "person_id").send_keys(pid)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "signin").click()
    wait(driver, "return document.getElementById('search-form') !== null")


def open_call(driver: WebDriver, c: Running) -> None:
    driver.find_element(By.ID, "number").send_keys(
        "０３－１１１１－２２２２"
    )  # full-width, as typed in Japan
    driver.find_element(By.ID, "find").click()
    wait(driver, "return document.getElementById('results') !== null")
    links = driver.find_elements(By.CSS_SELECTOR, "a.call-link")
    assert len(links) == 1
    links[0].click()
    wait(driver, "return document.getElementById('meta') !== null")
    assert c.call in driver.page_source


def play(driver: WebDriver, key_password: str) -> str:
    driver.find_element(By.ID, "purpose").send_keys("苦情内容の確認")
    driver.find_element(By.ID, "key-password").send_keys(key_password)
    driver.find_element(By.ID, "play").click()
    done = (
        "return ['decoded', 'ready', 'wrong-key', 'failed', 'refused'].includes(window.recorderdPlayer.phase)"
    )
    wait(driver, done)
    return str(driver.execute_script("return window.recorderdPlayer.phase"))


def decoded(driver: WebDriver) -> np.ndarray:
    text = driver.execute_script(
        "const s = window.recorderdPlayer.samples;"
        "const b = new Uint8Array(s.buffer, s.byteOffset, s.byteLength); let out = '';"
        "for (let i = 0; i < b.length; i += 8192) out += String.fromCharCode(...b.subarray(i, i + 8192));"
        "return btoa(out);"
    )
    return np.frombuffer(base64.b64decode(str(text)), "<i2")


def test_sign_in_search_play_sample_for_sample(console: Running, browser: WebDriver) -> None:
    sign_in(browser, console)
    open_call(browser, console)
    assert play(browser, "boss-password-1") in ("decoded", "ready")
    assert np.array_equal(decoded(browser), np.frombuffer(console.pcm, "<i2"))
    assert browser.execute_script("return window.recorderdPlayer.sampleRate") == 8000
    assert browser.execute_script("return window.recorderdPlayer.integrity") is True
    assert "bad" not in (browser.find_element(By.ID, "integrity").get_attribute("class") or "")
    # The audio started while the file was still being decrypted, then wavesurfer.js took over.
    assert browser.execute_script("return window.recorderdPlayer.firstAudibleMs") is not None
    wait(browser, "return window.recorderdPlayer.phase === 'ready'")  # wavesurfer.js drew and can play
    browser.execute_script(
        "window.recorderdPlayer.wavesurfer.pause(); window.recorderdPlayer.wavesurfer.setTime(0)"
    )
    browser.find_element(By.ID, "fwd5").click()  # a 3 s call: +5 s stops at its end
    at = browser.execute_script("return window.recorderdPlayer.wavesurfer.getCurrentTime()")
    assert abs(float(at) - 3.0) < 0.01
    browser.find_element(By.ID, "back5").click()
    assert browser.execute_script("return window.recorderdPlayer.wavesurfer.getCurrentTime()") == 0
    browser.find_element(By.CSS_SELECTOR, "#rate option[value='1.5'], #rate option:nth-child(4)").click()
    assert browser.execute_script("return window.recorderdPlayer.wavesurfer.getPlaybackRate()") == 1.5
    with console.site.sessions() as s:
        played = [e for e in ledger.entries(s) if e.kind == "played"]
    assert [(e.actor, e.detail["to"]) for e in played] == [("boss", "browser")]


def test_wrong_key_password_decrypts_nothing(console: Running, browser: WebDriver) -> None:
    sign_in(browser, console)
    browser.get(f"{console.url}/calls/{console.call}")
    assert play(browser, "not-my-password") == "wrong-key"
    assert browser.execute_script("return window.recorderdPlayer.samples") is None
    assert browser.find_element(By.ID, "play-status").text == "鍵を開けられません: パスワードが違います"


def test_tampered_file_shows_the_integrity_warning(console: Running, browser: WebDriver) -> None:
    path = next((console.site.config.data_dir / "recordings").rglob(f"{console.call}.age"))
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01  # one bit in the last chunk
    path.write_bytes(bytes(data))
    sign_in(browser, console)
    browser.get(f"{console.url}/calls/{console.call}")
    assert play(browser, "boss-password-1") == "failed"
    box = browser.find_element(By.ID, "integrity")
    assert box.get_attribute("class") == "bad"
    assert "一致しません" in box.text
    assert browser.execute_script("return window.recorderdPlayer.integrity") is False


def test_auditor_sees_no_play_form(console: Running, browser: WebDriver) -> None:
    sign_in(browser, console, "audit", "audit-password-1")
    browser.get(f"{console.url}/calls/{console.call}")
    assert browser.find_elements(By.ID, "play-form") == []
    assert browser.find_elements(By.ID, "ledger")


@pytest.fixture
def stereo_console(tmp_path: Path) -> Iterator[Running]:
    yield from running(tmp_path, channels=2)


def test_a_stereo_recording_plays_with_both_channels(stereo_console: Running, browser: WebDriver) -> None:
    """channels = "stereo" (issue 15): a 2-channel AU, decoded sample for sample, played as two."""
    sign_in(browser, stereo_console)
    open_call(browser, stereo_console)
    assert play(browser, "boss-password-1") in ("decoded", "ready")
    assert np.array_equal(decoded(browser), np.frombuffer(stereo_console.pcm, "<i2"))
    assert browser.execute_script("return window.recorderdPlayer.channels") == 2
    wait(browser, "return window.recorderdPlayer.phase === 'ready'")
    duration = browser.execute_script("return window.recorderdPlayer.wavesurfer.getDuration()")
    assert abs(float(duration) - 3.0) < 0.01
