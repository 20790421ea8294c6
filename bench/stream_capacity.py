"""How many 25 fps streams one `vadkit watch` process keeps in real time on this machine, for each detector family.

Each trial plays N copies of a 25 fps test stream (the demo clip re-timed to 25 fps, looped, paced in real time:
the same load as N cameras) for ``--seconds`` and counts the frames the skip policy dropped after a warm-up of a
few seconds. A trial passes when no frame was skipped after the warm-up and the scored frames kept up (at least
95 % of the frames that arrived were scored by the end). N grows until a trial fails.
Families (``--families``, see ``bench/helpers/stream_common.py``): ``knn`` (snippet features, the bundled model),
``sendec`` (frames, in segments of ``--segment-s`` seconds) and ``objects`` or ``state`` (object detectors, in
segments); the frame and object models are tiny ones fitted here in seconds (speed, not accuracy).
Prints one JSON line: per family, the largest N that passed for 360x240 and for 640x360, and each trial's figures.

    python bench/stream_capacity.py [--seconds 20] [--max-streams 8] [--families knn sendec objects]
                                    [--sizes 360x240 640x360] [--segment-s 4] [--backend auto]
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
from helpers.stream_common import FAMILIES, clip_at, family_model  # noqa: E402

WARMUP_S = 5.0


def trial(model, clip: Path, streams: int, seconds: float, segment_s: float) -> dict:
    from vadkit.inference.watch import WatchOptions, Watcher

    stop = threading.Event()
    with tempfile.TemporaryDirectory() as out:
        watcher = Watcher([str(clip)] * streams, model, out, WatchOptions(realtime=True, loop=True, write_clips=False,
                                                                           segment_s=segment_s),
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


SIZES = {"360x240": None, "640x360": (640, 360)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-streams", type=int, default=8)
    parser.add_argument("--families", nargs="+", default=["knn", "sendec", "objects"], choices=sorted(FAMILIES))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--segment-s", type=float, default=4.0, help="frame and object detectors' segment length")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    result: dict = {"families": {}}
    with tempfile.TemporaryDirectory() as folder:
        for family in args.families:
            model = family_model(family, Path(folder), args.backend)
            model.ready(8)
            row: dict = {"detector": model.detector.name, "what": FAMILIES[family], "backend": model.info()["backend"],
                         "trials": {}}
            for label in args.sizes:
                clip = clip_at(Path(folder), 25.0, SIZES[label])
                best, trials = 0, []
                for n in range(1, args.max_streams + 1):
                    found = trial(model, clip, n, args.seconds, args.segment_s)
                    trials.append(found)
                    print(json.dumps({"family": family, "size": label, **found}), file=sys.stderr)
                    if not found["passed"]:
                        break
                    best = n
                row[f"streams_25fps_{label}"] = best
                row["trials"][label] = trials
            result["families"][family] = row
    result.update(seconds_per_trial=args.seconds, warmup_s=WARMUP_S, segment_s=args.segment_s,
                  cpu_threads=os.cpu_count(), load_average=round(os.getloadavg()[0], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
