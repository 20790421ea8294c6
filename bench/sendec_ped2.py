"""sEnDec on UCSD Ped2 (official split) within a training time budget, through the engine.

Loads ``configs/sendec_ped2.yaml`` (or ``--config``), sets ``detector_args.max_minutes`` to ``--minutes``, runs
``vadkit.engine.train.train`` (one run folder), then re-post-processes the saved raw scores of that run into the
four variants causal (train z-score) / per-video min-max x smoothing none / ``--sigma``. Prints one JSON line:

- ``micro_auc``, ``macro_auc``, ``ap``, ``eer``: the config's own post-processing (causal, no smoothing by default);
- ``variants``: the same four numbers for each of the four variants;
- ``mean_pooling``: when the config scores with another rule (``pooling``/``pixel_normalisation``), the four
  variants again for the same trained weights scored with the plain frame-mean error of docs/seed-systems.md §4.5
  (training statistics re-measured; ``--no-mean-pooling`` skips it);
- ``train_s``: seconds of ``fit`` (frame loading, optimisation within the budget, training-error statistics);
- ``score_frames_per_s``: test frames scored per second (decode + resize + sliding windows + network), measured
  between the protocol card (written just before scoring) and the last score file of the run;
- ``schedule``: steps and epochs reached, and whether the budget stopped training; ``run_dir``, ``device``.

    python bench/sendec_ped2.py [--minutes 50] [--config configs/sendec_ped2.yaml] [--sigma 3] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = ("micro_auc", "macro_auc", "ap", "eer")


def data_root() -> Path:
    root = Path(os.environ.get("VADKIT_DATA", REPO.parent / "shared" / "data")) / "ucsd_ped2"
    if not (root / "training" / "frames").is_dir():
        sys.exit(f"UCSD Ped2 not found at {root}: set VADKIT_DATA to the folder holding ucsd_ped2/")
    return root


def variants(causal: dict, labels: dict, sigma: float) -> dict:
    """Micro/macro AUC, AP and EER for causal and per-video min-max scores, with and without smoothing.

    ``causal``: video id -> the detector's causal (train z-score) frame scores; min-max of an affine transform
    equals min-max of the raw error, so the per-video min-max variant needs nothing else.
    """
    from vadkit.metrics import evaluate_frames
    from vadkit.scoring import gaussian_smooth, minmax_per_video

    out = {}
    for norm, base in (("causal", causal), ("per-video-minmax", {k: minmax_per_video(s) for k, s in causal.items()})):
        for smooth in (None, sigma):
            scores = {k: gaussian_smooth(s, smooth) for k, s in base.items()}
            metrics = evaluate_frames(scores, labels)
            name = f"{norm}, " + (f"sigma {smooth:g}" if smooth else "no smoothing")
            out[name] = {k: round(float(metrics[k]), 4) for k in METRIC_KEYS}
    return out


def run_scores(run_path: Path) -> tuple[dict, dict]:
    """The saved causal test scores of a run and the test frame labels, by video id."""
    from vadkit.engine.config import config_from_dict
    from vadkit.engine.run import RunDir
    from vadkit.engine.train import split_records, record_key

    run = RunDir(run_path)
    config = config_from_dict(run.read_config())
    if config.eval.smoothing or config.eval.normalisation == "per-video-minmax":
        raise ValueError("the bench needs a config whose saved scores are unsmoothed and not min-max normalised")
    _, test, _ = split_records(config)
    labels = {record_key(r): np.asarray(r.frame_labels) for r in test}
    return {key: run.read_scores(key) for key in labels}, labels


def mean_pooling_scores(detector, config) -> tuple[dict, float]:
    """Causal test scores of the same weights with the plain frame-mean error; seconds it took (statistics too)."""
    from vadkit.engine.train import make_items, split_records

    train_records, test_records, _ = split_records(config)
    start = time.perf_counter()
    plain = detector.with_scoring(make_items(train_records), pooling="mean", pixel_normalisation=False)
    scores = {item.id: plain.score(item).values for item in make_items(test_records)}
    return scores, time.perf_counter() - start


def scoring_seconds(run_path: Path) -> float:
    """Seconds from the protocol card (written right before test scoring) to the last score file written."""
    last = max(p.stat().st_mtime for p in (run_path / "scores").glob("*.npy"))
    return last - (run_path / "protocol.json").stat().st_mtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="budget of the optimisation loop (detector_args.max_minutes; default: the config's)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "sendec_ped2.yaml")
    parser.add_argument("--sigma", type=float, default=3.0, help="Gaussian smoothing sigma (frames) of the variants")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "bench_sendec_ped2")
    parser.add_argument("--no-mean-pooling", action="store_true", help="skip rescoring with the frame-mean error")
    args = parser.parse_args()

    from vadkit.engine.config import load_config
    from vadkit.detectors import load_detector
    from vadkit.engine.train import train

    overrides = [f"data.root={data_root()}", f"output={args.output}", *args.overrides]
    if args.minutes is not None:
        overrides.insert(0, f"detector_args.max_minutes={args.minutes}")
    config = load_config(args.config, overrides)
    start = time.perf_counter()
    run = train(config, progress=False)
    wall = time.perf_counter() - start
    metrics = run.read_json("metrics.json")
    detector = load_detector(run.path)
    num_frames = metrics["num_frames"]
    causal, labels = run_scores(run.path)  # the saved causal test scores and the frame labels, read once
    result = {key: round(float(metrics[key]), 4) for key in METRIC_KEYS}
    result.update(
        train_s=metrics["train_seconds"],
        score_frames_per_s=round(num_frames / scoring_seconds(run.path), 2),
        variants=variants(causal, labels, args.sigma),
        schedule=detector.schedule_,
        detector_args={k: v for k, v in detector.args.items()},
        normalisation=config.eval.normalisation,
        wall_s=round(wall, 1),
        run_dir=str(run.path),
        config=str(args.config),
        device=f"{platform.processor() or platform.machine()}, {detector.args.get('threads')} torch thread(s), "
               f"{os.cpu_count()} cores",
    )
    a = detector.args
    if not args.no_mean_pooling and (a["pooling"] != "mean" or a["pixel_normalisation"]):
        scores, seconds = mean_pooling_scores(detector, config)
        result["mean_pooling"] = {**variants(scores, labels, args.sigma), "seconds": round(seconds, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
