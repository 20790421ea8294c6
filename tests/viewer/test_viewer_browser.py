"""The viewer in a real browser: headless Debian Chromium driven by Selenium through chromedriver.

Skipped, with the reason shown, when selenium, chromium or chromedriver is missing (see tests/viewer/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the viewer needs fastapi (pip install fastapi uvicorn python-multipart)")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from viewer_builders import (LiveServer, brightness_scorer, make_frames, toy_scores, write_run_folder,  # noqa: E402
                             write_scored_folder)

from vadkit.io import write_video  # noqa: E402
from vadkit.viewer import create_app  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--mute-audio", "--window-size=1280,900"]
RUN_ID = "runs/arnet-ped2-20260101-000000"


def find_program(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if os.access(os.environ[env], os.X_OK) else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = find_program("VADKIT_CHROMIUM", "chromium", "chromium-browser")
    driver_path = find_program("VADKIT_CHROMEDRIVER", "chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver; or set VADKIT_CHROMIUM / VADKIT_CHROMEDRIVER)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def served(tmp_path):
    """A runs folder with one scored video (4 s, an event at frames 50-74) and one run, served on a free port."""
    runs = tmp_path / "runs"
    write_scored_folder(runs / "scored" / "clip", make_frames(100, size=(160, 120)), toy_scores())
    write_run_folder(runs / "arnet-ped2-20260101-000000")
    app = create_app(runs, scorer=brightness_scorer, detector="toy")
    with LiveServer(app) as url:
        yield url, tmp_path


def wait_for(driver, script: str, timeout: float = 15, message: str = "") -> object:
    """Poll a JavaScript expression until it is truthy; return its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(f"return ({script});"), message or script)


def cursor_fraction(driver) -> float:
    return driver.execute_script("""
        const t = document.querySelector('#timeline').getBoundingClientRect();
        const c = document.querySelector('#cursor').getBoundingClientRect();
        return (c.left + c.width / 2 - t.left) / t.width;""")


def bar_column(driver) -> float:
    """Column of the sweeping white bar in the frame the <video> shows, as a fraction of its width."""
    return driver.execute_script("""
        const v = document.querySelector('#player');
        const c = document.createElement('canvas');
        c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0);
        const row = g.getImageData(0, 5, c.width, 1).data;
        let best = 0, bestValue = -1;
        for (let x = 0; x < c.width; x++) {
          const value = row[4 * x] + row[4 * x + 1] + row[4 * x + 2];
          if (value > bestValue) { bestValue = value; best = x; }
        }
        return best / c.width;""")


def timeline_pixel(driver, fraction_x: float, y: int = 3) -> list[int]:
    return driver.execute_script("""
        const canvas = document.querySelector('#timeline-canvas');
        const x = Math.round(arguments[0] * (canvas.width - 1));
        return Array.from(canvas.getContext('2d').getImageData(x, arguments[1], 1, 1).data);""", fraction_x, y)


def test_viewer_in_chromium(browser, served):
    url, tmp_path = served
    driver = browser
    started = time.perf_counter()

    # -- a scored video: the page lists it, loads the mp4 and draws the timeline ----------------------------
    driver.get(f"{url}/#/video/runs/scored/clip")
    wait_for(driver, "document.body.dataset.ready === 'true'", message="the page never finished loading")
    listed = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#video-list a")]
    assert listed == ["clip"]
    duration = wait_for(driver, "Number.isFinite(document.querySelector('#player')?.duration) && "
                                "document.querySelector('#player').readyState >= 2 && "
                                "document.querySelector('#player').duration",
                        message="Chromium did not load the H.264 video (no duration)")
    assert duration == pytest.approx(4.0, abs=0.05)

    # -- events are drawn: listed, and shaded on the canvas (reddish where the event is, white elsewhere) ---
    events = driver.find_elements(By.CSS_SELECTOR, "#events li.event")
    assert len(events) == 1 and events[0].text.startswith("2.00–3.00 s")
    inside = timeline_pixel(driver, 2.5 / 4.0)
    outside = timeline_pixel(driver, 0.5 / 4.0)
    assert outside[:3] == [255, 255, 255]
    assert inside[0] > inside[2] + 20 and inside[1] < 240, f"event not shaded: {inside}"

    # -- timeline -> video: clicking at 75 % seeks there ------------------------------------------------------
    timeline = driver.find_element(By.ID, "timeline")
    width = timeline.size["width"]
    ActionChains(driver).move_to_element_with_offset(timeline, int(round(0.25 * width)), 0).click().perform()
    wait_for(driver, "Math.abs(document.querySelector('#player').currentTime - 3.0) < 0.08 && "
                     "!document.querySelector('#player').seeking",
             message="clicking the timeline at 75% did not seek the video to 3 s")
    assert cursor_fraction(driver) == pytest.approx(0.75, abs=0.01)
    # the frame on screen is frame ~75 of 100: the white bar has swept three quarters of the way
    assert bar_column(driver) == pytest.approx(75 / 99 * (152 / 160), abs=0.04)
    readout = driver.find_element(By.ID, "readout").text
    assert "frame 75" in readout or "frame 74" in readout, readout

    # -- video -> timeline: playing (muted) moves the cursor ---------------------------------------------------
    driver.find_element(By.CSS_SELECTOR, "#events li.event").click()  # an event seeks to its start (2 s)
    wait_for(driver, "Math.abs(document.querySelector('#player').currentTime - 2.0) < 0.08 && "
                     "!document.querySelector('#player').seeking",
             message="clicking an event did not seek to its start")
    # the cursor moves on the 'seeked' event, dispatched after currentTime changes: give it that moment
    WebDriverWait(driver, 5, poll_frequency=0.05).until(lambda d: abs(cursor_fraction(d) - 0.5) <= 0.01,
                                                         "the cursor did not follow the seek to the event's start")
    before = cursor_fraction(driver)
    assert before == pytest.approx(0.5, abs=0.01)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.querySelector('#player');
        v.muted = true;
        v.play().then(() => done(true), (err) => done(String(err)));""")
    wait_for(driver, "document.querySelector('#player').currentTime > 2.6", timeout=10,
             message="the video did not play")
    after = cursor_fraction(driver)
    current = driver.execute_script("return document.querySelector('#player').currentTime")
    driver.execute_script("document.querySelector('#player').pause()")
    assert after > before + 0.1, (before, after)
    assert after == pytest.approx(current / duration, abs=0.05)  # the cursor follows the video, not a clock

    # -- an evaluation run: metrics and the ROC image ---------------------------------------------------------
    driver.find_element(By.CSS_SELECTOR, f"#run-list a[data-id='{RUN_ID}']").click()
    wait_for(driver, "document.querySelector(\"#metrics tr[data-key='micro_auc'] td\")",
             message="the run page shows no metrics")
    assert driver.find_element(By.CSS_SELECTOR, "#metrics tr[data-key='micro_auc'] td").text == "0.8765"
    assert driver.find_element(By.CSS_SELECTOR, "#protocol tr[data-key='dataset'] td").text == "ucsd_ped2"
    assert wait_for(driver, "document.querySelector('#plot-roc')?.complete && "
                            "document.querySelector('#plot-roc').naturalWidth") == 160

    # -- upload through the page: scored in the background, then listed and playable -----------------------
    upload = write_video(tmp_path / "my upload.mp4", make_frames(30, size=(96, 64)), fps=25.0)
    driver.find_element(By.ID, "upload-file").send_keys(str(upload))
    driver.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait_for(driver, "document.querySelector('#job-list li.done a')", timeout=30,
             message="the uploaded video was never reported scored")
    wait_for(driver, "document.querySelectorAll('#video-list a').length === 2",
             message="the scored upload did not appear in the list")
    driver.find_element(By.CSS_SELECTOR, "#job-list li.done a").click()
    wait_for(driver, "document.querySelector('.video-view .title')?.textContent.startsWith('my_upload-')",
             message="the scored upload did not open")
    assert wait_for(driver, "document.querySelector('#player').readyState >= 1 && "
                            "document.querySelector('#player').duration") == pytest.approx(30 / 25, abs=0.05)

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    print(f"browser session took {time.perf_counter() - started:.1f} s")


def small_scores(num_frames: int = 100, abnormal: tuple[int, int] = (50, 74)) -> np.ndarray:
    """k-NN-like cosine distances: 0.03-0.04 in normal frames, 0.07 in the abnormal ones (threshold 0.06)."""
    rng = np.random.default_rng(1)
    scores = 0.03 + 0.01 * rng.random(num_frames)
    scores[abnormal[0]:abnormal[1] + 1] = 0.07
    return scores


def test_timeline_scales_to_small_scores(browser, tmp_path):
    """Scores around 0.03-0.07 (threshold 0.06) fill the plot instead of lying flat at the bottom of a [0, 1] axis;
    null scores (frames 10-14) are gaps in the line."""
    driver = browser
    runs = tmp_path / "runs"
    folder = runs / "scored" / "knn"
    write_scored_folder(folder, make_frames(100, size=(160, 120)), small_scores(), threshold=0.06)
    result = json.loads((folder / "result.json").read_text())
    for key in ("scores", "smoothed"):
        result[key][10:15] = [None] * 5  # what `vadkit score` writes for a frame it could not score
    (folder / "result.json").write_text(json.dumps(result))
    finite = [s for s in result["scores"] + result["smoothed"] if s is not None]
    assert 0.029 < min(finite) and max(finite) < 0.071

    with LiveServer(create_app(runs, scorer=brightness_scorer, detector="toy")) as url:
        driver.get(f"{url}/#/video/runs/scored/knn")
        wait_for(driver, "document.body.dataset.ready === 'true'", message="the page never finished loading")
        wait_for(driver, "document.querySelector('#timeline-canvas')?.dataset.yMax",
                 message="the timeline exposes no y range (data-y-min / data-y-max on its canvas)")
        drawn = driver.execute_script("""
            const canvas = document.querySelector('#timeline-canvas');
            const { width, height } = canvas;
            const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
            const blue = (i) => data[i + 2] > 150 && data[i] < 110 && data[i + 1] < 150;   // the smoothed line
            const red = (i) => data[i] > 200 && data[i] - data[i + 1] > 60 && data[i] - data[i + 2] > 60;  // threshold
            const gray = (i) => Math.abs(data[i] - data[i + 2]) < 40 && data[i] < 200 && !blue(i);  // the raw line
            const blueRows = [], redRows = [];
            for (let y = 0; y < height; y++) {
              for (let x = Math.round(0.05 * width); x < width; x++) {  // clear of the tick labels at the left
                const i = 4 * (y * width + x);
                if (blue(i)) { blueRows.push(y); break; }
              }
              let reds = 0;
              for (let x = 0; x < width; x++) if (red(4 * (y * width + x))) reds++;
              if (reds > width / 4) redRows.push(y);  // dashed: most of the row, not a stray pixel
            }
            const gapColumn = Math.round((12.5 / 100) * width);  // frame 12: inside the null run
            let inGap = 0;
            for (let y = 0; y < height; y++) {
              const i = 4 * (y * width + gapColumn);
              if (blue(i) || gray(i)) inGap++;
            }
            return { width, height, yMin: Number(canvas.dataset.yMin), yMax: Number(canvas.dataset.yMax),
                     plotHeight: Number(canvas.dataset.plotHeight), blueRows, redRows, inGap };""")

    lo, hi, height = drawn["yMin"], drawn["yMax"], drawn["height"]
    # the range is the data's and the threshold's, with a small margin: not [0, 1]
    assert lo < min(finite) and hi > max(finite) and lo < 0.06 < hi, (lo, hi)
    assert hi - lo < 2 * (max(finite) - min(finite)), f"y range [{lo}, {hi}] is much wider than the scores"

    def pixel_y(value: float) -> float:  # in canvas pixels
        return height - (value - lo) / (hi - lo) * height

    # the max and the min score lie far apart on screen (they were ~4 % of the height apart on a [0, 1] axis) ...
    assert pixel_y(min(finite)) - pixel_y(max(finite)) > 0.3 * height
    # ... and so does the drawn smoothed line itself
    assert drawn["blueRows"], "no smoothed line drawn"
    assert max(drawn["blueRows"]) - min(drawn["blueRows"]) > 0.3 * height, drawn["blueRows"]
    # the threshold line lies inside the plot, where the range says, and is drawn there
    threshold_y = pixel_y(0.06)
    assert 0 < threshold_y < height
    assert any(abs(row - threshold_y) <= 2 for row in drawn["redRows"]), (threshold_y, drawn["redRows"])
    # null scores are gaps, not drops to 0 nor a line bridged across them
    assert drawn["inGap"] == 0, f"{drawn['inGap']} line pixels in the column of frame 12 (a null score)"

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
