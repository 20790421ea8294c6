"""The object-attribute detector on UCSD Ped2 (official split): fit on the 16 training clips, score the 12 test clips
through `vadkit train`, print one JSON line.

    python bench/objects_ped2.py [--boxes vec|motion|yolox] [--set key=value ...]

``--boxes vec`` runs ``configs/objects_ped2.yaml`` (VEC's precomputed boxes); ``--boxes motion`` runs
``configs/objects_ped2_motion.yaml``: no precomputed boxes, the config's own box source (since v5 the regions that
differ from each video's median frame; v1-v4 frame differences); ``--boxes yolox`` runs
``configs/objects_ped2_yolox.yaml``: no precomputed boxes, YOLOX-Nano's (shipped with vadkit) and the configured
fallback regions.

Keys: ``micro_auc``, ``macro_auc``, ``ap``, ``eer``, ``far_requested``, ``far_test_normal`` (share of the test
clips' normal frames at or above the threshold), ``held_out_far`` (the same on held-out training clips),
``fit_s``, ``score_frames_per_s`` (test scoring, end to end from the caches the fit left: flow and boxes of the
test clips are computed during scoring), ``training_objects``, and ``per_attribute``: the same AUCs with one
attribute alone (an ablation measured on test, labelled as such; it chooses nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from helpers.data import data_root  # noqa: E402

CONFIGS = {"vec": "objects_ped2.yaml", "motion": "objects_ped2_motion.yaml", "yolox": "objects_ped2_yolox.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", choices=tuple(CONFIGS), default="vec")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "bench_objects_ped2")
    args = parser.parse_args()

    from vadkit.detectors import load_detector
    from vadkit.engine.config import load_config
    from vadkit.engine.train import make_items, split_records, train
    from vadkit.metrics import evaluate_frames
    from scipy.ndimage import gaussian_filter1d

    data = data_root()
    config_file = REPO / "configs" / CONFIGS[args.boxes]
    overrides = [f"data.root={data / 'ucsd_ped2'}", f"output={args.output}", *args.overrides]
    if args.boxes == "vec":
        overrides.append(f"detector_args.boxes_dir={data / 'ucsd_ped2_boxes'}")
    config = load_config(config_file, overrides)
    start = time.perf_counter()
    run = train(config, progress=False)
    wall = time.perf_counter() - start
    metrics = run.read_json("metrics.json")
    detector = load_detector(run.path)
    _, test_records, _ = split_records(config)
    items = make_items(test_records)
    labels = {v.id: np.asarray(v.frame_labels) for v in items}
    scores = {v.id: run.read_scores(v.id) for v in items}
    normal = np.concatenate([scores[k][labels[k] == 0] for k in scores])
    per_attribute = {}
    for name in ("velocity", "appearance"):
        alone = {}
        for item in items:
            objs = detector.object_attributes(item)
            frame = np.full(item.num_frames, -np.inf)
            np.maximum.at(frame, objs["frame"].astype(np.int64), objs[name])
            frame[np.isneginf(frame)] = np.min(objs[name]) if len(objs[name]) else 0.0
            alone[item.id] = gaussian_filter1d(frame, detector.args["sigma"], mode="nearest")
        m = evaluate_frames(alone, labels, threshold=0.0)
        per_attribute[name] = {"micro_auc": round(m["micro_auc"], 4), "macro_auc": round(m["macro_auc"], 4)}
    score_s = max(p.stat().st_mtime for p in (run.path / "scores").glob("*.npy")) - (run.path / "protocol.json").stat().st_mtime
    print(json.dumps({
        "micro_auc": round(metrics["micro_auc"], 4), "macro_auc": round(metrics["macro_auc"], 4),
        "ap": round(metrics["ap"], 4), "eer": round(metrics["eer"], 4), "boxes": args.boxes,
        "threshold": detector.threshold_, "far_requested": detector.args["false_alarm_rate"],
        "far_test_normal": round(float((normal >= detector.threshold_).mean()), 4),
        "held_out_far": round(detector.calibration_["held_out_far"], 4),
        "fit_s": metrics["train_seconds"], "score_frames_per_s": round(metrics["num_frames"] / max(score_s, 1e-9), 2),
        "wall_s": round(wall, 1), "training_objects": detector.calibration_["training_objects"],
        "per_attribute": per_attribute, "per_attribute_note": "ablation measured on test; chooses nothing",
        "run_dir": str(run.path), "threads": detector.args["threads"]}))


if __name__ == "__main__":
    main()
