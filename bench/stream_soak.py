"""A bounded soak of `vadkit watch`: one 25 fps stream (the demo clip re-timed to 25 fps, looped, in real time) for
``--minutes`` (10 by default), with the default model.

Prints one JSON line: resident memory after the first minute and at the end (and the growth between), the largest
snippet queue seen against its bound, skipped frames, the loops played and the events reported (the clip holds one
anomaly, so every loop should give one event).

    python bench/stream_soak.py [--minutes 10] [--backend auto]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.stream_common import clip_at, rss_mb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    from vadkit.inference import resolve_model
    from vadkit.inference.watch import WatchOptions, Watcher
    from vadkit.io import open_video

    model = resolve_model("ped2-knn", backend=args.backend)
    with tempfile.TemporaryDirectory() as folder:
        clip = clip_at(Path(folder), 25.0)
        video = open_video(clip)
        loop_s = video.num_frames / video.fps
        stop = threading.Event()
        messages: list[dict] = []
        memory: dict[str, float] = {}
        watcher = Watcher([str(clip)], model, Path(folder) / "out", WatchOptions(realtime=True, loop=True), stop=stop,
                          emit=messages.append)

        def sample() -> None:
            start = time.monotonic()
            while not stop.wait(5.0):
                minute = (time.monotonic() - start) / 60
                memory.setdefault("first_minute_mb", rss_mb()) if minute >= 1 else None
                memory["last_mb"] = rss_mb()
                memory["peak_mb"] = max(memory.get("peak_mb", 0.0), memory["last_mb"])

        threading.Thread(target=sample, daemon=True).start()
        threading.Timer(args.minutes * 60, stop.set).start()
        start = time.perf_counter()
        summary = next(iter(watcher.run().values()))
        seconds = time.perf_counter() - start
        clips = len(list((Path(folder) / "out").rglob("events/*.mp4")))
    closed = [m for m in messages if m["type"] == "event"]
    loops = summary["frames"] / video.num_frames
    print(json.dumps({
        "minutes": round(seconds / 60, 2), "frames": summary["frames"], "scored_frames": summary["scored_frames"],
        "skipped_frames": summary["skipped_frames"], "queue_max_seen": summary["queue_max_seen"],
        "queue_bound": summary["queue_bound"], "loops": round(loops, 2), "events": len(closed),
        "complete_loops": int(loops), "event_clips": clips,
        "rss_first_minute_mb": round(memory.get("first_minute_mb", float("nan")), 1),
        "rss_end_mb": round(memory.get("last_mb", float("nan")), 1), "rss_peak_mb": round(memory.get("peak_mb", 0), 1),
        "rss_growth_after_first_minute_mb": round(memory.get("last_mb", 0) - memory.get("first_minute_mb", 0), 1),
        "loop_s": loop_s, "backend": model.info()["backend"], "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
