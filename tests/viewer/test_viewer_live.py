"""The viewer's live pages (`vadkit serve --watch-dir`) on real `vadkit watch` output: the API and its event stream
over a real uvicorn server, and the page in headless Chromium while a watcher plays the demo clip in real time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("fastapi", reason="the viewer needs fastapi (pip install fastapi uvicorn python-multipart)")
from test_viewer_browser import browser, wait_for  # noqa: E402,F401 - the module's browser fixture, shared
from viewer_builders import LiveServer  # noqa: E402

from vadkit.viewer import create_app  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"
STREAM = "ped2_test004"


def _weights():
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")


@pytest.fixture(scope="module")
def watched(tmp_path_factory) -> Path:
    """A finished `vadkit watch` folder: the demo clip read as a file (180 frames, one event 42-179)."""
    _weights()
    from vadkit.inference import resolve_model
    from vadkit.inference.watch import WatchOptions, watch

    out = tmp_path_factory.mktemp("live") / "watch"
    watch([str(DEMO)], resolve_model("ped2-knn", backend="torch"), out, WatchOptions(batch_size=4))
    return out


@pytest.fixture(scope="module")
def live_server(watched, tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("runs"), watch_dir=watched)
    with LiveServer(app) as url:
        yield url


@dataclass
class Got:
    status_code: int
    headers: dict
    content: bytes

    def json(self):
        return json.loads(self.content)


def get(url: str) -> Got:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return Got(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as err:
        return Got(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def stream_lines(url: str, headers: dict | None = None, timeout: float = 20.0) -> Iterator[str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
        for raw in response:
            yield raw.decode().rstrip("\r\n")


def read_events(url: str, wanted, timeout: float = 20.0) -> list[tuple[str, dict]]:
    """Server-sent events from ``url`` until ``wanted(events)`` holds (or the timeout)."""
    events: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    kind, data = None, None
    for line in stream_lines(url, timeout=timeout):
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and kind is not None:
            events.append((kind, data))
            kind = data = None
            if wanted(events):
                break
        if time.monotonic() > deadline:
            break
    return events


def test_the_streams_are_listed_with_their_status(live_server):
    streams = get(f"{live_server}/api/live").json()
    assert [s["name"] for s in streams] == [STREAM]
    assert streams[0]["state"] == "ended" and streams[0]["frames"] == 180 and streams[0]["events"] == 1
    assert get(f"{live_server}/api/info").json()["live"] is True


def test_a_stream_page_starts_from_recent_scores_events_and_the_frame(live_server):
    page = get(f"{live_server}/api/live/{STREAM}?seconds=10").json()
    frames = [r["frame"] for r in page["rows"] if "frame" in r]
    assert frames == list(range(80, 180))  # the last 10 s at 10 fps, no more
    (event,) = page["recent_events"]
    assert (event["start_frame"], event["end_frame"]) == (42, 179)
    for url in (page["frame_url"], event["thumbnail_url"], event["clip_url"]):
        response = get(live_server + url)
        assert response.status_code == 200 and len(response.content) > 1000, url
    assert response.headers["content-type"] == "video/mp4"
    assert page["resume"]["event"] == 1 and page["resume"]["chunk"] >= 1


def test_the_event_stream_sends_every_row_and_event_from_where_it_is_asked(live_server):
    def complete(events):
        rows = [r for kind, d in events if kind == "scores" for r in d["rows"] if "frame" in r]
        return len(rows) == 180 and {"event", "status", "frame"} <= {kind for kind, _ in events}

    events = read_events(f"{live_server}/api/live/{STREAM}/events?chunk=0&event=0", complete)
    kinds = {kind for kind, _ in events}
    assert {"scores", "event", "status", "frame"} <= kinds, kinds
    rows = [r for kind, d in events if kind == "scores" for r in d["rows"] if "frame" in r]
    assert [r["frame"] for r in rows] == list(range(180))
    assert [d["start_frame"] for kind, d in events if kind == "event"] == [42]


def test_a_reconnecting_browser_resumes_from_its_last_event_id(live_server):
    events = read_events(f"{live_server}/api/live/{STREAM}/events", lambda e: any(k == "status" for k, _ in e))
    assert not [k for k, _ in events if k in ("scores", "event")]  # nothing new since the page was loaded
    for line in stream_lines(f"{live_server}/api/live/{STREAM}/events", headers={"Last-Event-ID": "0.1"}):
        if line.startswith("event: "):
            assert line == "event: scores"  # chunk 0 again: resumed from the id, not from now
            break


@pytest.mark.parametrize("name, status", [("nope", 404), ("..", 403), (".hidden", 403), ("a%20b", 403)])
def test_unknown_or_unsafe_stream_names_are_refused(live_server, name, status):
    assert get(f"{live_server}/api/live/{name}").status_code == status
    assert get(f"{live_server}/api/live/{name}/events").status_code == status


def test_serve_refuses_a_watch_dir_that_is_a_file(tmp_path):
    from typer.testing import CliRunner

    from vadkit.cli import app

    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["serve", "--watch-dir", str(tmp_path / "file")])
    assert result.exit_code == 1 and "--watch-dir" in result.output and "vadkit watch" in result.output


def test_the_live_page_follows_a_running_watcher(browser, tmp_path):  # noqa: F811 - pytest's fixture
    """`vadkit watch --realtime --loop` writes; the page shows the frame, scrolls the scores, marks the open event
    and lists the closed one with its thumbnail."""
    _weights()
    out = tmp_path / "watch"
    watcher = subprocess.Popen([sys.executable, "-m", "vadkit.cli", "watch", str(DEMO), "--realtime", "--loop",
                                "--out", str(out), "--backend", "torch", "--pre-roll", "1", "--post-roll", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out / STREAM / "status.json").is_file():
            assert time.monotonic() < deadline and watcher.poll() is None, "the watcher wrote no status"
            time.sleep(0.2)
        with LiveServer(create_app(tmp_path / "runs", watch_dir=out)) as url:
            browser.get(f"{url}/#/live/{STREAM}")
            wait_for(browser, "document.body.dataset.ready === 'true'")
            assert browser.execute_script("return document.querySelector('#live-list a').textContent") == STREAM
            first = wait_for(browser, "Number(document.querySelector('.live-view')?.dataset.lastFrame) >= 0", 30)
            wait_for(browser, "document.querySelector('#live-frame').naturalWidth > 0")
            wait_for(browser, f"Number(document.querySelector('#live-canvas').dataset.last) > {int(first) + 20}", 30,
                     "the timeline did not scroll")
            wait_for(browser, "document.querySelector('.live-view').dataset.open === 'true'", 60,
                     "no open event shown")
            assert "EVENT OPEN" in browser.execute_script("return document.querySelector('#live-open').textContent")
            blue = browser.execute_script("""
                const c = document.querySelector('#live-canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i + 1] < 120 && d[i + 2] > 180) n++;
                return n;""")
            assert blue > 50, "no smoothed-score line drawn"
            wait_for(browser, "document.querySelector('#live-events li.event img')?.naturalWidth > 0", 60,
                     "the closed event's thumbnail is not listed")
            text = browser.execute_script("return document.querySelector('#live-events li.event').textContent")
            assert "frames 42–" in text
            browser.get("about:blank")  # closes the page's event stream before the server stops
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert watcher.returncode == 0, watcher.stderr.read()[-2000:]
