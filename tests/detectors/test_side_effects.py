"""No global side effects: building, fitting or loading a detector leaves torch's generator and thread count as the
caller had them; the weak family saves its schedule as sEnDec and STATE do; one threshold rule for the calibrated
detectors."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from vadkit.detectors import Detector, VideoItem, build_detector
from vadkit.detectors.base import quantile_threshold
from vadkit.features.extract import ExtractionSettings

F = 32
BUILDERS = {
    "arnet": dict(model="arnet_single", model_args={"feature_dim": F, "hidden_dim": 8}, max_seqlen=8, steps=3,
                  per_class=2, threads=1, seed=5),
    "aed": dict(model="aed_t", model_args={"feature_dim": F, "num_classes": 2, "window": 2, "hidden": 4,
                                           "embed_dim": 8, "head_dim": 4}, steps=3, per_class=2, threads=1, seed=5),
    "sendec": dict(clip_length=2, height=32, width=32, seed=5, threads=1),
    "state": dict(model="state_cpu", model_args=dict(hidden=[4, 8, 8], heads=2, layers=1, norm_groups=2), seed=5,
                  boxes="motion"),
}


def _items(n: int = 6) -> list[VideoItem]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        feats = rng.normal(0, 1, (4, F)).astype(np.float32)
        labels = np.zeros(64, np.uint8)
        if i % 2:
            feats[1:3, :4] += 4.0
            labels[16:48] = 1
        items.append(VideoItem(id=f"v{i}", num_frames=64, label=i % 2, class_index=i % 2, frame_labels=labels,
                               load_features=lambda f=feats: f, extraction=asdict(ExtractionSettings())))
    return items


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_building_a_detector_leaves_the_callers_generator_alone(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = build_detector(name, **BUILDERS[name])
    assert torch.equal(torch.rand(3), expected)  # the constructor did not reseed the process
    second = build_detector(name, **BUILDERS[name])
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)  # the initial weights still come from the detector's own seed


@pytest.mark.parametrize("name", ["arnet", "aed"])
def test_fitting_and_loading_leave_generator_and_threads_alone_and_keep_the_schedule(name, tmp_path):
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    detector = build_detector(name, **BUILDERS[name]).fit(_items(), progress=False)
    assert torch.equal(torch.rand(2), expected) and torch.get_num_threads() == threads
    assert detector.schedule_["steps"] == 3
    detector.save(tmp_path / "model.pt")
    again = Detector.load(tmp_path / "model.pt")
    assert again.schedule_ == detector.schedule_  # saved with the weights, as sEnDec and STATE save theirs
    refit = build_detector(name, **BUILDERS[name]).fit(_items(), progress=False)
    np.testing.assert_array_equal(refit.score(_items()[1]).values, detector.score(_items()[1]).values)


def test_an_extractor_with_threads_leaves_the_process_count_alone():
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")
    from vadkit.features.extract import SnippetExtractor

    before = torch.get_num_threads()
    extractor = SnippetExtractor(ExtractionSettings(), threads=1, backend="torch")
    extractor.forward([np.zeros((1, 16, 224, 224, 3), np.uint8)])
    assert torch.get_num_threads() == before


def test_the_one_threshold_rule():
    assert quantile_threshold(np.arange(101.0), 0.99, "scores") == pytest.approx(99.0)
    assert quantile_threshold(np.array([np.nan, 1.0, 2.0]), 1.0, "scores") == 2.0  # unscored values are no data
    with pytest.raises(RuntimeError, match="no finite held-out scores"):
        quantile_threshold(np.array([np.nan]), 0.5, "held-out scores")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantile_threshold(np.ones(3), 1.5, "scores")
