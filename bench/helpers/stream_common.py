"""Helpers of the streaming benchmarks (imported by bench/stream_*.py; not a benchmark: bench/helpers/ holds code
the benchmarks share, and bench/*.py are the benchmarks, each printing one JSON line): 25 fps
test streams made from the demo clip, resident memory."""

from __future__ import annotations

from pathlib import Path

import cv2

DEMO = Path(__file__).resolve().parents[2] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"


def clip_at(folder: Path, fps: float = 25.0, size: tuple[int, int] | None = None) -> Path:
    """The demo clip (UCSD Ped2 test 004, 180 frames, 360x240) re-timed to ``fps`` and resized to ``size``."""
    from vadkit.io import open_video, write_video

    name = f"demo_{int(fps)}fps_{size[0]}x{size[1]}.mp4" if size else f"demo_{int(fps)}fps.mp4"
    target = Path(folder) / name
    if not target.is_file():
        video = open_video(DEMO)
        frames = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) if size else f for f in video.frames())
        write_video(target, frames, fps=fps, crf=18)
    return target


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
