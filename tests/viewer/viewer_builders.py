"""Builders for the viewer tests: scored-video folders and evaluation runs in the real on-disk formats.

The scored-video folder follows the `vadkit score` contract (result.json written last, annotated.mp4 a real H.264
mp4 from ``vadkit.io.write_video``); the run folder follows ``vadkit.engine.run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vadkit.io import open_video, write_video

FPS = 25.0


def make_frames(num_frames: int = 100, size: tuple[int, int] = (160, 120),
                abnormal: tuple[int, int] = (50, 74)) -> np.ndarray:
    """``(N, H, W, 3)`` uint8: a white bar sweeping left to right, a red square in the abnormal frames."""
    width, height = size
    frames = np.full((num_frames, height, width, 3), 40, np.uint8)  # (N, H, W, 3)
    for i in range(num_frames):
        x = int(i / max(num_frames - 1, 1) * (width - 8))
        frames[i, :, x:x + 8] = 255
        if abnormal[0] <= i <= abnormal[1]:
            frames[i, 40:80, 60:100] = (230, 20, 20)
    return frames


def smooth(scores: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(scores, radius, mode="edge"), kernel, mode="valid")


def events_from(smoothed: np.ndarray, threshold: float, fps: float) -> list[dict]:
    events, start = [], None
    above = list(smoothed >= threshold) + [False]
    for i, flag in enumerate(above):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            end = i - 1
            peak = start + int(np.argmax(smoothed[start:end + 1]))
            events.append({"start_frame": start, "end_frame": end, "start_s": start / fps, "end_s": (end + 1) / fps,
                           "peak_score": float(smoothed[peak]), "peak_frame": peak,
                           "thumbnail": f"thumbs/event-{len(events)}.jpg"})
            start = None
    return events


def write_scored_folder(folder: Path, frames: np.ndarray, scores: np.ndarray, *, fps: float = FPS,
                        name: str | None = None, threshold: float = 0.5, video_path: str = "/data/input.mp4") -> dict:
    """A complete `vadkit score` output folder; returns the result dict (result.json is written last)."""
    folder.mkdir(parents=True, exist_ok=True)
    smoothed = smooth(scores)
    events = events_from(smoothed, threshold, fps)
    write_video(folder / "annotated.mp4", frames, fps=fps)
    (folder / "thumbs").mkdir(exist_ok=True)
    for i, event in enumerate(events):
        cv2.imwrite(str(folder / "thumbs" / f"event-{i}.jpg"), frames[event["peak_frame"]][..., ::-1])
    rows = ["frame,time_s,score,smoothed,abnormal"]
    rows += [f"{i},{i / fps:.4f},{s:.6f},{m:.6f},{int(m >= threshold)}"
             for i, (s, m) in enumerate(zip(scores, smoothed))]
    (folder / "scores.csv").write_text("\n".join(rows) + "\n")
    cv2.imwrite(str(folder / "plot.png"), np.full((60, 200, 3), 255, np.uint8))
    (folder / "report.html").write_text("<!doctype html><title>report</title><p>report</p>")
    num_frames, height, width = frames.shape[:3]
    result = {
        "format": 1, "video": video_path, "name": name or folder.name, "num_frames": num_frames, "fps": fps,
        "width": width, "height": height, "duration_s": num_frames / fps,
        "model": {"name": "toy", "source": "tests", "method": "brightness", "trained_on": "nothing"},
        "threshold": threshold, "smoothing_sigma": 3.0, "min_event_frames": 8,
        "scores": [float(s) for s in scores], "smoothed": [float(s) for s in smoothed], "events": events,
        "files": {"csv": "scores.csv", "plot": "plot.png", "video": "annotated.mp4", "report": "report.html"},
        "protocol": {"method": "brightness"}, "seconds": 0.1, "frames_per_s": num_frames / 0.1,
    }
    (folder / "result.json").write_text(json.dumps(result))
    return result


def toy_scores(num_frames: int = 100, abnormal: tuple[int, int] = (50, 74)) -> np.ndarray:
    rng = np.random.default_rng(0)
    scores = 0.1 + 0.05 * rng.random(num_frames)
    scores[abnormal[0]:abnormal[1] + 1] = 0.9
    return scores


def write_run_folder(folder: Path, micro_auc: float = 0.8765) -> dict:
    """An evaluation run folder as `vadkit train` writes it (metrics.json with the card, roc.png, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    protocol = {"dataset": "ucsd_ped2", "method": "arnet: arnet_single", "split": "official", "seed": 0}
    metrics = {"micro_auc": micro_auc, "macro_auc": 0.81, "ap": 0.55, "eer": 0.21, "far_all": 0.05,
               "num_frames": 672, "num_videos": 14, "threshold": 0.5, "protocol": protocol}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "protocol.json").write_text(json.dumps(protocol))
    (folder / "config.yaml").write_text("detector: arnet\nseed: 0\n")
    roc = np.full((120, 160, 3), 255, np.uint8)
    cv2.line(roc, (0, 119), (159, 0), (0, 0, 255), 2)
    cv2.imwrite(str(folder / "roc.png"), roc)
    (folder / "model.pt").write_bytes(b"not served")
    (folder / "scores").mkdir(exist_ok=True)
    np.save(folder / "scores" / "01.npy", np.zeros(10))
    return metrics


def brightness_scorer(video: Path, detector, out_dir: Path, progress) -> Path:
    """A stand-in for ``vadkit.inference.score_video`` (same call, same folder format): mean brightness as score."""
    with open_video(video) as source:
        frames = []
        for i, frame in enumerate(source):
            frames.append(frame)
            progress(i + 1, source.num_frames)
        fps = source.fps
    frames = np.stack(frames)  # (N, H, W, 3)
    scores = frames.astype(np.float64).mean(axis=(1, 2, 3)) / 255.0  # (N,)
    folder = out_dir / video.stem
    write_scored_folder(folder, frames, scores, fps=fps, name=video.stem, video_path=str(video),
                        threshold=float(np.median(scores)))
    return folder


class LiveServer:
    """A uvicorn server on a free loopback port, in a daemon thread (``with LiveServer(app) as url: ...``)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = None

    def __enter__(self) -> str:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer server did not start within 20 s")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
