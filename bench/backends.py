"""I3D and `vadkit score` speed on each installed runtime (PyTorch, ONNX Runtime, OpenVINO), side by side in one run.

Same clips (UCSD Ped2 test clips; the demo clip when the data is absent), same threads, fp32 everywhere. Measured per
backend:

- ``network_frames_per_s``: the I3D forward pass alone on snippets decoded beforehand (best of ``--repeats``
  interleaved rounds, so that a slow moment of the machine does not favour one runtime);
- ``extract_frames_per_s``: decode + resize + network, as `vadkit extract` runs;
- ``score_frames_per_s``: end-to-end `vadkit score` with the bundled model (decode, I3D, k-NN, smoothing, events,
  CSV/JSON, plot, annotated mp4, report);
- ``relative_error``: of the features against PyTorch's on the same clips.

Prints one JSON line, with each runtime's speed as a ratio to PyTorch's and the fastest one named.

    python bench/backends.py [--videos 3] [--threads 2] [--repeats 2] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

GFLOP_PER_FRAME = 3.47  # I3D at 224x224, FLOPs (not MACs)


def clips(count: int) -> list[Path]:
    root = Path(os.environ.get("VADKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "ucsd_ped2" / "testing" / "frames"
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.is_dir())[:count]
    return [Path(__file__).resolve().parents[1] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--no-score", action="store_true", help="skip the end-to-end `vadkit score` runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vadkit.features.backends import installed_backends, relative_error, versions
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, iter_snippets, to_network_input
    from vadkit.inference import resolve_model, score_videos
    from vadkit.io import open_video

    videos = clips(args.videos)
    backends = installed_backends()
    settings = ExtractionSettings()
    extractors = {b: SnippetExtractor(settings, batch_size=args.batch_size, backend=b) for b in backends}

    # snippets decoded once, batched as the extractor batches them
    batches, frames = [], 0
    for path in videos:
        video = open_video(path)
        snippets = list(iter_snippets(video, settings))
        frames += len(snippets) * settings.snippet_len
        video.close()
        for i in range(0, len(snippets), args.batch_size):
            chunk = np.stack(snippets[i:i + args.batch_size])  # (B, 1, T, S, S, C)
            batches.append(to_network_input(chunk.reshape(-1, *chunk.shape[2:]), "unit", "rgb"))

    rows: dict[str, dict] = {b: {"network_seconds": []} for b in backends}
    outputs: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for b in backends:  # warm-up
            extractors[b]._network(batches[0])
        for _ in range(args.repeats):
            for b in backends:
                start = time.perf_counter()
                out = [extractors[b]._network(x).numpy() for x in batches]
                rows[b]["network_seconds"].append(time.perf_counter() - start)
                outputs[b] = np.concatenate(out)

    for b in backends:
        row = rows[b]
        best = min(row.pop("network_seconds"))
        row["network_frames_per_s"] = round(frames / best, 2)
        row["network_gflop_per_s"] = round(frames * GFLOP_PER_FRAME / best, 1)
        row["relative_error"] = relative_error(outputs[b], outputs["torch"])
        start, n = time.perf_counter(), 0
        for path in videos:
            video = open_video(path)
            extractors[b].extract(video)
            n += video.num_frames
            video.close()
        row["extract_frames_per_s"] = round(n / (time.perf_counter() - start), 2)

    if not args.no_score:
        out_root = Path(tempfile.mkdtemp(prefix="vadkit-bench-backends-"))
        try:
            for b in backends:
                model = resolve_model("ped2-knn", backend=b)
                model._extractor = extractors[b]  # the same extractor: no second load or measurement
                model.ready()
                start = time.perf_counter()
                results = score_videos(videos, model, out_root / b, progress=False)
                n = sum(r["num_frames"] for r in results)
                rows[b]["score_frames_per_s"] = round(n / (time.perf_counter() - start), 2)
                rows[b]["score_events"] = sum(len(r["events"]) for r in results)
        finally:
            shutil.rmtree(out_root, ignore_errors=True)

    base = rows["torch"]
    for b, row in rows.items():
        for key in ("network_frames_per_s", "extract_frames_per_s", "score_frames_per_s"):
            if key in row:
                row[key.replace("frames_per_s", "ratio_to_torch")] = round(row[key] / base[key], 3)
    fastest = max(rows, key=lambda b: rows[b]["network_frames_per_s"])
    print(json.dumps({"backends": rows, "fastest": fastest,
                      "fastest_network_ratio_to_torch": rows[fastest]["network_ratio_to_torch"],
                      "frames": frames, "videos": len(videos), "threads": args.threads,
                      "batch_size": args.batch_size, "precision": "fp32", "versions": versions(),
                      "cpu": _cpu(), "load_average": round(os.getloadavg()[0], 2)}))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
