"""Schedule selection by cross-validation inside the training split: folds, snapshots, the run folder."""

import numpy as np
import pytest
import torch

from vadkit.engine.config import ConfigError, config_from_dict
from vadkit.detectors import VideoItem, build_detector
from vadkit.engine.select import select_steps, stratified_folds
from vadkit.engine.train import evaluate_run, train

F = 16


def video(name, label, rng, n_snippets=6):
    feats = rng.normal(0, 1, (n_snippets, F)).astype(np.float32)
    labels = np.zeros(n_snippets * 16, np.uint8)
    if label:
        feats[2:4, :4] += 4.0
        labels[32:64] = 1
    return VideoItem(id=name, num_frames=n_snippets * 16, label=label, class_index=label, frame_labels=labels,
                     load_features=lambda f=feats: f)


@pytest.fixture(scope="module")
def videos():
    rng = np.random.default_rng(1)
    return [video(f"a{i}", 1, rng) for i in range(6)] + [video(f"n{i}", 0, rng) for i in range(8)]


def test_folds_are_stratified_disjoint_and_reproducible(videos):
    groups = stratified_folds(videos, 3, seed=5)
    ids = [v.id for g in groups for v in g]
    assert sorted(ids) == sorted(v.id for v in videos) and len(set(ids)) == len(ids)
    assert [sum(v.label for v in g) for g in groups] == [2, 2, 2]  # 6 abnormal videos, two per fold
    assert sorted(len(g) for g in groups) == [4, 5, 5]
    assert [[v.id for v in g] for g in stratified_folds(videos, 3, seed=5)] == [[v.id for v in g] for g in groups]
    assert [[v.id for v in g] for g in stratified_folds(videos, 3, seed=6)] != [[v.id for v in g] for g in groups]


def test_too_few_videos_of_a_label_for_the_folds_is_refused(videos):
    with pytest.raises(ValueError, match=r"at least 7 training videos of each label; found 8 with label 0, 6 with label 1"):
        stratified_folds(videos, 7, seed=0)


def test_snapshots_equal_shorter_runs_of_the_same_seed(videos):
    args = dict(model="arnet_single", model_args={"feature_dim": F, "dropout": 0.0}, steps=999, lr=1e-3, per_class=2,
                max_seqlen=6, seed=3)
    torch.manual_seed(123)  # the detector seeds its own initial weights: the global state must not matter
    snapshots = build_detector("arnet", **args).fit_snapshots(videos, [4, 9], progress=False)
    assert set(snapshots) == {4, 9}
    torch.manual_seed(456)
    short = build_detector("arnet", **{**args, "steps": 4}).fit(videos, progress=False)
    for name, value in short.model.state_dict().items():
        assert torch.equal(snapshots[4][name], value), name
    assert not all(torch.equal(snapshots[4][k], snapshots[9][k]) for k in snapshots[4])
    assert short.args["steps"] == 4


def test_selection_prefers_a_trained_model_over_an_untrained_one(videos):
    args = dict(model="arnet_single", model_args={"feature_dim": F, "dropout": 0.0}, lr=2e-3, per_class=2, max_seqlen=6)
    result = select_steps("arnet", args, videos, [600, 1], folds=3, seed=0, progress=False)
    assert result["candidates"] == [1, 600]
    assert result["chosen"] == 600 and result["micro_auc"]["600"] > max(0.75, result["micro_auc"]["1"] + 0.1)
    assert len(result["fold_auc"]["600"]) == 3 and len(result["folds"]) == 3
    assert not any(v.startswith("t") for fold in result["folds"] for v in fold)


def test_training_videos_without_frame_labels_are_refused(videos):
    bare = [VideoItem(id=v.id, num_frames=v.num_frames, label=v.label, class_index=v.class_index,
                      load_features=v.load_features) for v in videos]
    args = dict(model="arnet_single", model_args={"feature_dim": F}, per_class=2, max_seqlen=6)
    with pytest.raises(ValueError, match="training video .* has none"):
        select_steps("arnet", args, bare, [1, 2], folds=2, progress=False)


def test_select_section_is_checked():
    assert config_from_dict({"detector": "aed", "select": {"steps": [30, 10, 10]}}).select.steps == [10, 30]
    assert config_from_dict({"detector": "aed"}).select.steps is None
    with pytest.raises(ConfigError, match="positive integers"):
        config_from_dict({"detector": "aed", "select": {"steps": [0, 5]}})
    with pytest.raises(ConfigError, match="folds must be 2 or more"):
        config_from_dict({"detector": "aed", "select": {"steps": [5], "folds": 1}})
    with pytest.raises(ConfigError, match=r"steps: expected list \| None"):
        config_from_dict({"detector": "aed", "select": {"steps": "many"}})


def test_a_run_with_selection_records_it(tmp_path):
    """The engine path: selection.json, the chosen steps in metrics and on the protocol card, kept by evaluate."""
    from tests.engine.test_train import build_ped2  # the tiny synthetic Ped2 layout
    from vadkit.datasets import get_dataset
    from vadkit.engine.train import record_key
    from vadkit.features.store import FeatureStore

    root = build_ped2(tmp_path / "ped2")
    store = FeatureStore(tmp_path / "features", {"synthetic": True})
    rng = np.random.default_rng(0)
    for r in get_dataset("ucsd_ped2", root).videos():
        feats = rng.normal(0, 1, (3, F)).astype(np.float32)
        if r.label == 1:
            feats[1, :4] += 4.0
        store.write(record_key(r), feats, num_frames=r.num_frames, fps=r.fps)
    raw = {"detector": "arnet",
           "detector_args": {"model": "arnet_single", "model_args": {"feature_dim": F, "dropout": 0.0}, "steps": 5,
                             "lr": 2e-3, "per_class": 4, "max_seqlen": 8},
           "select": {"steps": [1, 200], "folds": 2},
           "data": {"dataset": "ucsd_ped2", "root": str(root), "features": str(store.root), "split": "lad2000"},
           "seed": 0, "output": str(tmp_path / "runs")}
    run = train(config_from_dict(raw), progress=False)
    selection = run.read_json("selection.json")
    metrics = run.read_json("metrics.json")
    chosen = selection["chosen"]
    assert chosen in (1, 200) and metrics["selected_steps"] == chosen
    assert metrics["protocol"]["model_selection"].startswith(f"steps {chosen} chosen from [1, 200] by 2-fold")
    assert open(run.path / "curves.csv").read().splitlines()[-1].startswith(f"{chosen},")  # trained the chosen steps
    assert not {v for fold in selection["folds"] for v in fold} & set(run.read_json("split.json")["test"])
    again = evaluate_run(run.path, progress=False)
    assert again["protocol"]["model_selection"] == metrics["protocol"]["model_selection"]


def test_selection_works_for_a_frame_detector_through_the_same_loop(tmp_path):
    """sEnDec trains through the one training loop, so its epochs can be cross-validated like the weak detectors'
    steps: a snapshot is calibrated (statistics, threshold) on its fold's training videos before it scores."""
    from vadkit.io import write_video

    rng = np.random.default_rng(0)
    items = []
    for i in range(6):
        frames = [np.full((32, 32, 3), 40, np.uint8) for _ in range(12)]
        labels = np.zeros(12, np.uint8)
        for t, frame in enumerate(frames):
            frame[8:16, (2 * t + i) % 24:(2 * t + i) % 24 + 8] = 220
        if i % 2:
            for t in range(4, 8):
                frames[t][18:30, 2:14] = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
            labels[4:8] = 1
        path = write_video(tmp_path / f"v{i}.mp4", frames, fps=10)
        items.append(VideoItem(id=f"v{i}", num_frames=12, label=i % 2, frame_labels=labels, path=path))
    args = dict(clip_length=2, height=32, width=32, batch_size=4, epochs=4, bn_clips=4, optimizer="adam", lr=1e-3,
                dropout=0.0, threads=1)
    selection = select_steps("sendec", args, items, [2, 6], folds=2, seed=0, progress=False)
    assert selection["chosen"] in (2, 6) and set(selection["micro_auc"]) == {"2", "6"}
    assert all(np.isfinite(v) for v in selection["micro_auc"].values())
    with pytest.raises(ValueError, match="before the candidate step counts"):
        select_steps("sendec", {**args, "epochs": 1}, items, [2, 500], folds=2, seed=0, progress=False)


def test_a_snapshot_run_is_a_fit_and_releases_its_training_data(videos):
    args = dict(model="arnet_single", model_args={"feature_dim": F, "dropout": 0.0}, steps=999, lr=1e-3, per_class=2,
                max_seqlen=6, seed=3)
    detector = build_detector("arnet", **args)
    with detector.snapshot_run(videos, [2, 5], progress=False) as snapshots:
        assert detector.fitted_ and detector.threshold_ == 0.5
        detector.use_snapshot(snapshots[2])
        early = detector.score(videos[0]).values
    assert detector._training_data is None and detector.snapshots_ == {}  # nothing of the training data is kept
    assert detector.fitted_
    np.testing.assert_array_equal(detector.score(videos[0]).values, early)  # still the snapshot last used
    with pytest.raises(RuntimeError, match="inside `with detector.snapshot_run"):
        detector.use_snapshot(snapshots[5])
