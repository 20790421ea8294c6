"""What a new user meets in the first hour (issue: right times for frame folders, guidance when the footage is too
short, evaluation that does not write into the model, extract like score, serve before watch)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vadkit.cli import app
from vadkit.datasets.layouts import find_layout, frame_rate
from vadkit.detectors import Detector, VideoItem
from vadkit.inference import score_video
from vadkit.io import open_video

DEMO = Path(__file__).resolve().parents[1] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"
runner = CliRunner()


class Brightness(Detector):
    """A frame detector for the tests: a frame's score is its mean brightness in [0, 1]; fixed threshold 0.5."""

    name = "brightness-first-hour"
    inputs = "frames"
    threshold_rule = "fixed 0.5"

    def _fit(self, train, progress):
        self.threshold_ = 0.5

    def _score(self, item):
        return np.array([f.mean() / 255.0 for f in open_video(item.path).truncated(item.num_frames).frames()])


def write_folder(folder: Path, n: int, bright: tuple[int, int] = (0, 0), size: tuple[int, int] = (32, 24)) -> Path:
    """``n`` dark jpg frames with a bright stretch ``bright`` (frames [a, b))."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        value = 230 if bright[0] <= i < bright[1] else 30
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.full((size[1], size[0], 3), value, np.uint8))
    return folder


def ucsd_frames_layout(root: Path, train: dict[str, int], test: dict[str, tuple[int, tuple[int, int]]]) -> Path:
    """A UCSD Ped2 frames layout: ``ped2/training/frames/<nn>``, ``ped2/testing/frames/<nn>`` and ``ped2.mat``
    (1-based inclusive ranges, as the benchmark ships it)."""
    from scipy.io import savemat

    ped2 = root / "ped2"
    for name, n in train.items():
        write_folder(ped2 / "training" / "frames" / name, n)
    cell = np.empty((1, len(test)), dtype=object)
    for i, (name, (n, bright)) in enumerate(test.items()):
        write_folder(ped2 / "testing" / "frames" / name, n, bright)
        cell[0, i] = np.array([[bright[0] + 1], [bright[1]]], dtype=np.uint16)
    savemat(ped2 / "ped2.mat", {"gt": cell})
    return ped2


def demo_frames(folder: Path, n: int) -> Path:
    """The first ``n`` frames of the bundled Ped2 demo clip as a frame folder (real content, no rate of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open_video(DEMO) as video:
        for i, frame in enumerate(video.frames(0, n)):
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def needs_weights():
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")


def tree_digest(folder: Path) -> str:
    """One hash over every file's relative path, bytes and modification time in ``folder``."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder)}|{file.stat().st_mtime_ns}|".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# 1. frame rates
# ---------------------------------------------------------------------------------------------------------------
def test_a_ucsd_layout_frame_folder_is_10_fps_in_events_csv_and_result(tmp_path):
    ped2 = ucsd_frames_layout(tmp_path / "data", {"01": 20}, {"01": (60, (20, 40))})
    folder = ped2 / "testing" / "frames" / "01"
    assert find_layout(folder).key == "test/Test001" and frame_rate(folder) == (10.0, "the ucsd_ped2 layout's rate")
    result = score_video(folder, Brightness().fit([VideoItem(id="x", num_frames=1)], progress=False),
                         tmp_path / "out", smoothing_sigma=0, min_event_frames=4, write_annotated=False)
    assert result["fps"] == 10.0 and result["duration_s"] == 6.0 and "ucsd_ped2" in result["fps_source"]
    [event] = result["events"]
    assert (event["start_frame"], event["end_frame"]) == (20, 39)
    assert (event["start_s"], event["end_s"]) == (2.0, 4.0)  # at the default 25 fps it read 0.8-1.6 s
    rows = (tmp_path / "out" / "scores.csv").read_text().splitlines()
    assert rows[21].startswith("20,2.0000,")
    events = (tmp_path / "out" / "events.csv").read_text().splitlines()
    assert events[0].startswith("event,start_frame,end_frame,start_s,end_s") and events[1].startswith("0,20,39,2,4,")


def test_a_folder_outside_any_layout_is_25_fps_unless_fps_says(tmp_path):
    folder = write_folder(tmp_path / "cam" / "clip", 30, (10, 20))
    assert find_layout(folder) is None
    assert frame_rate(folder)[0] == 25.0 and "--fps" in frame_rate(folder)[1]
    assert frame_rate(folder, 12.5) == (12.5, "given with --fps")
    assert frame_rate(DEMO, 5.0) == (None, "the video file's own rate")  # a file keeps its own
    with pytest.raises(ValueError, match="--fps must be a positive"):
        frame_rate(folder, 0)
    result = score_video(folder, Brightness().fit([VideoItem(id="x", num_frames=1)], progress=False),
                         tmp_path / "out", smoothing_sigma=0, min_event_frames=4, write_annotated=False, fps=5)
    assert result["fps"] == 5.0 and result["fps_source"] == "given with --fps"
    assert result["events"][0]["start_s"] == 2.0


def test_score_fps_on_a_frame_folder_from_the_command_line(tmp_path):
    needs_weights()
    folder = demo_frames(tmp_path / "clip", 32)
    done = runner.invoke(app, ["score", str(folder), "--out", str(tmp_path / "out"), "--no-video", "--fps", "5",
                               "--backend", "torch"])
    assert done.exit_code == 0, done.output
    assert "at 5 fps (given with --fps" in done.output
    result = json.loads((tmp_path / "out" / "clip" / "result.json").read_text())
    assert result["fps"] == 5.0 and result["duration_s"] == 6.4 and result["fps_source"] == "given with --fps"


# ---------------------------------------------------------------------------------------------------------------
# 2-3. fit-normal on short footage, evaluate into a folder of its own
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_fit(tmp_path_factory):
    """`vadkit fit-normal` on four 48-frame clips of a UCSD layout (10 fps): far too short for --far 0.01."""
    needs_weights()
    root = tmp_path_factory.mktemp("short")
    ped2 = ucsd_frames_layout(root, {}, {"01": (64, (42, 64))})  # the demo clip's event starts at frame 42
    for i in range(4):
        demo_frames(ped2 / "training" / "frames" / f"{i + 1:02d}", 48)
    demo_frames(ped2 / "testing" / "frames" / "01", 64)
    done = runner.invoke(app, ["fit-normal", *(str(p) for p in sorted((ped2 / "training" / "frames").iterdir())),
                               "--out", str(root / "run"), "--method", "knn", "--far", "0.01"])
    return root, done


def test_fit_normal_says_when_the_footage_is_too_short_for_far(short_fit):
    root, done = short_fit
    assert done.exit_code == 0, done.output
    output = " ".join(done.output.split())
    assert "frame rate: 10 fps (the ucsd_ped2 layout's rate)" in output
    assert "too short for --far 0.01: 3 held-out snippets" in output
    assert "needs at least 100 (1/far), about 2.7 min of held-out footage at 10 fps" in output
    assert "roughly 13 min of normal footage with --holdout 0.2" in output
    calibration = json.loads((root / "run" / "calibration.json").read_text())
    assert f"The threshold was set to {calibration['threshold']:.4g} instead" in output
    assert calibration["fps"] == {"10 fps": "the ucsd_ped2 layout's rate"} and len(calibration["warnings"]) == 1


def test_fit_normal_objects_counts_held_out_frames_in_blocks():
    """The objects detector holds out frames, not snippets: neighbouring frames share their objects and are smoothed
    together, so 420 held-out frames (42 s at 10 fps, what three Ped2 clips give) are 26 blocks of 16, too few for
    --far 0.01; 2,550 frames (the 16 Ped2 training clips) are enough."""
    from vadkit.engine.oneclass import short_footage_warnings

    report = {"held_out": 420, "held_out_unit": "frames", "achieved_far": 0.0119}
    (warning,) = short_footage_warnings(report, 17.07, 0.01, None, 1, 10.0)
    assert "420 held-out frames, 26 blocks of 16" in warning and "needs at least 100 blocks" in warning
    assert "about 2.7 min of held-out footage at 10 fps" in warning and "each video is held out in turn" in warning
    assert "The threshold was set to 17.07 instead" in warning and "ask for --far 0.038 or more" in warning
    assert short_footage_warnings({**report, "held_out": 2550}, 1.26, 0.01, None, 1, 10.0) == []


def test_evaluate_out_leaves_the_model_folder_untouched_and_reuses_scored_results(short_fit, tmp_path):
    root, done = short_fit
    assert done.exit_code == 0, done.output
    run, clip = root / "run", root / "ped2" / "testing" / "frames" / "01"
    (tmp_path / "labels.csv").write_text("video,start,end\n01,42,64\n")
    before = tree_digest(run)
    args = ["evaluate", str(run), "--videos", str(clip), "--labels", str(tmp_path / "labels.csv"), "--json"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "eval")])
    assert first.exit_code == 0, first.output
    assert tree_digest(run) == before  # nothing written into the model's folder
    metrics = json.loads(first.output.strip().splitlines()[-1])
    assert metrics["out"] == str(tmp_path / "eval") and metrics["num_frames"] == 64 and not metrics["reused_scores"]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["micro_auc"] == metrics["micro_auc"]
    assert (tmp_path / "eval" / "scores" / "01.npy").is_file() and (tmp_path / "eval" / "roc.png").is_file()

    scored = runner.invoke(app, ["score", str(clip), "--model", str(run), "--out", str(tmp_path / "scored"),
                                 "--no-video"])
    assert scored.exit_code == 0, scored.output
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "eval2"), "--scored", str(tmp_path / "scored")])
    assert second.exit_code == 0, second.output
    reused = json.loads(second.output.strip().splitlines()[-1])
    assert list(reused["reused_scores"]) == ["01"] and not (tmp_path / "eval2" / "features").exists()
    same = [np.load(tmp_path / folder / "scores" / "01.npy") for folder in ("eval", "eval2")]
    assert np.allclose(*same, atol=1e-5)  # vadkit score's runtime: features within 1e-4 of PyTorch's
    default = runner.invoke(app, ["evaluate", str(run), "--videos", str(clip), "--scored", str(tmp_path / "scored")])
    assert default.exit_code == 0, default.output
    assert (root / "run-eval" / "metrics.json").is_file() and tree_digest(run) == before
    refused = runner.invoke(app, ["evaluate", str(run), "--videos", str(clip), "--out", str(run)])
    assert refused.exit_code == 1 and "the model's own folder" in refused.output and tree_digest(run) == before


# ---------------------------------------------------------------------------------------------------------------
# 4. extract: some clips of a dataset, positional videos, keys train reads
# ---------------------------------------------------------------------------------------------------------------
def _manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())["videos"]


def test_extract_selects_clips_of_a_dataset(tmp_path):
    needs_weights()
    ped2 = ucsd_frames_layout(tmp_path / "data", {"01": 16, "02": 16, "03": 16}, {"01": (16, (4, 8))})
    base = ["extract", "--dataset", "ucsd_ped2", "--root", str(ped2), "--split", "train", "--backend", "torch"]
    picked = runner.invoke(app, [*base, "--videos", "03,Train001", "--out", str(tmp_path / "a")])
    assert picked.exit_code == 0, picked.output
    assert {k: v["fps"] for k, v in _manifest(tmp_path / "a").items()} == {"train/Train003": 10.0,
                                                                          "train/Train001": 10.0}
    limited = runner.invoke(app, [*base, "--limit", "1", "--out", str(tmp_path / "b")])
    assert limited.exit_code == 0, limited.output
    assert list(_manifest(tmp_path / "b")) == ["train/Train001"]
    unknown = runner.invoke(app, [*base, "--videos", "07", "--out", str(tmp_path / "c")])
    assert unknown.exit_code == 1 and "no video '07'" in unknown.output and "Train001 (01)" in unknown.output


def test_extract_takes_videos_as_arguments_under_the_keys_train_reads(tmp_path):
    needs_weights()
    from vadkit.datasets import get_dataset
    from vadkit.engine.train import ensure_features

    ped2 = ucsd_frames_layout(tmp_path / "data", {"01": 16, "02": 16}, {"01": (16, (4, 8))})
    own = write_folder(tmp_path / "mine" / "cam", 16)
    done = runner.invoke(app, ["extract", str(ped2 / "training" / "frames" / "01"), str(own), "--fps", "8",
                               "--out", str(tmp_path / "store"), "--backend", "torch"])
    assert done.exit_code == 0, done.output
    assert {k: v["fps"] for k, v in _manifest(tmp_path / "store").items()} == {"train/Train001": 8.0, "cam": 8.0}
    old = runner.invoke(app, ["extract", "--video", str(ped2 / "training" / "frames" / "02"),
                              "--out", str(tmp_path / "store"), "--backend", "torch"])
    assert old.exit_code == 0 and "deprecated" in old.output  # the old spelling still works
    assert _manifest(tmp_path / "store")["train/Train002"]["fps"] == 10.0
    said: list[str] = []
    records = get_dataset("ucsd_ped2", ped2).videos()
    ensure_features(records, tmp_path / "store", progress=False, say=said.append)
    assert len(said) == 1 and "extracting I3D features of 1 of 3 videos (16 frames)" in said[0]  # test/Test001 only
    ensure_features(records, tmp_path / "store", progress=False, say=said.append)
    assert len(said) == 1  # nothing left to extract: nothing said


def test_extract_refuses_selection_without_a_dataset(tmp_path):
    done = runner.invoke(app, ["extract", str(tmp_path), "--limit", "2", "--out", str(tmp_path / "s")])
    assert done.exit_code == 1 and "--dataset" in done.output


# ---------------------------------------------------------------------------------------------------------------
# 5. serve before watch
# ---------------------------------------------------------------------------------------------------------------
def test_serve_creates_a_missing_watch_dir_and_serves_it(tmp_path):
    pytest.importorskip("uvicorn", reason="the viewer needs uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watch_dir = tmp_path / "not" / "yet"
    server = subprocess.Popen([sys.executable, "-m", "vadkit.cli", "serve", "--runs", str(tmp_path / "runs"),
                               "--watch-dir", str(watch_dir), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/live", timeout=2) as answer:
                    assert json.loads(answer.read()) == []
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.3)
        assert watch_dir.is_dir()
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert f"created {watch_dir}" in output
    (tmp_path / "file").write_text("x")
    refused = runner.invoke(app, ["serve", "--watch-dir", str(tmp_path / "file")])
    assert refused.exit_code == 1 and "is a file" in refused.output
