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


# One model per detector family, for the streaming benchmarks: the bundled k-NN (snippet features) and tiny frame and
# object detectors fitted in seconds on the two halves of the demo clip. They measure speed, not accuracy (the clip
# is a test clip of Ped2: no number of these models says anything about detection).
FAMILIES = {
    "knn": "snippet features (bundled ped2-knn)",
    "sendec": "frames, sliding windows (tiny sEnDec fitted here)",
    "objects": "objects: motion boxes, velocity + HOG appearance (fitted here)",
    "state": "objects: motion-box cubes (tiny STATE fitted here)",
}
TINY = {
    "sendec": dict(clip_length=2, height=32, width=32, batch_size=4, epochs=1, bn_clips=4, dropout=0.0,
                   optimizer="adam", lr=1e-3, score_stride=1, threads=1, seed=0),
    "objects": dict(boxes="motion", appearance="hog", components=2, threads=1, seed=0),
    "state": dict(model="state_cpu", model_args=dict(hidden=[4, 8, 8], heads=2, layers=1, norm_groups=2),
                  boxes="motion", epochs=1, batch_size=8, stats_cubes=32, score_batch=16, threads=1, seed=0),
}


def family_model(family: str, folder: Path, backend: str = "auto"):
    """A loaded model of ``family`` (a key of :data:`FAMILIES`); fitted ones keep their caches under ``folder``."""
    from vadkit.detectors import VideoItem, build_detector
    from vadkit.inference import resolve_model
    from vadkit.io import open_video, write_video

    if family == "knn":
        return resolve_model("ped2-knn", backend=backend)
    frames = list(open_video(DEMO).frames())
    halves = []
    for i, part in enumerate((frames[: len(frames) // 2], frames[len(frames) // 2:])):
        path = Path(folder) / f"train_{i}.mp4"
        if not path.is_file():
            write_video(path, iter(part), fps=10.0, crf=18)
        halves.append(VideoItem(id=f"train/{i}", num_frames=len(part), path=path, fps=10.0))
    args = dict(TINY[family])
    if family in ("objects", "state"):
        args["cache_dir"] = str(Path(folder) / f"{family}-cache")
    detector = build_detector(family, **args).fit(halves, progress=False)
    return resolve_model(detector, backend=backend)
