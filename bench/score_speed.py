"""End-to-end speed of `vadkit score` on the 12 UCSD Ped2 test clips (2010 frames): decode, I3D (one centre crop),
detector, smoothing, events, CSV/JSON, plot, thumbnails, annotated mp4 and HTML report.

Prints one JSON line: ``frames_per_s`` (all frames / wall time of the whole run, the I3D model load included),
``frames_per_s_per_video`` (mean of each video's own rate), the threads and the model used.

    python bench/score_speed.py [--model ped2-knn | RUN_DIR] [--store features/ped2] [--no-video] [--videos 12]
                                [--backend auto|torch|onnxruntime|openvino]

When ``--model`` is not found (the bundled model may not be installed yet), a k-NN is fitted on the training keys
of ``--store`` (a Ped2 feature store made with the default settings) and used instead; the JSON says which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch


def data_root() -> Path:
    root = Path(os.environ.get("VADKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ucsd_ped2"
    if not (root / "testing" / "frames").is_dir():
        sys.exit(f"UCSD Ped2 not found at {root}: set VADKIT_DATA")
    return root


def load_model(name: str, store: Path, backend: str = "auto"):
    from vadkit.inference import LoadedModel, resolve_model

    try:
        return resolve_model(name, backend=backend), name
    except FileNotFoundError:
        pass
    from vadkit.datasets import get_dataset
    from vadkit.detectors.knn import KNNDetector
    from vadkit.engine.train import make_items
    from vadkit.features.store import FeatureStore

    if not (store / "manifest.json").is_file():
        sys.exit(f"model {name!r} not found and no feature store at {store} to fit one: pass --model RUN_DIR")
    features = FeatureStore(store)
    detector = KNNDetector()
    detector.fit(make_items(get_dataset("ucsd_ped2", data_root()).videos("train"), features), progress=False)
    return LoadedModel(detector=detector, source=f"k-NN fitted on {store} (train)", backend=backend), detector.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ped2-knn")
    parser.add_argument("--store", type=Path, default=Path("features/ped2"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/vadkit_bench/score_speed"))
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--no-video", action="store_true", help="skip the annotated mp4")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--backend", default="auto", help="runtime of the networks (auto: fastest that passes parity)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vadkit.inference import score_videos

    model, used = load_model(args.model, args.store, args.backend)
    model.ready()  # the runtime is chosen (and measured once per machine) before the clock starts
    folders = sorted(p for p in (data_root() / "testing" / "frames").iterdir() if p.is_dir())[: args.videos]
    start = time.perf_counter()
    results = score_videos(folders, model, args.out, progress=False, write_annotated=not args.no_video)
    seconds = time.perf_counter() - start
    frames = sum(r["num_frames"] for r in results)
    print(json.dumps({"frames_per_s": round(frames / seconds, 2),
                      "frames_per_s_per_video": round(sum(r["frames_per_s"] for r in results) / len(results), 2),
                      "frames": frames, "videos": len(results), "seconds": round(seconds, 1),
                      "annotated_video": not args.no_video, "model": used if used != "knn" else model.source,
                      "events": sum(len(r["events"]) for r in results), "threads": args.threads,
                      "backend": results[0]["model"].get("feature_backend", results[0]["model"]["backend"]),
                      "load_average": round(os.getloadavg()[0], 2), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
