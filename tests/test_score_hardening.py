"""`vadkit score` on bad and odd inputs: one bad video never stops the batch, a failed score leaves no folder that
looks finished, stale temporary files go, oversized frames are resized at decoding, short inputs are warned about."""

import json
import os

import numpy as np
import pytest

from vadkit.detectors import Detector, VideoItem
from vadkit.inference import score_video, score_videos
from vadkit.io import open_video, write_video

ONE = [VideoItem(id="none", num_frames=1)]


class Brightness(Detector):
    name, inputs, threshold_rule = "brightness-hardening", "frames", "fixed 0.5"

    def _fit(self, train, progress):
        self.threshold_ = 0.5

    def _score(self, item):
        return np.array([f.mean() / 255.0 for f in open_video(item.path).truncated(item.num_frames).frames()])


class Exploding(Brightness):
    name = "exploding"

    def _score(self, item):
        raise TypeError("a bug inside the detector")


def frames(n, size=(64, 48), value=30):
    return [np.full((size[1], size[0], 3), value, np.uint8) for _ in range(n)]


def test_a_video_named_with_non_utf8_bytes_is_scored_beside_the_good_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_video(folder / "good.mp4", frames(20), fps=10)
    odd = os.fsencode(folder) + b"/caf\xe9.mp4"
    os.rename(write_video(tmp_path / "tmp.mp4", frames(20), fps=10), odd)
    errors = []
    results = score_videos([folder], Brightness().fit(ONE), tmp_path / "out", progress=False, errors=errors,
                           write_annotated=False)
    assert errors == [] and sorted(r["name"] for r in results) == ["caf\ufffd", "good"]
    assert (tmp_path / "out" / "caf\ufffd" / "report.html").is_file()


def test_any_error_in_one_video_is_reported_and_the_batch_goes_on(tmp_path):
    write_video(tmp_path / "in" / "a.mp4", frames(10), fps=10)
    write_video(tmp_path / "in" / "b.mp4", frames(10), fps=10)
    errors = []
    results = score_videos([tmp_path / "in"], Exploding().fit(ONE), tmp_path / "out", progress=False, errors=errors)
    assert results == [] and [p.name for p, _ in errors] == ["a.mp4", "b.mp4"]
    assert all("a bug inside the detector" in message for _, message in errors)
    assert not (tmp_path / "out" / "a").exists() and not (tmp_path / "out" / "b").exists()  # no empty folders


def test_a_failed_rescore_removes_the_old_result_and_stale_temporary_files(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames(10), fps=10)
    out = tmp_path / "out" / "v"
    score_video(video, Brightness().fit(ONE), out, write_annotated=False)
    (out / ".annotated.mp4.abc123").write_bytes(b"half a file")
    (out / "notes.txt").write_text("the user's own file")
    with pytest.raises(TypeError):
        score_video(video, Exploding().fit(ONE), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing that looks like a result


def test_huge_frames_are_resized_at_decoding_and_short_inputs_warned(tmp_path):
    big = write_video(tmp_path / "big.mp4", frames(3, size=(2048, 2048)), fps=10)
    result = score_video(big, Brightness().fit(ONE), tmp_path / "out" / "big", write_annotated=True)
    assert (result["width"], result["height"]) == (1280, 1280)
    assert any("2048x2048 were resized to 1280x1280" in w for w in result["warnings"])
    assert open_video(tmp_path / "out" / "big" / "annotated.mp4").width == 1280
    still = write_video(tmp_path / "still.mp4", frames(1), fps=10)
    result = score_video(still, Brightness().fit(ONE), tmp_path / "out" / "still", write_annotated=False)
    assert any("one frame only" in w for w in result["warnings"])
    assert json.loads((tmp_path / "out" / "still" / "result.json").read_text())["warnings"] == result["warnings"]


def test_a_video_shorter_than_one_snippet_is_scored_with_a_warning(tmp_path):
    """A feature detector (real I3D features) on a 10-frame video: one padded snippet, and the report says so."""
    from dataclasses import asdict

    from vadkit.detectors.knn import KNNDetector
    from vadkit.features.extract import ExtractionSettings
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")
    rng = np.random.default_rng(0)
    train = [VideoItem(id=f"v{i}", num_frames=64, label=0, extraction=asdict(ExtractionSettings()),
                       load_features=lambda f=rng.normal(size=(4, 1024)).astype(np.float32): f) for i in range(3)]
    detector = KNNDetector(holdout=0.34).fit(train, progress=False)
    short = write_video(tmp_path / "short.mp4", frames(10), fps=10)
    result = score_video(short, detector, tmp_path / "out" / "short", write_annotated=False)
    assert len(result["scores"]) == 10 and len(set(result["scores"])) == 1
    assert any("shorter than one snippet (16 frames)" in w for w in result["warnings"])
