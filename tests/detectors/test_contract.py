"""One contract test for every registered detector (as timm tests every registered model).

Each detector, with tiny arguments on tiny synthetic data: scoring before fitting raises; ``fit`` returns the
detector; ``score`` gives a :class:`FrameScores` of one value per frame with the fitted threshold; the threshold is
finite, follows the detector's declared rule and is set by ``fit`` from training data alone (a different training
set gives a different threshold unless the rule is a stated fixed value; scoring test videos never moves it);
save/load gives the same class and identical scores; and ``vadkit score`` with the model file writes a report
without ``--threshold``. A newly registered detector without a case here fails the test.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vadkit.detectors import Detector, FrameScores, NotFittedError, VideoItem, build_detector, list_detectors
from vadkit.io import write_video

F = 1024  # I3D feature size: `vadkit score` extracts real I3D features for the feature detectors
FRAMES = 32
SIZE = 64


def moving_square(n: int, seed: int, kind: int = 0) -> list[np.ndarray]:
    """``n`` frames of a bright square moving right over a dark background (``kind`` 1: brighter background, faster
    square)."""
    rng = np.random.default_rng(seed)
    row, col = int(rng.integers(4, SIZE - 20)), int(rng.integers(0, 8))
    frames = []
    for t in range(n):
        frame = np.full((SIZE, SIZE, 3), 20 + 30 * kind, np.uint8)
        x = (col + (2 + kind) * t) % (SIZE - 14)
        frame[row:row + 14, x:x + 14] = (230, 200, 180)
        frames.append(frame)
    return frames


def extraction() -> dict:
    from vadkit.features.extract import ExtractionSettings

    return asdict(ExtractionSettings())


class Data:
    """Tiny training sets (feature items and frame items, two of each kind with different statistics) and a test
    video on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        rng = np.random.default_rng(0)
        self.test_video = write_video(root / "test" / "clip.mp4", moving_square(FRAMES, 9), fps=25)
        self.frame_sets = [[self._frame_item(f"set{k}/v{i}", k, i) for i in range(3)] for k in range(2)]
        self.feature_sets = [[self._feature_item(f"f{k}/v{i}", rng, label=i % 2, scale=1.0 + 2 * k) for i in range(6)]
                             for k in range(2)]

    def _frame_item(self, name: str, k: int, i: int) -> VideoItem:
        path = write_video(self.root / f"{name}.mp4", moving_square(FRAMES, 10 * k + i, kind=k), fps=25)
        return VideoItem(id=name, num_frames=FRAMES, label=0, path=path, frame_labels=np.zeros(FRAMES, np.uint8))

    def _feature_item(self, name: str, rng, label: int, scale: float) -> VideoItem:
        snippets = 4
        feats = (scale * rng.normal(0, 1, (snippets, F))).astype(np.float32)
        labels = np.zeros(16 * snippets, np.uint8)
        if label:
            feats[1:3, :16] += 4.0
            labels[16:48] = 1
        return VideoItem(id=name, num_frames=16 * snippets, label=label, class_index=label, frame_labels=labels,
                         load_features=lambda f=feats: f, extraction=extraction())

    def train(self, kind: str, which: int) -> list[VideoItem]:
        return (self.feature_sets if kind == "features" else self.frame_sets)[which]

    def test_item(self) -> VideoItem:
        return VideoItem(id="clip", num_frames=FRAMES, path=self.test_video)


WEAK = dict(steps=3, per_class=2, threads=1, seed=0)
CASES = {
    "knn": lambda cache: dict(k=1, holdout=0.34),
    "arnet": lambda cache: dict(model="arnet_single", model_args={"feature_dim": F, "hidden_dim": 16}, max_seqlen=8,
                                **WEAK),
    "aed": lambda cache: dict(model="aed_t", model_args={"feature_dim": F, "num_classes": 2, "window": 2, "hidden": 4,
                                                         "embed_dim": 16, "head_dim": 8}, **WEAK),
    "sendec": lambda cache: dict(clip_length=2, height=32, width=32, batch_size=4, epochs=1, bn_clips=4, dropout=0.0,
                                 optimizer="adam", lr=1e-3, score_stride=1, threads=1, seed=0),
    "objects": lambda cache: dict(boxes="motion", cache_dir=str(cache), components=2, threads=1, seed=0),
    "state": lambda cache: dict(model="state_cpu", model_args=dict(hidden=[4, 8, 8], heads=2, layers=1, norm_groups=2),
                                boxes="motion", cache_dir=str(cache), epochs=1, batch_size=8, stats_cubes=32,
                                score_batch=16, threads=1, seed=0),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return Data(tmp_path_factory.mktemp("contract"))


def test_every_registered_detector_has_a_case():
    assert sorted(CASES) == list_detectors()


@pytest.mark.parametrize("name", sorted(CASES))
def test_detector_contract(name, data, tmp_path):
    detector = build_detector(name, **CASES[name](tmp_path / "cache"))
    assert detector.inputs in ("features", "frames") and detector.threshold_rule
    train, test = data.train(detector.inputs, 0), data.test_item()
    if detector.inputs == "features":
        test = train[1]
    with pytest.raises(NotFittedError):
        detector.score(test)
    assert detector.threshold_ is None
    assert detector.fit(train, progress=False) is detector
    threshold = detector.threshold_
    assert isinstance(threshold, float) and np.isfinite(threshold)

    scores = detector.score(test)
    assert isinstance(scores, FrameScores) and len(scores) == test.num_frames and scores.scored.all()
    assert np.isfinite(scores.values).all() and scores.threshold == threshold
    assert detector.threshold_ == threshold  # scoring never moves the threshold

    other = build_detector(name, **CASES[name](tmp_path / "cache2")).fit(data.train(detector.inputs, 1), progress=False)
    if detector.threshold_rule.startswith("fixed"):
        assert other.threshold_ == threshold
    else:
        assert other.threshold_ != pytest.approx(threshold)  # measured on the training data

    detector.save(tmp_path / "model.pt")
    again = Detector.load(tmp_path / "model.pt")
    assert type(again) is type(detector) and again.threshold_ == threshold
    np.testing.assert_allclose(again.score(test).values, scores.values, rtol=1e-6, atol=1e-9)
    assert again.extraction_ == detector.extraction_

    together, objects = again.score_explained(test)  # what `vadkit score` calls: the same as the two calls
    np.testing.assert_allclose(together.values, scores.values, rtol=1e-6, atol=1e-9)
    alone = again.explain(test)
    assert (objects is None) == (alone is None)
    if objects is not None:
        np.testing.assert_array_equal(objects.boxes, alone.boxes)
        for attribute, values in alone.attributes.items():
            np.testing.assert_array_equal(objects.attributes[attribute], values)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vadkit_score_uses_the_model_files_threshold(name, data, tmp_path):
    from vadkit.cli import app

    detector = build_detector(name, **CASES[name](tmp_path / "cache"))
    if detector.inputs == "features":
        from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

        try:
            find_kinetics400_weights()
        except WeightsNotFoundError as err:
            pytest.skip(f"I3D weights not installed: {err}")
    detector.fit(data.train(detector.inputs, 0), progress=False).save(tmp_path / "model.pt")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["score", str(data.test_video), "--model", str(tmp_path / "model.pt"),
                                      "--out", str(out), "--no-video", "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "clip" / "result.json").read_text())
    assert written["threshold"] == detector.threshold_ and len(written["scores"]) == FRAMES
    assert (out / "clip" / "report.html").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Runtimes: every network a detector scores through, exported, gives the torch scores
# ---------------------------------------------------------------------------------------------------------------
def _runtimes() -> list[str]:
    from vadkit.features.backends import installed_backends

    return installed_backends()[1:]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_detector_scores_equal_torch(name, backend, data, tmp_path, monkeypatch):
    """Scores through an exported network equal the torch scores within the parity bound (1e-5 of their scale);
    a detector without a network, or one that cannot run on the runtime, says so and stays on torch."""
    from vadkit.features.backends import SCORE_PARITY

    if backend not in _runtimes():
        pytest.skip(f"{backend} is not installed (pip install 'vadkit[onnx]')")
    monkeypatch.setenv("VADKIT_CACHE", str(tmp_path / "vadkit-cache"))
    args = CASES[name](tmp_path / "cache")
    if name == "state":
        args["eps"] = 0.0  # perturbed scoring needs input gradients: a runtime serves eps=0 (checked below)
    detector = build_detector(name, **args)
    train, test = data.train(detector.inputs, 0), data.test_item()
    if detector.inputs == "features":
        test = train[1]
    detector.fit(train, progress=False)
    reference = detector.score(test).values
    networks = detector.networks()
    detector.use_backend(backend)
    assert detector.backend_ == (backend if networks else "torch") or not networks
    found = detector.score(test).values
    scale = max(float(np.abs(reference).max()), 1e-6)
    assert np.abs(found - reference).max() <= SCORE_PARITY * scale, (found, reference)
    detector.save(tmp_path / "model.pt")  # the torch weights are still what is saved
    assert type(Detector.load(tmp_path / "model.pt")) is type(detector)


def test_state_with_perturbation_stays_on_torch_and_says_why(data, tmp_path):
    detector = build_detector("state", **CASES["state"](tmp_path / "cache"))
    assert detector.args["eps"] > 0
    note = detector.backend_note("onnxruntime")
    assert note and "gradient" in note


# ---------------------------------------------------------------------------------------------------------------
# Devices: every detector trains and scores on CUDA through the one loop; its model file loads on a CPU
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_detector_trains_and_scores_on_cuda_and_loads_on_the_cpu(name, data, tmp_path):
    import torch

    detector = build_detector(name, **CASES[name](tmp_path / "cache")).to_device("cuda")
    train, test = data.train(detector.inputs, 0), data.test_item()
    if detector.inputs == "features":
        test = train[1]
    detector.fit(train, progress=False)
    for module in detector.device_modules():
        assert all(p.is_cuda for p in module.parameters())
    assert detector.device_ == ("cuda:0" if detector.device_modules() else "cpu")
    on_gpu = detector.score(test).values
    assert np.isfinite(on_gpu).all()
    detector.save(tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", map_location=None, weights_only=True)
    assert not [t for t in _tensors(saved) if t.device.type != "cpu"]
    on_cpu = Detector.load(tmp_path / "model.pt").score(test).values
    scale = max(float(np.abs(on_gpu).max()), 1e-6)
    assert np.abs(on_cpu - on_gpu).max() <= 1e-3 * scale, (on_cpu, on_gpu)


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


# ---------------------------------------------------------------------------------------------------------------
# Scoring is a pure function of the item's data: one id scored twice with different data
# ---------------------------------------------------------------------------------------------------------------
def _fresh_copy(detector: Detector, path: Path, cache: Path) -> Detector:
    """The detector as a new process would load it, with empty caches of its own."""
    detector.save(path)
    fresh = Detector.load(path)
    if "cache_dir" in fresh.args:
        fresh.args["cache_dir"] = str(cache)
    return fresh


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_id_scored_twice_with_different_data_gets_each_datas_scores(name, data, tmp_path):
    """Nothing keyed by the item's id (in memory, or on disk by its path) outlives a call: the second video under
    the same id (frame detectors: written over the same file) gets its own scores, equal to a fresh detector's."""
    detector = build_detector(name, **CASES[name](tmp_path / "cache"))
    train = data.train(detector.inputs, 0)
    detector.fit(train, progress=False)
    if detector.inputs == "features":
        other = data.train("features", 1)[1]  # features of another scale: other scores
        first = VideoItem(id="same", num_frames=train[1].num_frames, load_features=train[1].load_features,
                          extraction=train[1].extraction)
        second = VideoItem(id="same", num_frames=other.num_frames, load_features=other.load_features,
                           extraction=other.extraction)
    else:
        path = tmp_path / "upload" / "clip.mp4"
        write_video(path, moving_square(FRAMES, 9), fps=25)
        first = VideoItem(id="same", num_frames=FRAMES, path=path)
    scores_first = detector.score(first).values
    if detector.inputs == "frames":  # the same file name, another video (a brighter scene, a faster square)
        write_video(path, moving_square(FRAMES, 3, kind=1), fps=25)
        second = VideoItem(id="same", num_frames=FRAMES, path=path)
    scores_second = detector.score(second).values
    assert not np.allclose(scores_first, scores_second), "the second video got the first one's scores"
    fresh = _fresh_copy(detector, tmp_path / "model.pt", tmp_path / "fresh-cache")
    np.testing.assert_allclose(scores_second, fresh.score(second).values, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# Every registered detector watches: `vadkit watch` on a file gives `vadkit score`'s frame scores and its events
# ---------------------------------------------------------------------------------------------------------------
#: detectors whose live scores are the file's (watch.py's docstring): k-NN and AR-Net's arnet_single score each
#: snippet on its own; frame detectors score a file shorter than a segment as one video. AED sees the last snippets
#: only (an approximation): its scores are checked for coverage and its events against its own scores.
WATCH_EQUALS_SCORE = {"knn", "arnet", "sendec", "state", "objects"}


def _watch_rows(folder: Path) -> list[dict]:
    rows = []
    for chunk in sorted((folder / "scores").glob("*.jsonl")):
        rows += [json.loads(line) for line in chunk.read_text().splitlines()]
    return [r for r in rows if "frame" in r]


@pytest.mark.parametrize("name", sorted(CASES))
def test_vadkit_watch_runs_every_detector_and_gives_vadkit_scores_scores(name, data, tmp_path):
    import signal

    from vadkit.cli import app
    from vadkit.inference import resolve_model
    from vadkit.inference.pipeline import frame_scores
    from vadkit.io import open_video
    from vadkit.report.events import find_events
    from vadkit.scoring import gaussian_smooth

    detector = build_detector(name, **CASES[name](tmp_path / "cache"))
    if detector.inputs == "features":
        from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

        try:
            find_kinetics400_weights()
        except WeightsNotFoundError as err:
            pytest.skip(f"I3D weights not installed: {err}")
    detector.fit(data.train(detector.inputs, 0), progress=False).save(tmp_path / "model.pt")
    with open_video(data.test_video) as video:  # the frame scores `vadkit score` writes (unrounded; its own test
        exact = frame_scores(resolve_model(tmp_path / "model.pt", backend="torch"), video, "clip")[0].values  # above)
    threshold = float(np.median(gaussian_smooth(exact, 3.0)))  # half the frames or more above: at least one event

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # watch installs its own
    try:
        watched = CliRunner().invoke(app, ["watch", str(data.test_video), "--model", str(tmp_path / "model.pt"),
                                           "--out", str(tmp_path / "watch"), "--threshold", str(threshold),
                                           "--min-event", "1", "--backend", "torch"])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert watched.exit_code == 0, watched.output
    rows = _watch_rows(tmp_path / "watch" / "clip")
    assert [r["frame"] for r in rows] == list(range(FRAMES))
    live = np.array([r["score"] for r in rows])
    smoothed = np.array([r["smoothed"] for r in rows])
    if name in WATCH_EQUALS_SCORE:
        assert np.abs(live - exact).max() <= 1e-6, (live, exact)
        assert np.abs(smoothed - gaussian_smooth(exact, 3.0)).max() <= 1e-6
    else:
        assert np.isfinite(live).all()
    messages = [json.loads(line) for line in watched.stdout.splitlines() if line.startswith("{")]
    closed = [(m["start_frame"], m["end_frame"]) for m in messages if m["type"] == "event"]
    expected = [(e.start_frame, e.end_frame) for e in find_events(smoothed, threshold, 25, min_frames=1, merge_gap=5)]
    assert closed == expected and closed, (closed, expected)
    assert len([m for m in messages if m["type"] == "event_open"]) == len(closed)
    assert not (tmp_path / "watch" / "clip" / ".segments").exists()  # segment frames are deleted after scoring
