"""AR-Net (every variant) and AED / AED_T on UCSD Ped2, LAD2000 re-split, over several split seeds.

Uses vadkit's own single-crop RGB I3D features (extracted into ``features/ped2`` when missing). Prints one JSON
line per method with mean ± std of the frame-level numbers and the mean training seconds, then a summary line.

    python bench/weak_ped2.py [--seeds 5] [--methods arnet_single,aed_t,aed_t_cv,...] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "arnet_single": ("configs/arnet_ped2.yaml", "arnet_single"),
    "arnet_mean": ("configs/arnet_ped2.yaml", "arnet_mean"),
    "arnet_sequence": ("configs/arnet_ped2.yaml", "arnet_sequence"),
    "arnet_concat": ("configs/arnet_ped2.yaml", "arnet_concat"),
    "arnet_lstm": ("configs/arnet_ped2.yaml", "arnet_lstm"),
    "arnet_bas": ("configs/arnet_ped2.yaml", "arnet_bas"),
    "aed": ("configs/aed_ped2.yaml", "aed"),
    "aed_t": ("configs/aed_ped2.yaml", "aed_t"),
    "aed_t_cv": ("configs/aed_ped2_cv.yaml", "aed_t"),  # steps chosen by 3-fold CV inside the training split
}


def main() -> None:
    from vadkit.engine.repeat import repeat_over_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=None, help="override the configs' training steps")
    parser.add_argument("--output", default="runs/bench-weak")
    parser.add_argument("--set", action="append", default=[], help="extra config override, e.g. detector_args.lr=3e-4")
    args = parser.parse_args()
    os.chdir(ROOT)
    data = os.environ.get("VADKIT_DATA")
    results = {}
    for method in args.methods.split(","):
        config, model = METHODS[method]
        overrides = [f"detector_args.model={model}", f"output={args.output}", f"name={method}-ped2"]
        if data:
            overrides.append(f"data.root={Path(data) / 'ucsd_ped2'}")
        if args.steps:
            overrides.append(f"detector_args.steps={args.steps}")
        summary = repeat_over_seeds(config, args.seeds, progress=False, overrides=overrides + args.set)
        metrics = [json.loads((Path(r) / "metrics.json").read_text()) for r in summary["runs"]]
        train_s = [m["train_seconds"] for m in metrics]
        row = {"method": method, "config": config, "seeds": args.seeds, "overrides": args.set + ([f"steps={args.steps}"] if args.steps else []),
               **{f"{k}_mean": round(v["mean"], 4) for k, v in summary["summary"].items()},
               **{f"{k}_std": round(v["std"], 4) for k, v in summary["summary"].items()},
               "train_s_mean": round(sum(train_s) / len(train_s), 1)}
        if "selected_steps" in metrics[0]:  # schedule chosen inside the training split: its cost and choices
            row["selected_steps"] = [m["selected_steps"] for m in metrics]
            row["selection_s_mean"] = round(sum(m["selection_seconds"] for m in metrics) / len(metrics), 1)
        results[method] = row
        print(json.dumps(row), flush=True)
    print(json.dumps({"summary": {m: (r["micro_auc_mean"], r["micro_auc_std"]) for m, r in results.items()}}))


if __name__ == "__main__":
    main()
