"""End-to-end scoring speed of the objects detector with YOLOX-Nano boxes, by input scale and ``detect_every``: one
JSON line.

    python bench/objects_speed.py [--model ped2-objects] [--clips 3] [--settings 2.0:1,2.0:2,1.5:1,1.0:1]

Each setting scores the first ``--clips`` UCSD Ped2 test clips the way ``vadkit score --no-video`` does (decoding,
YOLOX-Nano, fallback boxes, DIS flow, attributes, densities, the result files) with empty caches, on the threads the
model names (two). The model is the one fitted at scale 2.0 / every frame; other settings change only how its boxes
are found at scoring time, so this measures speed, not accuracy (the accuracy of each setting, fitted with it, comes
from ``bench/objects_ped2.py --boxes yolox --set detector_args.detector_options.scale=S --set
detector_args.detect_every=N``). Keys: ``settings`` (one entry per setting: ``scale``, ``detect_every``,
``frames``, ``seconds``, ``frames_per_s``), ``model``, ``clips``, ``load`` (the 1-minute load average before and
after: a loaded machine gives a floor, not the rate).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from helpers.data import data_root  # noqa: E402


def parse_settings(text: str) -> list[tuple[float, int]]:
    """``"2.0:1,1.5:2"`` -> ``[(2.0, 1), (1.5, 2)]`` (input scale : detect_every)."""
    out = []
    for part in text.split(","):
        scale, _, every = part.partition(":")
        out.append((float(scale), int(every or 1)))
    return out


def score_setting(model: str, clips: list[Path], scale: float, every: int) -> dict:
    from vadkit.inference import resolve_model, score_video

    detector = resolve_model(model).detector  # loaded afresh: no YOLOX session or cache from another setting
    detector.args["detector_options"] = {**detector.args["detector_options"], "scale": scale}
    detector.args["detect_every"] = every
    detector.to_device("cpu")  # builds the box source again from the changed arguments
    loaded = resolve_model(detector, backend="auto")
    frames, start = 0, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vadkit-speed-") as out:
        for clip in clips:
            result = score_video(clip, loaded, Path(out) / clip.name, write_annotated=False)
            frames += result["num_frames"]
    seconds = time.perf_counter() - start
    return {"scale": scale, "detect_every": every, "frames": frames, "seconds": round(seconds, 2),
            "frames_per_s": round(frames / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ped2-objects", help="a bundled name, run folder or model file")
    parser.add_argument("--clips", type=int, default=3, help="how many Ped2 test clips (from 01)")
    parser.add_argument("--settings", default="2.0:1,2.0:2,1.5:1,1.0:1", help="scale:detect_every, comma-separated")
    args = parser.parse_args()

    clips = sorted((data_root() / "ucsd_ped2" / "testing" / "frames").iterdir())[:args.clips]
    load_before = os.getloadavg()[0]
    rows = [score_setting(args.model, clips, scale, every) for scale, every in parse_settings(args.settings)]
    print(json.dumps({"settings": rows, "model": args.model, "clips": [c.name for c in clips],
                      "load": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
