"""Config → run folder, end to end, on a tiny synthetic Ped2-layout dataset with a synthetic feature store."""

import json

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from vadkit.cli import app
from vadkit.datasets import get_dataset
from vadkit.engine.config import ConfigError, config_from_dict, load_config
from vadkit.engine.repeat import repeat_over_seeds
from vadkit.engine.train import evaluate_run, record_key, train
from vadkit.features.store import FeatureStore

F, FRAMES = 16, 48  # 3 snippets per video; the anomaly is snippet 1 (frames 16-31) of every test video


def build_ped2(root, frames=None):
    """A tiny Ped2 layout: 16 training and 12 test clips of ``frames`` black frames; frames 16-31 anomalous."""
    frame = np.zeros((4, 4, 3), np.uint8)
    for folder, count in (("training", 16), ("testing", 12)):
        for k in range(1, count + 1):
            d = root / folder / "frames" / f"{k:02d}"
            d.mkdir(parents=True)
            for i in range(frames or FRAMES):
                cv2.imwrite(str(d / f"{i:03d}.jpg"), frame)
    (root / "UCSDped2.m").write_text("".join("TestVideoFile{end+1}.gt_frame = [17:32];\n" for _ in range(12)))
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = build_ped2(tmp_path_factory.mktemp("ped2"))
    dataset = get_dataset("ucsd_ped2", root)
    store = FeatureStore(root.parent / "features", {"synthetic": True})
    rng = np.random.default_rng(0)
    for r in dataset.videos():
        feats = rng.normal(0, 1, (3, F)).astype(np.float32)
        if r.label == 1:
            feats[1, :4] += 4.0
        store.write(record_key(r), feats, num_frames=r.num_frames, fps=r.fps)
    config = {
        "detector": "arnet",
        "detector_args": {"model": "arnet_single", "model_args": {"feature_dim": F, "dropout": 0.0},
                          "steps": 80, "lr": 2e-3, "per_class": 4, "max_seqlen": 8, "log_every": 10},
        "data": {"dataset": "ucsd_ped2", "root": str(root), "features": str(store.root), "split": "lad2000", "split_seed": 3},
        "eval": {"smoothing": None},
        "seed": 0, "output": str(root.parent / "runs"), "name": "arnet-synthetic",
    }
    return root, config


def test_train_writes_a_complete_run_folder(setup):
    _, raw = setup
    run = train(config_from_dict(raw), progress=False)
    for name in ("config.yaml", "model.pt", "metrics.json", "protocol.json", "split.json", "curves.csv", "training.png", "roc.png"):
        assert (run.path / name).is_file(), name
    metrics = run.read_json("metrics.json")
    assert metrics["micro_auc"] > 0.9 and metrics["num_videos"] == 14 and metrics["num_frames"] == 14 * FRAMES
    assert metrics["protocol"]["split"] == "lad2000 (seed 3)" and metrics["protocol"]["tail_policy"] == "extend"
    assert metrics["protocol"]["device"] == "cpu" and metrics["protocol"]["precision"] == "fp32"
    split = run.read_json("split.json")
    assert len(split["train"]) == 14 and len(split["test"]) == 14 and not set(split["train"]) & set(split["test"])
    resolved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert resolved["data"]["crops"] == "mean" and resolved["device"] == "auto"  # defaults filled in
    assert "tail" not in resolved["eval"]  # the detector's own tail decides (detector_args.tail)
    again = evaluate_run(run.path, progress=False)
    assert again["micro_auc"] == pytest.approx(metrics["micro_auc"], abs=1e-12)
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.path.rglob("*") if p.is_file()}
    elsewhere = evaluate_run(run.path, progress=False, out=run.path.parent / "evaluated")
    assert elsewhere["micro_auc"] == pytest.approx(metrics["micro_auc"], abs=1e-12)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.path.rglob("*") if p.is_file()} == files
    assert (run.path.parent / "evaluated" / "metrics.json").is_file() and (run.path.parent / "evaluated" / "roc.png").is_file()
    # AED writes video-level accuracy and a confusion matrix too
    aed = dict(raw, detector="aed", name="aed-synthetic",
               detector_args={"model": "aed", "model_args": {"feature_dim": F, "num_classes": 2, "window": 2, "hidden": 8,
                                                               "embed_dim": 32, "head_dim": 16}, "steps": 60, "lr": 2e-3})
    aed_run = train(config_from_dict(aed), progress=False)
    aed_metrics = aed_run.read_json("metrics.json")
    assert "video_accuracy" in aed_metrics and (aed_run.path / "confusion.png").is_file()


def test_cli_train_with_overrides_and_seed_repeats(setup, tmp_path):
    _, raw = setup
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(path), "--set", "detector_args.steps=20", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert "micro_auc" in out and load_config(path, ["detector_args.steps=20"]).detector_args["steps"] == 20
    summary = repeat_over_seeds(path, 2, progress=False)
    assert set(summary["summary"]["micro_auc"]) == {"mean", "std", "values"} and len(summary["runs"]) == 2


def test_bad_configs_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown keys"):
        config_from_dict({"detector": "arnet", "data": {"datset": "x"}})
    with pytest.raises(ConfigError, match=r"seed: expected int, found 'abc'"):
        config_from_dict({"detector": "arnet", "seed": "abc"})
    with pytest.raises(ConfigError, match=r"smoothing: expected float \| None, found 'x'"):
        config_from_dict({"detector": "arnet", "eval": {"smoothing": "x"}})
    with pytest.raises(ConfigError, match=r"eval.tail is not a setting.*detector_args.tail"):
        config_from_dict({"detector": "arnet", "eval": {"tail": "drop"}})
    old = config_from_dict({"detector": "arnet", "eval": {"tail": "extend", "smoothing": 2.0}})  # a run folder's
    assert old.eval.smoothing == 2.0 and not hasattr(old.eval, "tail")
    assert config_from_dict({"detector": "arnet", "eval": {"threshold": "1e-3"}}).eval.threshold == 1e-3
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: arnet\n")
    result = CliRunner().invoke(app, ["train", str(bad), "--set", "detector_args.model=nope"])
    assert result.exit_code == 1 and "nope" in result.output


def test_features_and_labels_of_different_length_are_refused(setup, tmp_path):
    root, raw = setup
    from vadkit.engine.train import make_items

    dataset = get_dataset("ucsd_ped2", root)
    record = dataset.videos("test")[0]
    store = FeatureStore(tmp_path / "s", {"synthetic": True})
    store.write(record_key(record), np.zeros((2, F), np.float32), num_frames=40, fps=10)
    with pytest.raises(ValueError, match=r"extracted from 40 frames, but the dataset's video and labels have 48"):
        make_items([record], store)
    # a store whose snippet count does not fit the frame count fails when scored, naming both counts
    from vadkit.detectors import build_detector
    from vadkit.engine.train import make_items as items_of

    good = FeatureStore(tmp_path / "t", {"synthetic": True})
    good.write(record_key(record), np.zeros((2, F), np.float32), num_frames=48, fps=10)  # 48 frames need 3 snippets
    det = build_detector("arnet", model_args={"feature_dim": F}, steps=0)
    det.fitted_ = True
    with pytest.raises(ValueError, match="2 snippet scores for a video of 48 frames; expected 3"):
        det.score(items_of([record], good)[0])
