"""STATE on UCSD Ped2 (official split) within a training time budget, through the engine.

Loads ``configs/state_ped2.yaml`` (``--boxes vec``, the VEC boxes of ``ucsd_ped2_boxes``) or
``configs/state_ped2_motion.yaml`` (``--boxes motion``, motion boxes only), sets ``detector_args.max_minutes`` to
``--minutes`` (default: the config's budget), points the data, box and cache folders at absolute paths, cuts the test videos' cubes (flow, boxes,
crops: frames only, no labels) into the cache first so that the scoring time below is the perturbed scoring alone,
then runs ``vadkit.engine.train.train`` (one run folder). Prints one JSON line:

- ``micro_auc`` (the paper-comparable number), ``macro_auc``, ``ap``, ``eer``;
- ``train_s``: seconds of ``fit`` (training cubes cut or read from the cache, optimisation within the budget,
  perturbed training statistics); ``train_loop_s`` and ``train_cubes_per_s``: the optimisation loop alone;
- ``score_frames_per_s``, ``score_cubes_per_s``: test frames / cubes per second of perturbed scoring, measured
  between the protocol card (written just before scoring) and the last score file of the run;
- ``test_cut_s``, ``test_cubes``: the cube cutting of the test videos (cached for later runs);
- ``schedule``, ``stats`` (the z-score statistics), ``detector_args``, ``run_dir``, ``device``.

    python bench/state_ped2.py [--minutes N] [--boxes vec|motion] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = ("micro_auc", "macro_auc", "ap", "eer")
CONFIGS = {"vec": REPO / "configs" / "state_ped2.yaml", "motion": REPO / "configs" / "state_ped2_motion.yaml"}


def data_dir() -> Path:
    root = Path(os.environ.get("VADKIT_DATA", REPO.parent / "shared" / "data"))
    if not (root / "ucsd_ped2" / "training" / "frames").is_dir():
        sys.exit(f"UCSD Ped2 not found at {root / 'ucsd_ped2'}: set VADKIT_DATA to the folder holding ucsd_ped2/")
    return root


def scoring_seconds(run_path: Path) -> float:
    """Seconds from the protocol card (written right before test scoring) to the last score file written."""
    last = max(p.stat().st_mtime for p in (run_path / "scores").glob("*.npy"))
    return last - (run_path / "protocol.json").stat().st_mtime


def cut_test_cubes(config) -> tuple[float, int]:
    """Cut (or find cached) the cubes of every test video with the config's detector settings: ``(seconds, cubes)``."""
    from vadkit.detectors import build_detector
    from vadkit.engine.train import make_items, split_records

    _, test, _ = split_records(config)
    detector = build_detector(config.detector, **{"seed": config.seed, **config.detector_args})
    start, cubes = time.perf_counter(), 0
    for item in make_items(test):
        store, key = detector._cubes(item)
        cubes += store.count(key)
    return time.perf_counter() - start, cubes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget (detector_args.max_minutes); default: the config's")
    parser.add_argument("--boxes", choices=sorted(CONFIGS), default="vec", help="VEC boxes or motion boxes only")
    parser.add_argument("--config", type=Path, default=None, help="default: the config of --boxes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    parser.add_argument("--cache", type=Path, default=REPO / "features" / "state_ped2", help="flow/box/cube cache")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "bench_state_ped2")
    args = parser.parse_args()

    from vadkit.engine.config import load_config
    from vadkit.detectors import load_detector
    from vadkit.engine.train import train

    data = data_dir()
    config_path = args.config or CONFIGS[args.boxes]
    budget = [] if args.minutes is None else [f"detector_args.max_minutes={args.minutes}"]
    overrides = [*budget, f"data.root={data / 'ucsd_ped2'}",
                 f"detector_args.cache_dir={args.cache.resolve()}", f"output={args.output}", *args.overrides]
    if args.boxes == "vec":
        overrides.insert(0, f"detector_args.boxes_dir={data / 'ucsd_ped2_boxes'}")
    config = load_config(config_path, overrides)
    cut_s, test_cubes = cut_test_cubes(config)
    start = time.perf_counter()
    run = train(config, progress=False)
    wall = time.perf_counter() - start
    metrics = run.read_json("metrics.json")
    detector = load_detector(run.path)
    schedule = detector.schedule_
    score_s = scoring_seconds(run.path)
    result = {key: round(float(metrics[key]), 4) for key in METRIC_KEYS}
    result.update(
        boxes=args.boxes,
        train_s=metrics["train_seconds"],
        train_loop_s=schedule["seconds"],
        train_cubes_per_s=round(schedule["cubes"] / max(schedule["seconds"], 1e-9), 2),
        score_frames_per_s=round(metrics["num_frames"] / score_s, 2),
        score_cubes_per_s=round(test_cubes / score_s, 2),
        score_s=round(score_s, 1),
        test_cut_s=round(cut_s, 1),
        test_cubes=test_cubes,
        schedule=schedule,
        stats=detector.stats_,
        detector_args=detector.args,
        wall_s=round(wall, 1),
        run_dir=str(run.path),
        config=str(config_path),
        device=f"{platform.processor() or platform.machine()}, {detector.args.get('threads')} torch thread(s), "
               f"{os.cpu_count()} cores",
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
