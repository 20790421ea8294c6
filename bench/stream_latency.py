"""Frame-to-event latency of `vadkit watch` with the default model, on the demo clip played as a live 10 fps
stream (its own rate), looped.

Prints one JSON line: the median time from the arrival of an event's first frame to its ``event_open`` line
(``open_latency_s``), the median time from the arrival of the frame that completed the deciding snippet to that line
(``processing_s``: what the machine adds), and the detector's inherent delay: an event opens when ``min_event``
smoothed frames are above the threshold; the last of them is smoothed once ``radius = int(4 sigma + 0.5)`` more
frames have been scored, and a frame is scored when its 16-frame snippet is complete.

    python bench/stream_latency.py [--loops 3] [--backend auto]
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
from helpers.stream_common import DEMO  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=3, help="plays of the 18 s clip")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    from vadkit.inference import resolve_model
    from vadkit.inference.watch import WatchOptions, watch
    from vadkit.io import open_video

    video = open_video(DEMO)
    fps, frames = video.fps, video.num_frames
    model = resolve_model("ped2-knn", backend=args.backend)
    options = WatchOptions(realtime=True, loop=True, write_clips=False)
    messages: list[dict] = []
    stop = threading.Event()
    timer = threading.Timer(args.loops * frames / fps + 1.0, stop.set)
    with tempfile.TemporaryDirectory() as out:
        timer.start()
        start = time.perf_counter()
        summary = watch([str(DEMO)], model, out, options, stop=stop, emit=messages.append)
        seconds = time.perf_counter() - start
    opened = [m for m in messages if m["type"] == "event_open"]
    radius = int(4 * options.smoothing_sigma + 0.5)
    snippet = model.detector.geometry.snippet_len
    inherent = {"frames": f"{options.min_event_frames - 1} + {radius} + up to {snippet - 1}",
                "min_s": (options.min_event_frames - 1 + radius) / fps,
                "max_s": (options.min_event_frames - 1 + radius + snippet - 1) / fps}
    row = next(iter(summary.values()))
    print(json.dumps({
        "open_latency_s": float(np.median([m["latency_s"] for m in opened])) if opened else None,
        "processing_s": float(np.median([m["processing_s"] for m in opened if "processing_s" in m])) if opened else None,
        "events_opened": len(opened), "events_closed": sum(m["type"] == "event" for m in messages),
        "loops": args.loops, "fps": fps, "inherent_delay": inherent, "skipped_frames": row["skipped_frames"],
        "backend": model.info()["backend"], "seconds": round(seconds, 1), "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
