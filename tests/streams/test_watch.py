"""`vadkit watch` on files (a file is a stream that ends): the same scores and events as `vadkit score`, the skip
policy, complete files after SIGTERM, the webhook, the streaming smoother and event tracker against their batch
versions. The RTSP tests (a real server) are in test_watch_rtsp.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from vadkit.report.events import EventTracker, find_events
from vadkit.scoring import StreamingGaussian, gaussian_smooth

DEMO = Path(__file__).resolve().parents[2] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"


def _weights():
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")


def read_rows(folder: Path) -> list[dict]:
    rows = []
    for chunk in sorted((folder / "scores").glob("*.jsonl")):
        rows += [json.loads(line) for line in chunk.read_text().splitlines()]
    return rows


# ---------------------------------------------------------------------------------------------------------------
# The streaming pieces equal their batch versions
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_streaming_smoother_and_tracker_equal_the_batch_versions(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    sigma = float(rng.choice([0.0, 1.0, 2.5, 3.0]))
    x = rng.normal(size=n).cumsum()
    reference = gaussian_smooth(x, sigma)
    smoother, parts, i = StreamingGaussian(sigma), [], 0
    while i < n:
        k = int(rng.integers(1, 20))
        parts.append(smoother.push(x[i:i + k]))
        i += k
    parts.append(smoother.flush())
    np.testing.assert_allclose(np.concatenate(parts), reference, rtol=0, atol=1e-9)

    threshold = float(np.quantile(reference, 0.6))
    min_frames, merge_gap = int(rng.integers(1, 10)), int(rng.integers(0, 8))
    expected = [(e.start_frame, e.end_frame, e.peak_frame) for e in find_events(reference, threshold, 10, min_frames,
                                                                                 merge_gap)]
    tracker, opened, closed, i = EventTracker(threshold, 10, min_frames, merge_gap), [], [], 0
    while i < n:
        k = int(rng.integers(1, 20))
        for kind, e in tracker.push(reference[i:i + k]):
            (opened if kind == "open" else closed).append((e.start_frame, e.end_frame, e.peak_frame))
        i += k
    closed += [(e.start_frame, e.end_frame, e.peak_frame) for _, e in tracker.finish()]
    assert closed == expected and len(opened) == len(expected)


def test_the_smoother_keeps_bounded_memory():
    smoother = StreamingGaussian(3.0)
    for _ in range(2000):
        smoother.push(np.ones(16))
    assert len(smoother._values) <= 2 * smoother.radius + 1


# ---------------------------------------------------------------------------------------------------------------
# Watching a file
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    _weights()
    from vadkit.inference import resolve_model, score_videos
    from vadkit.inference.watch import WatchOptions, watch

    root = tmp_path_factory.mktemp("watch")
    messages: list[dict] = []
    model = resolve_model("ped2-knn", backend="torch")
    summary = watch([str(DEMO)], model, root / "out", WatchOptions(batch_size=4), emit=messages.append)
    scored = score_videos([DEMO], resolve_model("ped2-knn", backend="torch"), root / "scored", progress=False,
                          write_annotated=False)[0]
    return root / "out" / "ped2_test004", summary["ped2_test004"], messages, scored


def test_watching_a_file_gives_vadkit_scores_scores_and_events(watched):
    folder, summary, messages, scored = watched
    rows = [r for r in read_rows(folder) if "frame" in r]
    assert [r["frame"] for r in rows] == list(range(180)) and summary["skipped_frames"] == 0
    np.testing.assert_allclose([r["score"] for r in rows], scored["scores"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose([r["smoothed"] for r in rows], scored["smoothed"], rtol=1e-5, atol=1e-7)
    closed = [m for m in messages if m["type"] == "event"]
    assert [(m["start_frame"], m["end_frame"]) for m in closed] == \
           [(e["start_frame"], e["end_frame"]) for e in scored["events"]] == [(42, 179)]
    opened = [m for m in messages if m["type"] == "event_open"]
    assert len(opened) == 1 and opened[0]["start_frame"] == 42 and opened[0]["latency_s"] >= 0


def test_every_output_file_is_complete(watched):
    folder, summary, messages, _ = watched
    status = json.loads((folder / "status.json").read_text())
    assert status["frames"] == 180 and status["events"] == 1 and status["state"] == "ended"
    event = json.loads((folder / "events" / "0000.json").read_text())
    assert event["event"]["start_frame"] == 42 and (folder / "events" / "0000.jpg").stat().st_size > 1000
    from vadkit.io import open_video

    clip = open_video(folder / "events" / "0000.mp4")
    assert clip.num_frames >= 138  # the event (42-179) and its pre-roll; the file ended before any post-roll
    assert (folder / "latest.jpg").is_file()


def test_the_skip_policy_drops_whole_snippets_and_keeps_the_queue_bounded(tmp_path):
    """A scorer slower than the reader (a one-snippet queue, a slowed detector): snippets are skipped, counted,
    never scored late, and the queue never holds more than its bound."""
    _weights()
    from vadkit.inference import resolve_model
    from vadkit.inference.watch import WatchOptions, watch

    model = resolve_model("ped2-knn", backend="torch")
    detector = model.detector
    original = detector.score

    def slow(item):
        time.sleep(0.4)
        return original(item)

    detector.score = slow
    summary = watch([str(DEMO)], model, tmp_path, WatchOptions(batch_size=1, queue_snippets=1, write_clips=False,
                                                                  backpressure=False),
                    emit=lambda m: None)["ped2_test004"]
    assert summary["skipped_frames"] > 0 and summary["skipped_frames"] % 16 == 0
    assert summary["queue_max_seen"] <= summary["queue_bound"] == 1
    rows = [r for r in read_rows(tmp_path / "ped2_test004") if "frame" in r]
    assert len(rows) == summary["scored_frames"] < 180
    assert len({r["frame"] for r in rows}) == len(rows)  # nothing scored twice


@pytest.fixture(scope="module")
def sendec_model(tmp_path_factory):
    """A tiny sEnDec (a frame detector) fitted on two short synthetic videos."""
    from vadkit.detectors import VideoItem, build_detector
    from vadkit.inference.bundle import LoadedModel
    from vadkit.io import write_video

    root = tmp_path_factory.mktemp("sendec")
    rng = np.random.default_rng(0)
    train = []
    for i in range(2):
        frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(12)]
        train.append(VideoItem(id=f"v{i}", num_frames=12, path=write_video(root / f"v{i}.mp4", frames, fps=10)))
    detector = build_detector("sendec", clip_length=2, height=32, width=32, batch_size=4, epochs=1, bn_clips=4,
                              optimizer="adam", lr=1e-3, threads=1, seed=0).fit(train, progress=False)
    return LoadedModel(detector=detector, source="sendec-test")


def _segment_scores(detector, frames: list[np.ndarray], length: int, folder: Path) -> np.ndarray:
    """Each run of ``length`` frames written as its own frame folder and scored as one video."""
    import cv2

    from vadkit.detectors import VideoItem

    out = []
    for start in range(0, len(frames), length):
        part = folder / f"{start:06d}"
        part.mkdir(parents=True)
        for i, frame in enumerate(frames[start:start + length]):
            cv2.imwrite(str(part / f"{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        n = len(frames[start:start + length])
        out.append(detector.score(VideoItem(id="segment", num_frames=n, path=part)).values)
    return np.concatenate(out)


def test_frame_detectors_watch_in_segments_each_scored_as_one_video(sendec_model, tmp_path):
    """sEnDec watches the demo clip (180 frames at 10 fps) in 5 s segments: 50, 50, 50 and 30 frames, each scored
    as one video (the segment's frames, losslessly), every frame once; the segment folders are gone after."""
    from vadkit.inference.watch import WatchOptions, watch
    from vadkit.io import open_video

    summary = watch([str(DEMO)], sendec_model, tmp_path / "out", WatchOptions(segment_s=5.0, write_clips=False),
                    emit=lambda m: None)["ped2_test004"]
    rows = [r for r in read_rows(tmp_path / "out" / "ped2_test004") if "frame" in r]
    assert [r["frame"] for r in rows] == list(range(180)) and summary["skipped_frames"] == 0
    with open_video(DEMO) as video:
        assert video.fps == 10
        frames = list(video.frames())
    expected = _segment_scores(sendec_model.detector, frames, 50, tmp_path / "segments")
    assert np.abs(np.array([r["score"] for r in rows]) - expected).max() <= 1e-6
    assert not (tmp_path / "out" / "ped2_test004" / ".segments").exists()


def test_the_skip_policy_drops_whole_segments(sendec_model, tmp_path):
    """A frame detector slower than a file played without back-pressure, one segment of queue: whole 1 s
    segments (10 frames) are skipped and counted, the others scored once, none left on disk."""
    from vadkit.inference.watch import WatchOptions, watch

    detector = sendec_model.detector
    original = detector.score

    def slow(item):
        time.sleep(0.3)
        return original(item)

    detector.score = slow
    try:
        summary = watch([str(DEMO)], sendec_model, tmp_path, WatchOptions(segment_s=1.0, queue_segments=1,
                                                                           write_clips=False, backpressure=False),
                        emit=lambda m: None)["ped2_test004"]
    finally:
        del detector.score
    assert summary["skipped_frames"] > 0 and summary["skipped_frames"] % 10 == 0
    assert summary["queue_max_seen"] <= summary["queue_bound"] == 1
    rows = [r for r in read_rows(tmp_path / "ped2_test004") if "frame" in r]
    assert len(rows) == summary["scored_frames"] == 180 - summary["skipped_frames"]
    assert len({r["frame"] for r in rows}) == len(rows)
    assert not (tmp_path / "ped2_test004" / ".segments").exists()


def test_sigterm_closes_the_open_event_and_exits_0(tmp_path):
    """A looped file in real time, SIGTERM during the anomaly: exit 0, the open event closed and saved, every score
    chunk complete JSON."""
    _weights()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vadkit.cli", "watch", str(DEMO), "--realtime", "--loop",
                                "--out", str(tmp_path), "--backend", "torch", "--pre-roll", "1", "--post-roll", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()  # the first event opens about 6 s in (frame 42 at 10 fps + delays)
        assert json.loads(first)["type"] == "event_open", first
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and lines[-1]["type"] == "event" and lines[-1]["start_frame"] == 42
    folder = tmp_path / "ped2_test004"
    assert json.loads((folder / "events" / "0000.json").read_text())["event"]["start_frame"] == 42
    assert (folder / "events" / "0000.mp4").is_file()
    rows = read_rows(folder)  # every chunk parses
    assert rows and json.loads((folder / "status.json").read_text())["state"] == "stopped"


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = [True]

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.fail_first[0]:
            self.fail_first[0] = False
            self.send_response(500)
            self.end_headers()
            return
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_webhook_retries_and_never_blocks(tmp_path):
    from vadkit.inference.watch import Webhook

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = Webhook(f"http://127.0.0.1:{server.server_port}/events", backoff=0.05)
        for i in range(3):
            hook.post({"type": "event", "n": i})
        hook.close(wait_s=10)
        assert [m["n"] for m in _Hook.received] == [0, 1, 2] and hook.sent == 3 and hook.failed == 0
        dead = Webhook("http://127.0.0.1:9/nothing-listens", tries=2, backoff=0.01)
        dead.post({"n": 1})
        dead.close(wait_s=5)
        assert dead.failed == 1
        stuck = Webhook("http://127.0.0.1:9/nothing-listens", tries=3, backoff=60)
        start = time.monotonic()
        stuck.post({"n": 1})
        stuck.post({"n": 2})
        # posting never waits for the network: a blocking post would wait out the 60 s back-off (generous bound)
        assert time.monotonic() - start < 10
        stuck.close(wait_s=0.1)
    finally:
        server.shutdown()


def test_vadkit_score_is_unchanged_by_the_streaming_work(shared_data, tmp_path):
    """Ped2 test clips 01-04 scored now (torch backend) equal, to result.json's 6 digits, what the code before the
    runtime and streaming changes wrote (tests/fixtures/ped2_score_reference.json), events included."""
    _weights()
    from vadkit.inference import score_videos

    reference = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "ped2_score_reference.json").read_text())
    folders = [shared_data / "ucsd_ped2" / "testing" / "frames" / name for name in reference["videos"]]
    results = score_videos(folders, "ped2-knn", tmp_path, progress=False, backend="torch", write_annotated=False)
    for result in results:
        expected = reference["videos"][result["name"]]
        # within 1e-5 relative: the fixture's 6 digits were written on another CPU model; on this project's AMD EPYC
        # machine the code before the streaming work (161e92d) differs from them by up to 6e-6 too (oneDNN's kernels
        # differ by CPU), far below any change the streaming work could make
        assert len(result["scores"]) == len(expected["scores"]), result["name"]
        np.testing.assert_allclose(result["scores"], expected["scores"], rtol=1e-5, atol=1e-9, err_msg=result["name"])
        assert [[e["start_frame"], e["end_frame"]] for e in result["events"]] == expected["events"]
