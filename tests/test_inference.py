"""The score pipeline: thresholds, model lookup, inputs, the scored-video folder, and `fit-normal` → `score`
end to end with the real I3D."""

import csv
import json
import re

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vadkit.detectors import Detector, VideoItem
from vadkit.detectors.knn import KNNDetector
from vadkit.inference import find_videos, resolve_model, score_video, score_videos, unique_names
from vadkit.io import open_video, write_video

NOTHING = [VideoItem(id="train/none", num_frames=1)]  # the brightness detector learns nothing from its training item


class Brightness(Detector):
    """A frame detector for the tests: a frame's score is its mean brightness in [0, 1]; fixed threshold 0.5."""

    name = "brightness-test"
    inputs = "frames"
    threshold_rule = "fixed 0.5"

    def _fit(self, train, progress):
        self.threshold_ = 0.5

    def _score(self, item):
        return np.array([f.mean() / 255.0 for f in open_video(item.path).truncated(item.num_frames).frames()])


def clip(n=60, bright=(20, 40), size=(64, 48)):
    """Dark frames with a bright stretch ``bright`` (frames [a, b))."""
    w, h = size
    frames = [np.full((h, w, 3), 30, np.uint8) for _ in range(n)]
    for i in range(*bright):
        frames[i][:] = 230
    return frames


# ---------------------------------------------------------------------------------------------------------------
def test_resolve_model_from_run_folder_file_and_bundled_name(tmp_path, monkeypatch):
    import vadkit.inference.bundle as bundle

    rng = np.random.default_rng(0)
    detector = KNNDetector()
    detector.fit([_features_item(rng.normal(size=(8, 4)).astype(np.float32), f"v{i}") for i in range(2)],
                 progress=False)
    detector.protocol_, detector.crops_ = {"dataset": "ucsd_ped2", "split": "official", "method": "knn: k=1"}, "first"
    run = tmp_path / "run"
    run.mkdir()
    detector.save(run / "model.pt")
    (run / "config.yaml").write_text("detector: knn\n")
    loaded = resolve_model(run)
    assert loaded.run_dir == run and loaded.protocol["dataset"] == "ucsd_ped2" and loaded.detector.crops_ == "first"
    assert loaded.info()["method"] == "knn: k=1" and loaded.trained_on == "ucsd_ped2 official"
    assert loaded.threshold == detector.threshold_
    assert resolve_model(run / "model.pt").run_dir == run
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    detector.trained_on_ = "four numbers"
    detector.save(bundled / "tiny.pt")  # one file: no sidecar
    monkeypatch.setattr(bundle, "BUNDLED_DIR", bundled)
    tiny = resolve_model("tiny")
    assert tiny.source == "tiny" and tiny.trained_on == "four numbers" and tiny.protocol["dataset"] == "ucsd_ped2"
    with pytest.raises(FileNotFoundError, match=r"'nope'.*bundled: tiny"):
        resolve_model("nope")
    with pytest.raises(FileNotFoundError, match="without model.pt"):
        resolve_model(tmp_path)


def _features_item(features, name="v"):
    return VideoItem(id=name, num_frames=16 * len(features), label=0, load_features=lambda: features)


def test_inputs_expand_and_names_stay_unique(tmp_path):
    write_video(tmp_path / "a" / "cam.mp4", clip(4, (0, 0)), fps=10)
    write_video(tmp_path / "b" / "cam.mp4", clip(4, (0, 0)), fps=10)
    frames = tmp_path / "b" / "cam"
    frames.mkdir()
    import cv2

    cv2.imwrite(str(frames / "0.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "b" / "notes.txt").write_text("not a video")
    videos = find_videos([tmp_path / "a" / "cam.mp4", tmp_path / "b"])
    assert videos == [tmp_path / "a" / "cam.mp4", frames, tmp_path / "b" / "cam.mp4"]
    assert unique_names(videos) == ["cam", "cam-2", "cam-3"]
    with pytest.raises(FileNotFoundError, match="no video or folder"):
        find_videos([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no video"):
        find_videos([tmp_path / "empty"])


def test_score_video_writes_the_scored_folder(tmp_path):
    video = write_video(tmp_path / "in" / "clip.mp4", clip(60, (20, 40)), fps=20)
    result = score_video(video, Brightness().fit(NOTHING), tmp_path / "out" / "clip", smoothing_sigma=1.0,
                         min_event_frames=5)
    folder = tmp_path / "out" / "clip"
    on_disk = json.loads((folder / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert on_disk["format"] == 1 and on_disk["num_frames"] == 60 and on_disk["fps"] == 20.0
    assert (on_disk["width"], on_disk["height"], on_disk["duration_s"]) == (64, 48, 3.0)
    assert len(on_disk["scores"]) == len(on_disk["smoothed"]) == 60 and on_disk["threshold"] == 0.5
    (event,) = on_disk["events"]
    assert abs(event["start_frame"] - 20) <= 1 and abs(event["end_frame"] - 39) <= 1
    assert event["start_s"] == pytest.approx(event["start_frame"] / 20) and event["thumbnail"] == "thumbs/event-0.jpg"
    assert on_disk["model"]["name"] == "brightness-test" and on_disk["frames_per_s"] > 0
    rows = list(csv.DictReader((folder / "scores.csv").open()))
    assert len(rows) == 60 and list(rows[0]) == ["frame", "time_s", "score", "smoothed", "abnormal"]
    assert [int(r["abnormal"]) for r in rows] == [int(s >= 0.5) for s in on_disk["smoothed"]]
    assert float(rows[30]["time_s"]) == pytest.approx(1.5) and float(rows[30]["score"]) > 0.8
    assert open_video(folder / "annotated.mp4").num_frames == 60
    assert (folder / "thumbs" / "event-0.jpg").stat().st_size > 0 and (folder / "plot.png").stat().st_size > 0
    page = (folder / "report.html").read_text()
    assert all(r.startswith("data:") for r in re.findall(r'src="([^"]*)"', page)) and "1 anomaly event" in page
    assert all("/" not in r for r in re.findall(r'href="([^"]*)"', page))  # links: only the files beside it
    row = (folder / "events.csv").read_text().splitlines()[1].split(",")
    assert row[1:3] == [str(event["start_frame"]), str(event["end_frame"])] and float(row[3]) == event["start_s"]
    assert not [p for p in folder.rglob(".*")]  # no temporary files left


def test_score_videos_without_video_and_rescoring(tmp_path):
    write_video(tmp_path / "in" / "a.mp4", clip(30, (0, 0)), fps=10)
    write_video(tmp_path / "in" / "b.mp4", clip(30, (5, 25)), fps=10)
    detector = Brightness().fit(NOTHING)
    results = score_videos([tmp_path / "in"], _loaded(detector), tmp_path / "out", progress=False,
                           write_annotated=False)
    assert [r["name"] for r in results] == ["a", "b"] and [len(r["events"]) for r in results] == [0, 1]
    assert not (tmp_path / "out" / "b" / "annotated.mp4").exists() and "video" not in results[1]["files"]
    assert (tmp_path / "out" / "b" / "thumbs" / "event-0.jpg").is_file()
    again = score_video(tmp_path / "in" / "b.mp4", detector, tmp_path / "out" / "b", threshold=2.0,
                        write_annotated=False)
    assert again["events"] == [] and not (tmp_path / "out" / "b" / "thumbs").exists()  # stale thumbnails removed


def _loaded(detector):
    from vadkit.inference import LoadedModel

    return LoadedModel(detector=detector, source="test")


# ---------------------------------------------------------------------------------------------------------------
def moving_clip(n, seed, noise=None):
    """A gray scene with a square walking across; ``noise``: frames [a, b) covered by a block of random pixels."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        f = np.full((96, 128, 3), 90, np.uint8)
        x = (3 * i + 7 * seed) % 100
        f[40:56, x:x + 16] = 200
        if noise and noise[0] <= i < noise[1]:
            f[10:86, 10:118] = rng.integers(0, 255, (76, 108, 3), dtype=np.uint8)
        frames.append(f)
    return frames


def test_fit_normal_then_score_end_to_end_with_i3d(tmp_path):
    """`vadkit fit-normal` on two synthetic normal clips, then `vadkit score` on a clip with an anomaly (real I3D)."""
    from vadkit.cli_score import fit_normal_command, score_command
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")
    for s in range(2):
        write_video(tmp_path / "normal" / f"n{s}.mp4", moving_clip(32, s), fps=25)
    test_video = write_video(tmp_path / "test.mp4", moving_clip(48, 5, noise=(16, 32)), fps=25)
    app = typer.Typer()
    app.command("fit-normal")(fit_normal_command)
    app.command("score")(score_command)
    runner = CliRunner()
    fitted = runner.invoke(app, ["fit-normal", str(tmp_path / "normal"), "--out", str(tmp_path / "run"),
                                 "--method", "knn", "--holdout", "0.5", "--far", "0.05", "--json"])
    assert fitted.exit_code == 0, fitted.output
    calibration = json.loads(fitted.output.strip().splitlines()[-1])
    assert calibration["bank_snippets"] == 4 and calibration["held_out_snippets"] == 2
    for name in ("config.yaml", "model.pt", "protocol.json", "calibration.png", "split.json"):
        assert (tmp_path / "run" / name).is_file(), name
    scored = runner.invoke(app, ["score", str(test_video), "--model", str(tmp_path / "run"),
                                 "--out", str(tmp_path / "out"), "--min-event", "4", "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads((tmp_path / "out" / "test" / "result.json").read_text())
    scores = np.array(result["scores"])
    assert scores.shape == (48,) and scores[16:32].min() > max(scores[:16].max(), scores[32:].max())
    assert result["threshold"] == pytest.approx(calibration["threshold"])
    assert result["events"] and all(16 <= e["peak_frame"] < 32 for e in result["events"])
    assert result["model"]["source"] == str((tmp_path / "run").resolve()) and "2 normal videos" in result["model"]["trained_on"]
    assert result["protocol"]["dataset"] == "user footage"
    assert open_video(tmp_path / "out" / "test" / "annotated.mp4").num_frames == 48
    bad = runner.invoke(app, ["score", str(test_video), "--model", "no-such-model", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1 and "bundled" in bad.output

    # `vadkit evaluate` accepts the fit-normal run: calibration alone, given videos, and given videos with labels
    from vadkit.cli import app as vadkit

    def evaluate(*extra):
        done = runner.invoke(vadkit, ["evaluate", str(tmp_path / "run"), "--json", *extra])
        assert done.exit_code == 0, done.output
        return json.loads(done.output.strip().splitlines()[-1])

    alone = evaluate()
    assert alone["far_held_out"] == calibration["achieved_far"] and alone["threshold"] == calibration["threshold"]
    unlabelled = evaluate("--videos", str(test_video))
    assert unlabelled["num_frames"] == 48 and 0 < unlabelled["frames_at_or_above_threshold"] <= 1
    assert "micro_auc" not in unlabelled and unlabelled["per_video"]["test"]["events"] >= 1
    (tmp_path / "labels.csv").write_text("video,start,end\ntest,16,32\n")
    labelled = evaluate("--videos", str(test_video), "--labels", str(tmp_path / "labels.csv"))
    assert labelled["micro_auc"] > 0.9 and labelled["threshold"] == calibration["threshold"]
    assert labelled["protocol"]["dataset"] == "user footage"
    (tmp_path / "wrong.csv").write_text("video,start,end\nother,1,2\n")
    refused = runner.invoke(vadkit, ["evaluate", str(tmp_path / "run"), "--videos", str(test_video),
                                     "--labels", str(tmp_path / "wrong.csv")])
    assert refused.exit_code == 1 and "labels videos that were not given" in refused.output


def test_a_broken_video_is_reported_and_the_others_are_scored(tmp_path):
    write_video(tmp_path / "in" / "good.mp4", clip(20, (5, 15)), fps=10)
    (tmp_path / "in" / "broken.mp4").write_bytes(b"not an mp4 at all")
    errors = []
    results = score_videos([tmp_path / "in"], _loaded(Brightness().fit(NOTHING)), tmp_path / "out", progress=False,
                           errors=errors, write_annotated=False)
    assert [r["name"] for r in results] == ["good"]
    assert len(errors) == 1 and errors[0][0].name == "broken.mp4" and "broken.mp4" in errors[0][1]
    assert not (tmp_path / "out" / "broken" / "result.json").exists()  # an unfinished folder never looks finished
    with pytest.raises(Exception, match="broken.mp4"):
        score_videos([tmp_path / "in"], _loaded(Brightness().fit(NOTHING)), tmp_path / "out2", progress=False)


def test_bundle_model_copies_the_one_model_file(tmp_path, monkeypatch):
    import vadkit.inference.bundle as bundle
    from vadkit.inference import bundle_model

    detector = KNNDetector()
    items = [_features_item(np.eye(4, 3, k=i).astype(np.float32), f"v{i}") for i in range(3)]
    for item in items:
        item.extraction = {"crops": 1, "weights_sha256": "abc", "snippet_len": 16, "stride": 16}
    detector.fit(items, progress=False)
    detector.protocol_, detector.trained_on_ = {"dataset": "ucsd_ped2", "split": "official"}, "three videos"
    run = tmp_path / "run"
    run.mkdir()
    detector.save(run / "model.pt")
    (run / "config.yaml").write_text("detector: knn\n")
    bundle_model(run, tmp_path / "bundle" / "mine")
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == ["mine.pt"]
    monkeypatch.setattr(bundle, "BUNDLED_DIR", tmp_path / "bundle")
    loaded = resolve_model("mine")
    assert loaded.detector.extraction_["weights_sha256"] == "abc" and loaded.trained_on == "three videos"
    assert loaded.protocol["dataset"] == "ucsd_ped2" and bundle.list_bundled_models() == ["mine"]
    assert loaded.threshold == detector.threshold_


def test_truncated_video_is_scored_up_to_the_break_with_a_warning(tmp_path):
    """An AVI cut off part-way (as a crashed recorder leaves it) is scored up to where it breaks."""
    import cv2

    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(40):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    result = score_video(path, Brightness().fit(NOTHING), tmp_path / "out", threshold=0.9, write_annotated=True)
    assert 0 < result["num_frames"] < 40 and len(result["scores"]) == result["num_frames"]
    assert result["warnings"] and "40" in result["warnings"][0]
    assert (tmp_path / "out" / "result.json").is_file()


def test_score_prints_each_explained_event_with_its_box_and_reason():
    from vadkit.cli_score import explained_lines

    events = [{"start_s": 2.6, "end_s": 18.0, "reason": "velocity 3.5 times ...", "box": [334.4, 126.0, 355.2, 139.0],
               "object_frame": 130},
              {"start_s": 20.0, "end_s": 21.0}]  # an event no object explains prints no line
    assert explained_lines(events) == ["  2.6-18.0s: velocity 3.5 times ... (box 334,126-355,139 at frame 130)"]
