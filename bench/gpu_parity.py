"""I3D features of the demo clip on the device at each precision against the CPU's fp32 features.

The reference is the CPU at fp32 on torch (the store's reference); the device runs fp32 (TF32 off: the default, must
stay within 1e-4 relative), tf32, bf16 and fp16. Weights: the Kinetics-400 ones when installed, else a seeded random
I3D (the same network and arithmetic; ``--weights random`` forces it). Prints one JSON line with, per precision, the
largest per-snippet relative error ``||gpu - cpu|| / ||cpu||`` and whether it is within the bound.

    python bench/gpu_parity.py [--device cuda] [--weights auto|random|kinetics]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"
BOUND = 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--weights", default="auto", choices=("auto", "random", "kinetics"))
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gpu_extract import weights_for

    from vadkit.device import resolve_device
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor
    from vadkit.io import open_video

    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="vadkit-gpu-parity-"))
    try:
        weights, note = weights_for(args.weights, work)

        def features(precision: str, where) -> np.ndarray:
            extractor = SnippetExtractor(ExtractionSettings(precision=precision), weights=weights,
                                         batch_size=args.batch_size, backend="torch", device=where)
            with open_video(DEMO) as video:
                return extractor.extract(video)

        reference = features("fp32", "cpu")
        rows = {}
        precisions = ("fp32", "tf32", "bf16", "fp16") if device.type == "cuda" else ("fp32",)  # CPU: a self-check
        for precision in precisions:
            found = features(precision, device)
            rel = np.linalg.norm(found - reference, axis=1) / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
            rows[precision] = {"max_relative_error": float(rel.max()), "mean_relative_error": float(rel.mean()),
                               "within_1e-4": bool(rel.max() < BOUND)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"bench": "gpu_parity", "device": str(device), "weights": note, "snippets": int(len(reference)),
                      "reference": "cpu fp32 torch", "precisions": rows,
                      "default_ok": rows["fp32"]["within_1e-4"], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
