"""Speed of single-crop RGB I3D extraction on the UCSD Ped2 test set: decode + resize + network.

Prints one JSON line: ``frames_per_s`` (fp32, PyTorch), ``frames_per_s_bf16`` (bfloat16 autocast), the relative
error of the bf16 features against fp32, the batch size and the threads used. On a CPU without native bf16
(AVX-512 BF16 or AMX) the bf16 run is skipped and ``bf16_skipped`` says why: PyTorch would emulate it for a quarter
of an hour. Other runtimes: ``bench/backends.py``.

    python bench/extract_speed.py [--videos N] [--batch-size 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


def data_root() -> Path:
    root = Path(os.environ.get("VADKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "ucsd_ped2" / "testing" / "frames"
    if not folder.is_dir():
        sys.exit(f"UCSD Ped2 test frames not found at {folder}: set VADKIT_DATA")
    return folder


def run(precision: str, folders: list[Path], batch_size: int) -> tuple[float, list[np.ndarray]]:
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor
    from vadkit.io import open_video

    extractor = SnippetExtractor(ExtractionSettings(precision=precision), batch_size=batch_size, backend="torch")
    warm = open_video(folders[0])
    extractor.extract(warm)  # warm-up (allocations, oneDNN kernels)
    frames, outputs = 0, []
    start = time.perf_counter()
    for folder in folders:
        video = open_video(folder)
        outputs.append(extractor.extract(video))
        frames += video.num_frames
    return frames / (time.perf_counter() - start), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12, help="how many Ped2 test videos (12 = all, 2010 frames)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folders = sorted(p for p in data_root().iterdir() if p.is_dir())[: args.videos]
    from vadkit.features.backends import native_bf16

    fp32, feats32 = run("fp32", folders, args.batch_size)
    bf16 = rel = skipped = None
    if native_bf16():
        bf16, feats16 = run("bf16", folders, args.batch_size)
        a, b = np.concatenate(feats16), np.concatenate(feats32)
        rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        bf16 = round(bf16, 2)
    else:
        skipped = "this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag): PyTorch would emulate it, very slowly"
        print(f"bf16 skipped: {skipped}", file=sys.stderr)
    frames = sum(len(f) for f in feats32) * 16
    print(json.dumps({"frames_per_s": round(fp32, 2), "frames_per_s_bf16": bf16, "bf16_skipped": skipped,
                      "bf16_relative_error": rel, "batch_size": args.batch_size, "threads": args.threads,
                      "videos": len(folders), "snippet_frames": frames, "precision": "fp32 (bf16 reported beside)",
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
