"""Score videos with an exported vadkit model and ONNX Runtime alone (no PyTorch, no vadkit).

``vadkit export MODEL --format onnx --out DIR`` copies this file into DIR as ``score.py``. On a machine with
``pip install numpy onnxruntime av opencv-python-headless``::

    python DIR/score.py VIDEO [VIDEO ...] [--json]

prints, per video, the events and (with ``--json``) the per-frame scores, computed as ``vadkit score`` computes them:
PyAV decoding to RGB, the export's preprocessing (resize, crops, input range), the exported I3D feature network,
the exported detector, the snippet-to-frame mapping, Gaussian smoothing and the model's own fitted threshold, all
read from ``vadkit-export.json``. Detectors that score snippet features (k-NN, AR-Net) are supported here; the others
(AED windows, sEnDec and STATE on frames and objects) are exported for use with ``vadkit score --backend``.
One difference: ``vadkit score`` first shrinks frames larger than 1280 pixels at decoding; this script does not.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

EXPORT_FILE = "vadkit-export.json"
SUPPORTED = ("snippets",)


class Exported:
    """An exported model folder: its description, the feature network and the detector network."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.spec = json.loads((self.folder / EXPORT_FILE).read_text())
        if self.spec.get("format") != "vadkit-export":
            raise ValueError(f"{self.folder / EXPORT_FILE} is not a vadkit export")
        kind = self.spec["scoring"]["kind"]
        if kind not in SUPPORTED:
            raise ValueError(f"the {self.spec['detector']} detector scores by {kind!r}, which this script does not do; "
                             f"use `vadkit score --model ... --backend onnxruntime`")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3

        def session(name: str):
            return ort.InferenceSession(str(self.folder / self.spec["networks"][name]["onnx"]), options,
                                        providers=["CPUExecutionProvider"])

        self.features = session("features")
        self.detector = session("detector")

    # -- preprocessing ---------------------------------------------------------------------------------------------
    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        p = self.spec["preprocessing"]
        side = p["resize_size"]
        if p["resize"] == "squash":
            return side, side
        scale = side / min(width, height)
        return max(side, round(width * scale)), max(side, round(height * scale))

    def crops(self, snippet: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` -> ``(crops, T, S, S, C)``: centre, or four corners and centre (and their flips)."""
        p = self.spec["preprocessing"]
        size, count = p["crop_size"], p["crops"]
        _, h, w, _ = snippet.shape
        centre = ((h - size) // 2, (w - size) // 2)
        corners = [centre] if count == 1 else [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), centre]
        views = [snippet[:, y:y + size, x:x + size] for y, x in corners]
        if count == 10:
            views += [v[:, :, ::-1] for v in views]
        return np.stack(views)

    def network_input(self, batch: np.ndarray) -> np.ndarray:
        """``(B, T, S, S, C)`` uint8 -> ``(B, C, T, S, S)`` float32."""
        x = batch.astype(np.float32)
        if self.spec["preprocessing"]["input_range"] == "unit":
            x = x / np.float32(127.5) - np.float32(1.0)
        return np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))

    # -- scoring -----------------------------------------------------------------------------------------------------
    def snippet_features(self, frames, num_frames: int, width: int, height: int) -> np.ndarray:
        import cv2

        p = self.spec["preprocessing"]
        length, stride, batch_size = p["snippet_len"], p["stride"], 4
        size = self.frame_size(width, height)
        total = max(1, (num_frames - length) // stride + 1) if num_frames >= length else 1
        window, batch, out = [], [], []
        emitted, index, next_start = 0, 0, 0
        for frame in frames:
            window.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
            window = window[-length:]
            index += 1
            if emitted < total and len(window) == length and index - length == next_start:
                batch.append(self.crops(np.stack(window)))
                emitted += 1
                next_start += stride
                if len(batch) == batch_size:
                    out.append(self._run_features(batch))
                    batch = []
        if emitted < total and window:  # shorter than one snippet: repeat the last frame
            batch.append(self.crops(np.stack(window + [window[-1]] * (length - len(window)))))
        if batch:
            out.append(self._run_features(batch))
        features = np.concatenate(out)  # (S, crops, F)
        if self.spec["scoring"]["crops"] == "first":
            return features[:, 0]
        return features.mean(axis=1)  # (S, crops, F) -> (S, F)

    def _run_features(self, batch: list[np.ndarray]) -> np.ndarray:
        stacked = np.stack(batch)  # (B, crops, T, S, S, C)
        b, c = stacked.shape[:2]
        x = self.network_input(stacked.reshape(b * c, *stacked.shape[2:]))  # (B*crops, C, T, S, S)
        return self.features.run(None, {self.features.get_inputs()[0].name: x})[0].reshape(b, c, -1)

    def snippet_scores(self, features: np.ndarray) -> np.ndarray:
        layout = self.spec["networks"]["detector"]["layout"]
        x = features.astype(np.float32)[None] if layout == "batch-of-one" else features.astype(np.float32)
        out = self.detector.run(None, {self.detector.get_inputs()[0].name: x})[0]
        return np.asarray(out, np.float64).reshape(-1)

    def frame_scores(self, snippet_scores: np.ndarray, num_frames: int) -> np.ndarray:
        p, tail = self.spec["preprocessing"], self.spec["scoring"]["tail"]
        length, stride = p["snippet_len"], p["stride"]
        frames = np.full(num_frames, np.nan)
        total, count = np.zeros(num_frames), np.zeros(num_frames)
        for i, score in enumerate(snippet_scores):
            start = i * stride
            total[start:min(start + length, num_frames)] += score
            count[start:min(start + length, num_frames)] += 1
        covered = count > 0
        frames[covered] = total[covered] / count[covered]
        if tail == "extend" and covered.any():
            frames[int(np.flatnonzero(covered)[-1]) + 1:] = snippet_scores[-1]
        return frames

    def score(self, path: str | Path) -> dict:
        frames, num_frames, fps, width, height = decode(path)
        features = self.snippet_features(frames, num_frames, width, height)
        scores = self.frame_scores(self.snippet_scores(features), num_frames)
        s = self.spec["scoring"]
        smoothed = gaussian_smooth(scores, s["smoothing_sigma"])
        threshold = float(self.spec["threshold"])
        events = find_events(smoothed, threshold, fps, s["min_event_frames"], s["merge_gap"])
        return {"video": str(path), "num_frames": num_frames, "fps": fps, "threshold": threshold,
                "scores": scores.tolist(), "smoothed": smoothed.tolist(), "events": events}


def decode(path: str | Path):
    """``(frame iterator (RGB uint8), num_frames, fps, width, height)``; the frame count is read by a first pass."""
    import av

    def frames():
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        width, height = stream.codec_context.width, stream.codec_context.height
        num_frames = sum(1 for _ in container.decode(stream))
    return frames(), num_frames, fps, width, height


def gaussian_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of the scored frames (edges repeat the end values; kernel radius 4 sigma)."""
    out = scores.copy()
    keep = np.isfinite(scores)
    if not sigma or not keep.any():
        return out
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    values = np.pad(scores[keep], radius, mode="edge")
    out[keep] = np.correlate(values, kernel, mode="valid")
    return out


def find_events(scores: np.ndarray, threshold: float, fps: float, min_frames: int, merge_gap: int) -> list[dict]:
    """Runs of frames at or above ``threshold``: gaps shorter than ``merge_gap`` bridged, runs shorter than
    ``min_frames`` dropped."""
    above = np.nan_to_num(scores, nan=-np.inf) >= threshold
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    runs = list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist()))
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] - 1 < merge_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    events = []
    for start, end in merged:
        if end - start + 1 < min_frames:
            continue
        peak = start + int(np.nanargmax(scores[start:end + 1]))
        events.append({"start_frame": start, "end_frame": end, "start_s": start / fps, "end_s": (end + 1) / fps,
                       "peak_score": float(scores[peak]), "peak_frame": peak})
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score videos with an exported vadkit model and ONNX Runtime.")
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument("--model", default=str(Path(__file__).resolve().parent),
                        help="the exported folder (default: this script's folder)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--json", action="store_true", help="one JSON line per video, with the per-frame scores")
    args = parser.parse_args(argv)
    model = Exported(args.model, args.threads)
    for video in args.videos:
        result = model.score(video)
        if args.json:
            clean = {**result, "scores": [None if not math.isfinite(v) else v for v in result["scores"]],
                     "smoothed": [None if not math.isfinite(v) else v for v in result["smoothed"]]}
            sys.stdout.write(json.dumps(clean) + "\n")
        else:
            spans = ", ".join(f"{e['start_s']:.1f}-{e['end_s']:.1f}s" for e in result["events"])
            print(f"{video}: {len(result['events'])} event(s){': ' + spans if spans else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
