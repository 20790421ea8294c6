"""YOLOX-Nano (shipped with vadkit) against VEC's boxes on UCSD Ped2's *training* frames: recall and precision at
IoU >= 0.3 per input scale and confidence, and the time per frame. No test frame is read.

    python bench/yolox_recall_ped2.py [--scales 1.5,2.0] [--confidences 0.3,0.4] [--every 10] [--batch 4]
        [--threads 2] [--runtime onnxruntime|openvino] [--detect-every 1,2,3]

Every ``--every``-th frame of the 16 training clips; VEC's reference boxes (Cascade R-CNN + motion boxes, not hand
labels: a few are not people, so agreement cannot reach 1). A reference box is found when a detection (person or
bicycle) overlaps it at IoU >= 0.3; a detection is right when it overlaps a reference box so. With ``detect_every``
N the detector runs on every N-th frame and the frames between keep its last boxes: each sampled frame is matched
against the detections of the frame 0, 1, ..., N-1 frames before it in turn (the lags a video sees equally often), and
the time per frame is divided by N. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objects_ped2 import data_root  # noqa: E402

IOU = 0.3


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of two box sets ``[x1, y1, x2, y2]``."""
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def training_frames(data: Path, every: int, detect_every: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every ``every``-th frame ``t`` of the training clips: the RGB frame the detector sees for it (``t - lag``, the
    lag cycling through ``0 .. detect_every - 1``) and the VEC boxes of ``t``."""
    from vadkit.features.boxes.files import load_boxes, split_by_video
    from vadkit.io import open_video

    clips = sorted(p for p in (data / "ucsd_ped2" / "training" / "frames").iterdir() if p.is_dir())
    frames, lengths = [], []
    picked = []
    for clip in clips:
        with open_video(clip) as video:
            lengths.append(video.num_frames)
            wanted = {max(0, t - (t // every) % detect_every) for t in range(0, video.num_frames, every)}
            kept = {t: np.asarray(f) for t, f in enumerate(video.frames()) if t in wanted}
            clip_frames = [kept[max(0, t - (t // every) % detect_every)] for t in range(0, video.num_frames, every)]
        frames.extend(clip_frames)
        picked.append(len(clip_frames))
    per_video = split_by_video(load_boxes(data / "ucsd_ped2_boxes" / "ped2_train_boxes.npz"), lengths)
    reference = [boxes for video in per_video for t, boxes in enumerate(video) if t % every == 0]
    if len(reference) != len(frames):
        raise SystemExit(f"{len(reference)} reference frames for {len(frames)} frames")
    return frames, reference


def agreement(found: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    hits = matched = total_ref = total_found = 0
    for boxes, ref in zip(found, reference):
        total_ref, total_found = total_ref + len(ref), total_found + len(boxes)
        if len(ref) and len(boxes):
            overlap = iou_matrix(ref, boxes) >= IOU
            hits += int(overlap.any(axis=1).sum())
            matched += int(overlap.any(axis=0).sum())
    recall, precision = hits / max(total_ref, 1), matched / max(total_found, 1)
    return {"recall": round(recall, 3), "precision": round(precision, 3),
            "f1": round(2 * recall * precision / max(recall + precision, 1e-9), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1.5,2.0")
    parser.add_argument("--confidences", default="0.3,0.4")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--detect-every", default="1")
    args = parser.parse_args()

    result = {"iou": IOU, "threads": args.threads, "batch": args.batch, "runtime": args.runtime, "runs": []}
    for every_n in (int(n) for n in args.detect_every.split(",")):
        frames, reference = training_frames(data_root(), args.every, every_n)
        result.update(frames=len(frames), reference_boxes=int(sum(len(r) for r in reference)))
        result["runs"] += measure(frames, reference, args, every_n)
    print(json.dumps(result))


def measure(frames: list[np.ndarray], reference: list[np.ndarray], args, detect_every: int) -> list[dict]:
    from vadkit.features.yolox import YoloxDetector

    runs = []
    for scale in (float(s) for s in args.scales.split(",")):
        low = min(float(c) for c in args.confidences.split(","))
        detector = YoloxDetector(scale=scale, confidence=low, batch=args.batch, threads=args.threads,
                                 runtime=args.runtime)
        detector.detect(frames[:args.batch])  # warm-up
        start = time.perf_counter()
        found = detector.detect(frames)
        ms = 1000 * (time.perf_counter() - start) / len(frames) / detect_every
        for confidence in (float(c) for c in args.confidences.split(",")):
            kept = [boxes[scores >= confidence] for boxes, scores in found]
            runs.append({"scale": scale, "confidence": confidence, "detect_every": detect_every,
                         **agreement(kept, reference), "ms_per_frame": round(ms, 1)})
    return runs


if __name__ == "__main__":
    main()
