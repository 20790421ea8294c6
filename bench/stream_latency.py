"""Frame-to-event latency of `vadkit watch` for each detector family, on the demo clip played as a live 10 fps
stream (its own rate), looped.

Families (``--families``, see ``bench/helpers/stream_common.py``): ``knn`` (snippet features, the bundled model),
``sendec`` (a frame detector, scored in segments of ``--segment-s`` seconds), ``objects`` or ``state`` (object
detectors, in segments too). The frame and object models are tiny ones fitted here in seconds on the two halves of
the clip; their threshold is the median of their own smoothed scores of the clip (so that events open: this
measures delay, not detection).

Prints one JSON line with a row per family: the median time from the arrival of an event's first frame to its
``event_open`` line (``open_latency_s``), the median time from the arrival of the newest scored frame to that line
(``processing_s``: what the machine adds), and the inherent delay: an event opens when ``min_event`` smoothed frames
are above the threshold; the last of them is smoothed once ``radius = int(4 sigma + 0.5)`` more frames have been
scored, and a frame is scored when its 16-frame snippet is complete (snippet detectors) or when its segment ended
(frame and object detectors: up to ``segment_s`` seconds).

    python bench/stream_latency.py [--loops 2] [--families knn sendec objects] [--segment-s 4] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.stream_common import DEMO, FAMILIES, family_model  # noqa: E402


def median_threshold(model) -> float:
    """The median of the model's smoothed frame scores of the demo clip (`vadkit score`'s scores)."""
    from vadkit.inference.pipeline import frame_scores
    from vadkit.io import open_video
    from vadkit.scoring import gaussian_smooth

    with open_video(DEMO) as video:
        values = frame_scores(model, video, "demo")[0].values
    return float(np.median(gaussian_smooth(values, 3.0)))


def measure(family: str, model, loops: int, segment_s: float) -> dict:
    from vadkit.inference.watch import WatchOptions, watch
    from vadkit.io import open_video

    video = open_video(DEMO)
    fps, frames = video.fps, video.num_frames
    threshold = None if family == "knn" else median_threshold(model)
    options = WatchOptions(realtime=True, loop=True, write_clips=False, segment_s=segment_s, threshold=threshold)
    model.ready(options.batch_size)  # networks loaded (and compiled) before the clock starts
    if model.detector.inputs == "features":
        model.extractor(options.batch_size)
    messages: list[dict] = []
    stop = threading.Event()
    timer = threading.Timer(loops * frames / fps + 1.0, stop.set)
    with tempfile.TemporaryDirectory() as out:
        timer.start()
        start = time.perf_counter()
        summary = watch([str(DEMO)], model, out, options, stop=stop, emit=messages.append)
        seconds = time.perf_counter() - start
    opened = [m for m in messages if m["type"] == "event_open"]
    radius = int(4 * options.smoothing_sigma + 0.5)
    detector = model.detector
    if detector.inputs == "frames":
        wait = f"up to {segment_s:g} s (the segment) + its scoring"
        upto = segment_s
    else:
        snippet = detector.geometry.snippet_len
        wait, upto = f"up to {snippet - 1} frames (the snippet)", (snippet - 1) / fps
    inherent = {"frames": f"{options.min_event_frames - 1} + {radius}, then {wait}",
                "min_s": (options.min_event_frames - 1 + radius) / fps,
                "max_s": (options.min_event_frames - 1 + radius) / fps + upto}
    row = next(iter(summary.values()))
    return {
        "detector": detector.name, "what": FAMILIES[family],
        "open_latency_s": float(np.median([m["latency_s"] for m in opened])) if opened else None,
        "processing_s": float(np.median([m["processing_s"] for m in opened if "processing_s" in m])) if opened else None,
        "events_opened": len(opened), "events_closed": sum(m["type"] == "event" for m in messages),
        "threshold": "the model's" if threshold is None else "median of its own smoothed scores of the clip",
        "inherent_delay": inherent, "skipped_frames": row["skipped_frames"], "scored_frames": row["scored_frames"],
        "backend": model.info()["backend"], "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2, help="plays of the 18 s clip per family")
    parser.add_argument("--families", nargs="+", default=["knn", "sendec", "objects"], choices=sorted(FAMILIES))
    parser.add_argument("--segment-s", type=float, default=4.0, help="frame and object detectors' segment length")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    from vadkit.io import open_video

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for family in args.families:
            fit_start = time.perf_counter()
            model = family_model(family, Path(folder), args.backend)
            fitted_s = round(time.perf_counter() - fit_start, 1)
            rows[family] = {**measure(family, model, args.loops, args.segment_s), "prepared_s": fitted_s}
            print(json.dumps({family: rows[family]}), file=sys.stderr)
    print(json.dumps({"families": rows, "loops": args.loops, "fps": open_video(DEMO).fps, "segment_s": args.segment_s,
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
