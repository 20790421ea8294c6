"""The sEnDec detector: clips and windows, the detector contract, a synthetic anomaly it learns to find, the engine
run (train, evaluate) and the two Ped2 configs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vadkit.engine.config import config_from_dict, load_config
from vadkit.detectors import VideoItem, build_detector, load_detector
from vadkit.detectors.sendec import pool_error_maps, sliding_windows, training_clips, window_starts
from vadkit.metrics import roc_auc

REPO = Path(__file__).resolve().parents[2]
SIZE = 32  # synthetic frames are SIZE x SIZE
ANOMALY = (6, 10)  # frames [6, 10) of an abnormal test video hold the injected patch


# ---------------------------------------------------------------------------------------------------------------
# Synthetic frame folders: a white square sliding over a dark background; the anomaly is a mid-gray patch
# (close to what an untrained network outputs, so only training makes it stand out).
# ---------------------------------------------------------------------------------------------------------------
def write_video(folder: Path, rng: np.random.Generator, n: int = 16, abnormal: bool = False) -> np.ndarray:
    """Write ``n`` PNG frames to ``folder``; return the ``(n,)`` 0/1 frame labels."""
    folder.mkdir(parents=True, exist_ok=True)
    row, col = int(rng.integers(4, SIZE - 12)), int(rng.integers(0, 10))
    labels = np.zeros(n, np.uint8)
    for t in range(n):
        frame = np.full((SIZE, SIZE, 3), 30, np.uint8)
        x = (col + 2 * t) % (SIZE - 8)
        frame[row:row + 8, x:x + 8] = 220
        if abnormal and ANOMALY[0] <= t < ANOMALY[1]:
            frame[2:12, 18:28] = 128
            labels[t] = 1
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame)
    return labels


def make_item(folder: Path, rng: np.random.Generator, abnormal: bool = False, n: int = 16) -> VideoItem:
    labels = write_video(folder, rng, n, abnormal)
    return VideoItem(id=folder.name, num_frames=n, label=int(abnormal), frame_labels=labels, path=folder)


def small_detector(**changes):
    args = dict(clip_length=4, height=SIZE, width=SIZE, batch_size=4, clip_stride=None, epochs=20, optimizer="adam",
                lr=1e-2, dropout=0.0, score_stride=2, threads=1, seed=0)
    return build_detector("sendec", **{**args, **changes})


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("sendec_synthetic")
    rng = np.random.default_rng(0)
    train = [make_item(root / f"train{i}", rng) for i in range(4)]
    test = [make_item(root / f"abnormal{i}", rng, abnormal=True) for i in range(2)] + [make_item(root / "normal", rng)]
    return train, test


@pytest.fixture(scope="module")
def trained(videos):
    train, _ = videos
    return small_detector().fit(train, progress=False)


def pooled_auc(detector, test):
    scores = np.concatenate([detector.score(v).values for v in test])
    return roc_auc(scores, np.concatenate([v.frame_labels for v in test]))


# ---------------------------------------------------------------------------------------------------------------
# Clips and windows
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,length,stride", [(10, 4, 1), (10, 4, 3), (10, 4, 4), (4, 4, 1), (3, 4, 1), (1, 1, 1)])
def test_windows_cover_every_frame_and_end_at_the_last(n, length, stride):
    starts = window_starts(n, length, stride)
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s:s + length] = True
    assert covered.all()
    assert starts[0] == 0 and starts[-1] == max(0, n - length)
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_training_clips_never_cross_a_video_boundary():
    lengths = [10, 3, 8]
    clips = training_clips(lengths, length=4, stride=2)
    assert [tuple(r) for r in clips] == [(0, 0), (0, 2), (0, 4), (0, 6), (2, 0), (2, 2), (2, 4)]
    for video, start in clips:
        assert start + 4 <= lengths[video]
    non_overlapping = training_clips(lengths, length=4, stride=4)
    assert [tuple(r) for r in non_overlapping] == [(0, 0), (0, 4), (2, 0), (2, 4)]


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_sliding_windows_stream_the_right_frames(stride):
    frames = np.arange(11)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)  # (11, 2, 2, 1), frame i = i
    pulled = []

    def source():
        for f in frames:
            pulled.append(int(f[0, 0, 0]))
            yield f

    out = list(sliding_windows(source(), 11, 4, stride))
    assert [s for s, _ in out] == window_starts(11, 4, stride)
    for start, clip in out:
        assert clip.shape == (4, 2, 2, 1) and (clip[:, 0, 0, 0] == np.arange(start, start + 4)).all()
    assert pulled == list(range(11))  # each frame decoded once


def test_patch_max_finds_a_local_error_the_mean_dilutes():
    maps = torch.zeros(1, 2, 32, 32)  # (B, T, H, W)
    maps[0, 0, 4:12, 20:28] = 1.0  # frame 0: one 8x8 square of error
    maps[0, 1] = 0.1  # frame 1: a little error everywhere
    mean = pool_error_maps(maps, "mean")
    assert torch.allclose(mean, torch.tensor([[64 / 1024, 0.1]]))
    assert torch.allclose(pool_error_maps(maps, "patch-max", patch=8), torch.tensor([[1.0, 0.1]]))
    with pytest.raises(ValueError, match="pooling"):
        pool_error_maps(maps, "median")


def test_sliding_windows_report_a_short_video():
    with pytest.raises(ValueError, match="ended after 5 frames, expected 8"):
        list(sliding_windows(iter(np.zeros((5, 2, 2, 1), np.uint8)), 8, 4, 1))


# ---------------------------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------------------------
def test_injected_anomaly_scores_higher_after_training(videos, trained):
    train, test = videos
    untrained = small_detector(epochs=0).fit(train, progress=False)  # statistics only, initial weights
    assert pooled_auc(untrained, test) < 0.5  # the gray patch is close to an untrained network's output
    assert pooled_auc(trained, test) > 0.8
    losses = [row["loss"] for row in trained.history]
    assert losses[-1] < 0.2 * losses[0]
    for item in test[:2]:
        scores, labels = trained.score(item).values, item.frame_labels.astype(bool)
        assert scores[labels].mean() > scores[~labels].mean() + 1.0  # a training standard deviation higher


def test_scores_are_z_scored_with_training_statistics(videos, trained):
    train, _ = videos
    pooled = np.concatenate([trained.score(v).values for v in train])
    assert abs(pooled.mean()) < 1e-6 and abs(pooled.std() - 1.0) < 1e-6
    raw = trained.raw_errors(train[0])
    assert np.allclose(trained.score(train[0]).values, (raw - trained.train_mean_) / trained.train_std_)
    assert trained.threshold_ == pytest.approx(np.quantile(pooled, 0.99))  # the training frames' 0.99 quantile


def test_overlapping_windows_are_averaged_per_frame(videos, trained):
    _, test = videos
    item = test[0]
    frames = np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted(item.path.glob("*.png"))])  # (16, H, W, 3) RGB
    x = torch.from_numpy(frames).float().div(255).permute(3, 0, 1, 2)  # (3, 16, H, W)
    total, count = np.zeros(item.num_frames), np.zeros(item.num_frames)
    with torch.no_grad():
        for start in window_starts(item.num_frames, 4, 2):
            clip = x[None, :, start:start + 4]  # (1, 3, 4, H, W)
            error = (clip - trained.model(clip)).pow(2).mean(dim=(1, 3, 4))[0].numpy()  # (4,)
            total[start:start + 4] += error
            count[start:start + 4] += 1
    assert np.allclose(trained.raw_errors(item), total / count, rtol=1e-4, atol=1e-7)


def test_schedule_short_videos_and_prefixes(videos, trained, tmp_path):
    train, test = videos
    trained.save(tmp_path / "model.pt")
    again = load_detector(tmp_path / "model.pt")
    assert {k: v for k, v in again.schedule_.items() if k != "seconds"} == {
        "steps": 20 * 4, "planned_steps": 80, "epochs": 20, "stopped_by_budget": False}
    short = make_item(tmp_path / "short", np.random.default_rng(1), n=3)  # shorter than a clip
    assert len(trained.score(short)) == 3
    with pytest.raises(ValueError, match="video wrong: expected 20 frames"):
        trained.score(VideoItem(id="wrong", num_frames=20, path=test[0].path))
    prefix = trained.score(VideoItem(id="prefix", num_frames=test[0].num_frames - 2, path=test[0].path))
    assert len(prefix) == test[0].num_frames - 2 and prefix.scored.all()


def test_truncated_video_file_is_scored_up_to_the_break(trained, tmp_path):
    """``vadkit score`` with an sEnDec model on an AVI cut off part-way: the decodable frames, with a warning."""
    from vadkit.inference import score_video

    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (SIZE, SIZE))
    rng = np.random.default_rng(0)
    for _ in range(40):
        writer.write(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    result = score_video(path, trained, tmp_path / "out", threshold=2.0, write_annotated=False)
    assert 0 < result["num_frames"] < 40 and len(result["scores"]) == result["num_frames"]
    assert result["warnings"] and "40 frames" in result["warnings"][0]


def test_pixel_normalised_patch_max_scoring_is_causal_and_saved(videos, trained, tmp_path):
    train, test = videos
    with pytest.raises(ValueError, match="changes only"):
        trained.with_scoring(train, epochs=3)
    detector = trained.with_scoring(train, pooling="patch-max", patch=8, pixel_normalisation=True)
    assert detector.args["pooling"] == "patch-max" and trained.args["pooling"] == "mean"
    assert all(torch.equal(p, q) for p, q in zip(detector.model.parameters(), trained.model.parameters()))
    assert detector.pixel_mean_.shape == detector.pixel_std_.shape == (SIZE, SIZE)
    pooled = np.concatenate([detector.score(v).values for v in train])
    assert abs(pooled.mean()) < 1e-6 and abs(pooled.std() - 1.0) < 1e-6  # z-scored on the training frames
    assert pooled_auc(detector, test) > 0.8
    detector.save(tmp_path / "model.pt")
    again = load_detector(tmp_path / "model.pt")
    assert np.allclose(again.score(test[0]).values, detector.score(test[0]).values)


def test_time_budget_stops_training_at_a_step_boundary(videos):
    train, _ = videos
    detector = small_detector(epochs=1000, max_minutes=1e-5, bn_clips=0).fit(train, progress=False)
    assert detector.schedule_["stopped_by_budget"] and detector.schedule_["steps"] <= 1  # of 1000 epochs planned


@pytest.mark.parametrize("bad,match", [
    (dict(height=40), "multiples of 16"),
    (dict(in_channels=2), "in_channels"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(normalisation="per-video-minmax"), "eval.normalisation"),
    (dict(max_minutes=0), "max_minutes"),
    (dict(score_stride=5), "every frame is scored"),
    (dict(pooling="patch-max", patch=64), "must fit"),
])
def test_bad_arguments_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        small_detector(**bad)


def test_grayscale_detector_reconstructs_one_channel(videos):
    train, test = videos
    detector = small_detector(in_channels=1, epochs=1).fit(train[:1], progress=False)
    assert detector.model.out_channels == 1 and len(detector.score(test[0])) == 16


# ---------------------------------------------------------------------------------------------------------------
# Through the engine, and the Ped2 configs
# ---------------------------------------------------------------------------------------------------------------
def test_engine_trains_and_evaluates_a_run(tmp_path):
    from vadkit.engine.train import evaluate_run, train

    root, rng = tmp_path / "data", np.random.default_rng(2)
    for i in range(3):
        write_video(root / "train" / "normal" / f"n{i}", rng)
    write_video(root / "test" / "normal" / "t0", rng)
    write_video(root / "test" / "abnormal" / "t1", rng, abnormal=True)
    (root / "labels.csv").write_text(f"video,start,end\nt1,{ANOMALY[0]},{ANOMALY[1]}\n")
    raw = {"detector": "sendec",
           "detector_args": dict(clip_length=4, height=SIZE, width=SIZE, batch_size=8, epochs=2, score_stride=2,
                                 threads=1),
           "data": {"dataset": "folder", "root": str(root)}, "eval": {"normalisation": "train-zscore"},
           "output": str(tmp_path / "runs"), "name": "sendec-synthetic"}
    run = train(config_from_dict(raw), progress=False)
    metrics = run.read_json("metrics.json")
    for name in ("model.pt", "config.yaml", "protocol.json", "curves.csv", "training.png"):
        assert (run.path / name).is_file(), name
    assert run.read_scores("test/t1").shape == (16,)
    assert metrics["num_frames"] == 32 and metrics["protocol"]["normalisation"] == "train-zscore"
    assert not metrics["protocol"]["uses_test_statistics"]
    again = evaluate_run(run.path, progress=False)
    assert again["micro_auc"] == pytest.approx(metrics["micro_auc"])

    # `vadkit score` reads the same run folder (frames decoded by the detector itself)
    from vadkit.inference import resolve_model, score_video

    model = resolve_model(run.path)
    result = score_video(root / "test" / "abnormal" / "t1", model, tmp_path / "scored", write_annotated=False)
    assert len(result["scores"]) == 16 and result["threshold"] == model.detector.threshold_  # one threshold policy
    assert metrics["threshold"] == model.detector.threshold_
    assert np.allclose(result["scores"], run.read_scores("test/t1"), atol=1e-5)

    raw["eval"] = {"normalisation": "per-video-minmax"}
    minmax = train(config_from_dict(raw), progress=False).read_json("metrics.json")
    assert minmax["protocol"]["uses_test_statistics"]


def test_cpu_config_fits_the_budget():
    config = load_config(REPO / "configs" / "sendec_ped2.yaml")
    assert config.detector == "sendec" and config.data.split == "official"
    assert config.eval.normalisation == "train-zscore" and config.detector_args["normalisation"] == "train-zscore"
    assert 0 < config.detector_args["max_minutes"] <= 60
    detector = build_detector(config.detector, **config.detector_args)
    a = detector.args
    x = torch.zeros(1, 3, a["clip_length"], a["height"], a["width"])
    detector.model.eval()
    with torch.no_grad():
        assert detector.model(x).shape == x.shape


def test_full_config_is_the_papers_schedule_and_runs_at_240x320():
    config = load_config(REPO / "configs" / "sendec_ped2_full.yaml")
    detector = build_detector(config.detector, **config.detector_args)
    a = detector.args
    assert (a["height"], a["width"], a["batch_size"], a["epochs"], a["dropout"]) == (240, 320, 16, 50, 0.5)
    assert (a["optimizer"], a["lr"], a["rho"], a["eps"], a["max_minutes"]) == ("adadelta", 1e-3, 0.95, 1e-7, None)
    detector.model.eval()
    x = torch.zeros(1, 3, 4, 240, 320)  # one paper-sized clip
    with torch.no_grad():
        out = detector.model(x)
    assert out.shape == (1, 3, 4, 240, 320) and torch.isfinite(out).all()


def test_fit_and_score_restore_the_callers_torch_threads(videos, trained):
    """``threads`` applies while sEnDec trains and scores; the caller's thread count comes back afterwards."""
    train, test = videos
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        trained.score(test[0])  # threads=1 inside
        assert torch.get_num_threads() == 2
        small_detector(epochs=1).fit(train[:1], progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
