"""One-class k-NN (`vadkit fit-normal`) on UCSD Ped2's official split: fit on the 16 normal training clips, score the
12 test clips, print one JSON line with the frame-level ``micro_auc`` (and macro AUC, AP, EER, the false-alarm rate on
the test clips' normal frames at the calibrated threshold, timings).

    python bench/oneclass_ped2.py [--k 1] [--metric cosine] [--far 0.01] [--work /tmp/vadkit_bench/oneclass]
    python bench/oneclass_ped2.py --store features/ped2      # reuse a `vadkit extract` store (keys train/..., test/...)

By default the features are extracted the way `fit-normal` and `vadkit score` do (cached under ``--work``, so a
second run skips the extraction). Frame scores are not smoothed (as on the protocol card of the other methods).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def data_root() -> Path:
    root = Path(os.environ.get("VADKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ucsd_ped2"
    if not (root / "testing" / "frames").is_dir():
        sys.exit(f"UCSD Ped2 not found at {root}: set VADKIT_DATA")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--far", type=float, default=0.01)
    parser.add_argument("--work", type=Path, default=Path("/tmp/vadkit_bench/oneclass"))
    parser.add_argument("--store", type=Path, default=None, help="an existing Ped2 feature store (skips extraction)")
    args = parser.parse_args()

    from vadkit.datasets import get_dataset
    from vadkit.detectors.knn import KNNDetector
    from vadkit.engine.oneclass import fit_normal
    from vadkit.engine.train import make_items, store_item
    from vadkit.features.extract import extract_videos
    from vadkit.features.store import FeatureStore
    from vadkit.inference import resolve_model
    from vadkit.metrics import evaluate_frames

    dataset = get_dataset("ucsd_ped2", data_root())
    train_records, test_records = dataset.videos("train"), dataset.videos("test")
    start = time.perf_counter()
    if args.store:
        store = FeatureStore(args.store)
        detector = KNNDetector(k=args.k, metric=args.metric, false_alarm_rate=args.far)
        detector.fit(make_items(train_records, store), progress=False)
        test_items = make_items(test_records, store)
        fit_seconds = time.perf_counter() - start
    else:
        run = fit_normal([r.path for r in train_records], args.work / "run", method="knn",
                         detector_args={"k": args.k, "metric": args.metric}, false_alarm_rate=args.far,
                         features_dir=args.work / "train_features", progress=False)
        fit_seconds = time.perf_counter() - start
        model = resolve_model(run.path)
        detector = model.detector
        names = [f"test/{r.id}" for r in test_records]
        extract_videos(list(zip(names, [r.path for r in test_records])), args.work / "test_features",
                       model.extractor(), progress=False)
        store = FeatureStore(args.work / "test_features")
        test_items = [store_item(n, r.num_frames, r.path, r.fps, store, label=r.label, frame_labels=r.frame_labels)
                      for n, r in zip(names, test_records)]
    scores = {v.id: detector.score(v).values for v in test_items}
    labels = {v.id: np.asarray(v.frame_labels) for v in test_items}
    metrics = evaluate_frames(scores, labels, threshold=detector.threshold_)
    normal = np.concatenate([scores[k][labels[k] == 0] for k in scores])
    print(json.dumps({
        "micro_auc": round(metrics["micro_auc"], 4), "macro_auc": round(metrics["macro_auc"], 4),
        "macro_videos": metrics["macro_videos"], "ap": round(metrics["ap"], 4), "eer": round(metrics["eer"], 4),
        "threshold": detector.threshold_, "requested_far": args.far,
        "far_test_normal_frames": round(float((normal >= detector.threshold_).mean()), 4),
        "calibration_far": detector.calibration_.get("achieved_far"), "k": args.k, "metric": args.metric,
        "bank_snippets": detector.calibration_.get("bank_snippets"), "train_videos": len(train_records),
        "test_videos": len(test_records), "test_frames": metrics["num_frames"],
        "features": "store " + str(args.store) if args.store else "extracted by fit-normal (cached in --work)",
        "fit_seconds": round(fit_seconds, 1), "seconds": round(time.perf_counter() - start, 1),
        "smoothing": None, "split": "official one-class (train: 16 normal clips)",
    }))


if __name__ == "__main__":
    main()
