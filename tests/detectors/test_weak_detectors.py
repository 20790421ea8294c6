"""The weak detectors learn a synthetic anomaly (the contract itself: tests/detectors/test_contract.py)."""

import numpy as np
import pytest

from vadkit.detectors import VideoItem, build_detector
from vadkit.detectors.weak import pad_to, random_crop, uniform_resample
from vadkit.metrics import roc_auc

F = 32


def make_video(name, rng, abnormal, n_snippets=12, frames_extra=5):
    feats = rng.normal(0, 1, (n_snippets, F)).astype(np.float32)
    num_frames = n_snippets * 16 + frames_extra
    labels = np.zeros(num_frames, np.uint8)
    if abnormal:
        s = int(rng.integers(2, n_snippets - 4))
        feats[s:s + 3, :8] += 3.0  # the anomaly lives in the first 8 dimensions
        labels[16 * s:16 * (s + 3)] = 1
    return VideoItem(id=name, num_frames=num_frames, label=int(abnormal), class_index=int(abnormal),
                     frame_labels=labels, load_features=lambda f=feats: f)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train = [make_video(f"a{i}", rng, True) for i in range(8)] + [make_video(f"n{i}", rng, False) for i in range(8)]
    test = [make_video(f"ta{i}", rng, True) for i in range(4)] + [make_video(f"tn{i}", rng, False) for i in range(4)]
    return train, test


def pooled_auc(detector, test):
    scores = np.concatenate([detector.score(v).values for v in test])
    labels = np.concatenate([v.frame_labels for v in test])
    return roc_auc(scores, labels)


@pytest.mark.parametrize("model", ["arnet_single", "arnet_mean", "arnet_sequence", "arnet_concat", "arnet_lstm", "arnet_bas"])
def test_arnet_variants_learn(data, model):
    train, test = data
    det = build_detector("arnet", model=model, model_args={"feature_dim": F, "hidden_dim": 32, "dropout": 0.0},
                         steps=150 if model == "arnet_bas" else 60, lr=2e-3, per_class=4, max_seqlen=10, seed=0)
    det.fit(train, progress=False)
    assert pooled_auc(det, test) > 0.8 and det.threshold_ == 0.5


def test_arnet_drop_tail_leaves_tail_frames_unscored(data):
    train, test = data
    det = build_detector("arnet", model="arnet_single", model_args={"feature_dim": F}, steps=2, tail="drop").fit(train, progress=False)
    s = det.score(test[0])
    assert not s.scored[-5:].any() and s.scored[:-5].all() and np.isnan(s.values[-5:]).all()


@pytest.mark.parametrize("model", ["aed", "aed_t"])
def test_aed_learns_frames_and_classes(data, model):
    train, test = data
    det = build_detector("aed", model=model, model_args={"feature_dim": F, "num_classes": 2, "window": 4, "hidden": 16,
                                                           "embed_dim": 64, "head_dim": 32},
                         steps=80, lr=1e-3, per_class=4, seed=0).fit(train, progress=False)
    assert pooled_auc(det, test) > 0.8
    accuracy = np.mean([det.predict_class(v) == v.class_index for v in test])
    assert accuracy >= 0.75


def test_sampling_helpers():
    rng = np.random.default_rng(0)
    x = np.arange(20, dtype=np.float32)[:, None]
    picked = uniform_resample(x, 5, rng)[:, 0]
    assert all(4 * i <= v < 4 * (i + 1) for i, v in enumerate(picked))
    starts = {random_crop(x, 18, rng)[1] for _ in range(200)}
    assert starts == {0, 1, 2}  # the last start can be drawn (the original's off-by-one fixed)
    assert pad_to(x[:3], 5).shape == (5, 1)


def test_one_class_training_data_is_refused(data):
    train, _ = data
    det = build_detector("arnet", model_args={"feature_dim": F}, steps=1)
    with pytest.raises(ValueError, match="needs abnormal and normal"):
        det.fit([v for v in train if v.label == 0], progress=False)


@pytest.mark.parametrize("n_snippets, padding, expected_windows", [
    (3, "zeros", 1), (6, "zeros", 3), (3, "repeat", 1), (6, "repeat", 5)])
def test_aed_test_windows_are_padded_as_configured(n_snippets, padding, expected_windows):
    """``zeros``: a short video is one zero-padded window, as in training; ``repeat``: the seeds' last-snippet copies."""
    det = build_detector("aed", model="aed", model_args={"feature_dim": F, "num_classes": 2, "window": 4, "hidden": 8,
                                                          "embed_dim": 16, "head_dim": 8}, test_padding=padding)
    features = np.random.default_rng(0).normal(size=(n_snippets, F)).astype(np.float32)
    seen = []
    det.model.forward = lambda windows: seen.append(windows.numpy()) or {}  # record what the network is given
    det._windows(features)
    windows = seen[0]  # (W, L, F)
    assert windows.shape == (expected_windows, 4, F)
    assert np.array_equal(windows[0, :min(4, n_snippets)], features[:4])
    tail = windows[-1, n_snippets - expected_windows + 1:]  # snippets after the video's end in the last window
    if padding == "zeros":
        assert not tail.any()
    else:
        assert np.array_equal(tail, np.repeat(features[-1:], len(tail), axis=0))


def test_aed_unknown_test_padding_is_refused():
    with pytest.raises(ValueError, match="test_padding must be one of"):
        build_detector("aed", model_args={"feature_dim": F, "num_classes": 2, "window": 4}, test_padding="mirror")


def test_snippet_geometry_comes_from_the_training_features(data):
    """Features of 8-frame snippets: frames map with 8, not a constant 16; other features are refused early."""
    train, test = data
    geometry = {"snippet_len": 8, "stride": 8}

    def with_geometry(item, extraction):
        frames = 8 * item.features().shape[0] + 3
        return VideoItem(id=item.id, num_frames=frames, label=item.label, class_index=item.class_index,
                         frame_labels=np.zeros(frames, np.uint8), load_features=item.load_features,
                         extraction=extraction)

    det = build_detector("arnet", model="arnet_single", model_args={"feature_dim": F}, steps=2)
    det.fit([with_geometry(v, geometry) for v in train], progress=False)
    assert det.geometry.snippet_len == 8
    scores = det.score(with_geometry(test[0], geometry))
    assert len(scores) == 8 * 12 + 3 and scores.scored.all()
    with pytest.raises(ValueError, match="16-frame snippets with stride 16.*fitted on 8/8"):
        det.score(with_geometry(test[0], {"snippet_len": 16, "stride": 16}))
    aed = build_detector("aed", model="aed", model_args={"feature_dim": F, "num_classes": 2, "window": 4}, steps=1)
    with pytest.raises(ValueError, match="non-overlapping snippets"):
        aed.fit([with_geometry(v, {"snippet_len": 16, "stride": 8}) for v in train], progress=False)
