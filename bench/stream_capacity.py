"""How many 25 fps streams one `vadkit watch` process keeps in real time on this machine, with the default model.

Each trial plays N copies of a 25 fps test stream (the demo clip re-timed to 25 fps, looped, paced in real time:
the same load as N cameras) for ``--seconds`` and counts the frames the skip policy dropped after a warm-up of a
few seconds. A trial passes when no frame was skipped after the warm-up and the scored frames kept up (at least
95 % of the frames that arrived were scored by the end). N grows until a trial fails.
Prints one JSON line: the largest N that passed for 360x240 and for 640x360, and each trial's figures.

    python bench/stream_capacity.py [--seconds 20] [--max-streams 8] [--backend auto]
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
from helpers.stream_common import clip_at  # noqa: E402

WARMUP_S = 5.0


def trial(model, clip: Path, streams: int, seconds: float) -> dict:
    from vadkit.inference.watch import WatchOptions, Watcher

    stop = threading.Event()
    with tempfile.TemporaryDirectory() as out:
        watcher = Watcher([str(clip)] * streams, model, out, WatchOptions(realtime=True, loop=True, write_clips=False),
                          stop=stop, emit=lambda m: None)
        skipped_at_warmup: list[int] = []

        def mark() -> None:
            skipped_at_warmup.extend(s.skipped for s in watcher.streams)

        threading.Timer(WARMUP_S, mark).start()
        threading.Timer(WARMUP_S + seconds, stop.set).start()
        start = time.perf_counter()
        summary = watcher.run()
        elapsed = time.perf_counter() - start
    rows = list(summary.values())
    skipped_after = sum(r["skipped_frames"] for r in rows) - sum(skipped_at_warmup or [0])
    arrived = sum(r["frames"] for r in rows)
    scored = sum(r["scored_frames"] for r in rows)
    ok = skipped_after == 0 and scored >= 0.95 * arrived
    return {"streams": streams, "passed": ok, "frames": arrived, "scored": scored, "skipped_after_warmup": skipped_after,
            "frames_per_s": round(arrived / elapsed, 1), "queue_max_seen": max(r["queue_max_seen"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-streams", type=int, default=8)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    from vadkit.inference import resolve_model

    model = resolve_model("ped2-knn", backend=args.backend)
    model.ready(8)
    result: dict = {"trials": {}}
    with tempfile.TemporaryDirectory() as folder:
        for label, size in (("360x240", None), ("640x360", (640, 360))):
            clip = clip_at(Path(folder), 25.0, size)
            best, trials = 0, []
            for n in range(1, args.max_streams + 1):
                row = trial(model, clip, n, args.seconds)
                trials.append(row)
                print(json.dumps({"size": label, **row}), file=sys.stderr)
                if not row["passed"]:
                    break
                best = n
            result[f"streams_25fps_{label}"] = best
            result["trials"][label] = trials
    result.update(backend=model.info()["backend"], seconds_per_trial=args.seconds, warmup_s=WARMUP_S,
                  cpu_threads=os.cpu_count(), load_average=round(os.getloadavg()[0], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
