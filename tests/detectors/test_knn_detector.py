"""The k-NN one-class detector: calibration, and a `vadkit train` run on a synthetic Ped2 (the contract itself:
tests/detectors/test_contract.py)."""

import numpy as np
import pytest
import torch

from vadkit.engine.config import config_from_dict
from vadkit.detectors import VideoItem, build_detector
from vadkit.detectors.knn import KNNDetector, knn_distances
from vadkit.metrics import roc_auc

F = 32


class Normals:
    """Normal snippet features on a 4-d subspace around a mean (like real features, they are not isotropic)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.mean, self.basis = rng.uniform(0.5, 1.5, F), rng.normal(0, 1, (4, F))
        self.rng = rng

    def sample(self, n):
        return (self.mean + 0.3 * self.rng.normal(0, 1, (n, 4)) @ self.basis
                + 0.05 * self.rng.normal(0, 1, (n, F))).astype(np.float32)

    def video(self, vid, n=20, label=0, anomaly=None):
        feats = self.sample(n)
        if anomaly is not None:
            feats[anomaly] += 0.8 * self.rng.normal(0, 1, F).astype(np.float32)
        return VideoItem(id=vid, num_frames=16 * n + 5, label=label, load_features=lambda f=feats: f)


@pytest.fixture
def normals():
    return Normals()


def test_registered_tail_frames_extend_the_last_snippet(normals):
    detector = build_detector("knn", k=2, false_alarm_rate=0.05)
    assert isinstance(detector, KNNDetector) and detector.inputs == "features"
    item = normals.video("test", anomaly=slice(5, 8))
    scores = detector.fit([normals.video(f"n{i}") for i in range(10)], progress=False).score(item).values
    assert (scores[-5:] == scores[16 * 19]).all()


def test_an_injected_anomaly_scores_higher(normals):
    for metric in ("cosine", "euclidean"):
        detector = KNNDetector(k=1, metric=metric).fit([normals.video(f"n{i}") for i in range(10)], progress=False)
        scores, labels = [], []
        for i in range(6):
            item = normals.video(f"t{i}", anomaly=slice(5, 8))
            scores.append(detector.snippet_scores(item.features()))
            labels.append(np.isin(np.arange(20), [5, 6, 7]))
        assert roc_auc(np.concatenate(scores), np.concatenate(labels)) > 0.97, metric


def test_calibration_gives_roughly_the_requested_false_alarm_rate(normals):
    train = [normals.video(f"n{i}", n=40) for i in range(25)]
    detector = KNNDetector(k=3, false_alarm_rate=0.05, holdout=0.4, seed=1).fit(train, progress=False)
    cal = detector.calibration_
    assert cal["held_out_snippets"] == 10 * 40 and cal["bank_snippets"] == 25 * 40  # refit on all after calibrating
    assert cal["achieved_far"] == pytest.approx(0.05, abs=0.01)
    fresh = np.concatenate([detector.snippet_scores(normals.sample(400)) for _ in range(5)])
    assert 0.005 < (fresh > detector.threshold_).mean() < 0.10  # new normal footage: about the requested rate or less


def test_holdout_with_one_video_abnormal_videos_skipped_and_errors(normals):
    one = KNNDetector(holdout=0.25).fit([normals.video("only", n=40)], progress=False)
    assert one.calibration_["held_out_snippets"] == 10 and one.threshold_ is not None
    mixed = KNNDetector(holdout=0.5).fit([normals.video("a"), normals.video("c"), normals.video("b", label=1)],
                                         progress=False)
    assert mixed.calibration_["skipped_abnormal_videos"] == 1 and mixed.bank_.shape[0] == 40
    with pytest.raises(ValueError, match="holdout must be in"):
        KNNDetector(holdout=0)  # no held-out footage, no calibrated threshold
    with pytest.raises(ValueError, match="normal videos"):
        KNNDetector().fit([normals.video("b", label=1)], progress=False)
    with pytest.raises(ValueError, match="cannot be split"):
        KNNDetector(holdout=0.2).fit([normals.video("tiny", n=3)], progress=False)
    with pytest.raises(ValueError, match="metric"):
        KNNDetector(metric="manhattan")
    with pytest.raises(ValueError, match="k must be"):
        KNNDetector(k=0)
    with pytest.raises(ValueError, match="dimensions"):
        one.snippet_scores(np.zeros((2, F + 1), np.float32))


def test_bank_subsampling_and_chunked_distances(normals):
    detector = KNNDetector(max_bank=50).fit([normals.video(f"n{i}") for i in range(5)], progress=False)
    assert detector.bank_.shape == (50, F)
    q, bank = torch.randn(37, F), torch.randn(60, F)
    for metric in ("cosine", "euclidean"):
        a = knn_distances(q, bank, 3, metric, chunk=5)
        b = knn_distances(q, bank, 3, metric, chunk=1000)
        torch.testing.assert_close(a, b)
    exact = torch.cdist(q, bank).sort(dim=1).values[:, :3].mean(dim=1)
    torch.testing.assert_close(knn_distances(q, bank, 3, "euclidean"), exact, rtol=1e-4, atol=1e-4)


def test_vadkit_train_with_knn_on_a_synthetic_ped2(tmp_path):
    """The k-NN runs through `vadkit train` like every detector (official one-class split: normal training videos)."""
    from vadkit.datasets import get_dataset
    from tests.engine.test_train import build_ped2  # the tiny synthetic Ped2 layout
    from vadkit.engine.train import evaluate_run, record_key, train
    from vadkit.features.store import FeatureStore

    FRAMES = 48
    root = build_ped2(tmp_path / "ped2", FRAMES)
    store = FeatureStore(tmp_path / "features", {"synthetic": True})
    normals = Normals(3)
    for r in get_dataset("ucsd_ped2", root).videos():
        feats = normals.sample(3)
        if r.label == 1:
            feats[1] += 0.8 * normals.rng.normal(0, 1, F).astype(np.float32)  # frames 16-31, as the ground truth says
        store.write(record_key(r), feats, num_frames=r.num_frames, fps=r.fps)
    config = config_from_dict({"detector": "knn", "detector_args": {"k": 1, "false_alarm_rate": 0.05},
                               "data": {"dataset": "ucsd_ped2", "root": str(root), "features": str(store.root)},
                               "seed": 0, "output": str(tmp_path / "runs"), "name": "knn"})
    run = train(config, progress=False)
    metrics = run.read_json("metrics.json")
    assert metrics["micro_auc"] > 0.95 and metrics["num_frames"] == 12 * FRAMES
    assert evaluate_run(run.path, progress=False)["micro_auc"] == pytest.approx(metrics["micro_auc"])


def test_fit_normal_refuses_a_store_whose_names_mean_other_videos(tmp_path):
    from vadkit.engine.oneclass import fit_normal
    from vadkit.features.store import FeatureStore
    from vadkit.io import write_video

    video = write_video(tmp_path / "cam.mp4", [np.zeros((32, 32, 3), np.uint8)] * 4, fps=10)
    FeatureStore(tmp_path / "store", {"x": 1}).write("cam", np.zeros((1, 4), np.float32), 4, 10.0,
                                                     source="/elsewhere/cam.mp4")
    with pytest.raises(ValueError, match="other videos under the same names"):
        fit_normal([video], tmp_path / "run", method="knn", features_dir=tmp_path / "store", progress=False)
