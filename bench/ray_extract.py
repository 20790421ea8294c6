"""Throughput of I3D extraction on Ray against one local process, on the same clips with the same torch threads.

Three runs over the same clips (4 UCSD Ped2 training clips, 600 frames; synthetic 240x360 clips when the data is
absent): local :func:`extract_videos` in this process, :func:`extract_videos_ray` with 1 worker, and with 2 workers,
each worker on ``--threads`` torch threads, on a local Ray cluster of ``--cpus`` CPUs (started once, before the Ray
runs). Prints one JSON line: frames/s of each run (from the first worker ready to the last video written, as the
local figure excludes loading the network), the wall time of each Ray run including its workers' start, the ratios
to local, and whether the Ray features are bit-identical to the local ones.

    python bench/ray_extract.py [--clips 4] [--threads 1] [--cpus 2] [--backend torch]

On a machine of 2 cores, 2 workers of 1 thread each can at best double one process of 1 thread; they cannot show
what a cluster of several machines gives (no network transfer, one memory bus, the decoding threads share the
same cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def clips(count: int, folder: Path) -> tuple[list[tuple[str, Path]], str]:
    root = Path(os.environ.get("VADKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ped2 = root / "ucsd_ped2" / "training" / "frames"
    if ped2.is_dir():
        chosen = sorted(p for p in ped2.iterdir() if p.is_dir())[:count]
        return [(f"ped2/{p.name}", p) for p in chosen], f"UCSD Ped2 training {chosen[0].name}-{chosen[-1].name}"
    from vadkit.io import write_video

    made = []
    rng = np.random.default_rng(0)
    for k in range(count):
        background = rng.integers(60, 120, (240, 360, 3), dtype=np.uint8)
        frames = []
        for i in range(150):
            frame = background.copy()
            frame[100:140, (4 * i + 30 * k) % 320:(4 * i + 30 * k) % 320 + 40] = (220, 50, 50)
            frames.append(frame)
        made.append((f"synthetic/{k}", write_video(folder / f"clip{k}.mp4", frames, fps=25)))
    return made, "synthetic 240x360, 150 frames each"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the local process and of each worker")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()

    from vadkit.inference.cluster import RayNotInstalledError, extract_videos_ray, ray_cluster, require_ray

    try:
        require_ray(None)
    except RayNotInstalledError as err:
        sys.exit(str(err))
    import torch

    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="vadkit-ray-bench-") as tmp:
        tmp = Path(tmp)
        videos, source = clips(args.clips, tmp / "clips")
        settings = ExtractionSettings()
        extractor = SnippetExtractor(settings, batch_size=args.batch_size, threads=args.threads, backend=args.backend)
        extract_videos(videos[:1], tmp / "warm", extractor, progress=False)  # warm-up (allocations, kernels)
        local = extract_videos(videos, tmp / "local", extractor, progress=False)
        frames = local["frames"]
        out.update(data=source, clips=len(videos), frames=frames, threads_per_worker=args.threads,
                   backend=extractor.backend if hasattr(extractor, "backend") else "torch", cpus=args.cpus,
                   torch=torch.__version__, local_frames_per_s=round(frames / local["seconds"], 2))
        reference = FeatureStore(tmp / "local")
        identical = True
        with ray_cluster(None, num_cpus=args.cpus) as ray:
            out["ray"] = ray.__version__
            for workers in (1, 2):
                start = time.perf_counter()
                report = extract_videos_ray(videos, tmp / f"ray{workers}", settings, batch_size=args.batch_size,
                                            threads=args.threads, num_workers=workers, progress=False,
                                            backend=args.backend)
                wall = time.perf_counter() - start
                if report["failed"] or report["frames"] != frames:
                    sys.exit(f"Ray run with {workers} worker(s) failed: {report['failed']}")
                store = FeatureStore(tmp / f"ray{workers}")
                identical &= all(np.array_equal(store.load(v), reference.load(v)) for v, _ in videos)
                rate = frames / report["seconds"]
                key = f"ray_{workers}_worker{'s' if workers > 1 else ''}"
                out[f"{key}_frames_per_s"] = round(rate, 2)
                out[f"{key}_wall_s"] = round(wall, 2)
                out[f"{key}_ratio_to_local"] = round(rate / out["local_frames_per_s"], 3)
        out["features_identical_to_local"] = bool(identical)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
