"""Choosing the object detector's settings on UCSD Ped2's *training* clips alone, the way the test is scored: frame
scores pooled over whole held-out videos (a micro AUC), with synthetic anomalies pasted into held-out training clips.
No test clip is read.

    python bench/objects_paste_synthetic.py [--config configs/objects_ped2_motion.yaml]
        [--candidate NAME:key=value,key=value ...]

The 16 training clips are split into 4 folds (clip i in fold i % 4). For each fold, the detector is fitted on the
other 12 clips exactly as ``vadkit train`` fits it (its own boxes, leave-one-video-out calibration, threshold), and
scores every frame of the fold's clips in three forms: as they are (all frames normal), with a **fast object** (an
object cut from the clip's middle frame, moving sideways at 3 times the clip's typical object speed), and with a
**strange object** (the same object upside down, at the typical speed). The frames the pasted object is in are the
positives. Printed per candidate: the AUC over all those frames pooled (as Ped2's micro AUC), per kind (each kind's
clips with the as-they-are clips), the mean per-video AUC, and the realised false-alarm rate on the as-they-are
clips. One JSON line.

Objects are cut with a mask (the pixels of the box that differ from the clip's median frame), so the paste moves the
object, not its background; the typical speed is the median over the clip's boxes of the 90th percentile flow
magnitude inside them (the detector's own boxes and flow). Uses the detector's own box source, so it is meant for
``boxes: motion``, ``background``, ``hog`` or ``onnx`` (precomputed box files do not know the pasted objects). The
objects are cut with the config's box source, so the pasted clips (under ``--work``, one folder per config) depend
on it: docs/results.md's v5 table was made when ``configs/objects_ped2_motion.yaml`` was v4 (motion boxes; commit
ec24881), and the same command on the v5 config cuts its objects from background boxes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objects_ped2 import REPO, data_root  # noqa: E402

FOLDS = 4
FAST = 3.0  # the fast object's speed, in typical object speeds
MASK_DIFFERENCE = 20  # grey levels from the median frame for a pixel to belong to the cut object


def cut_object(frames: list[np.ndarray], boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The most person-like object of the middle frame (the tallest box 1.5-4 times as high as wide, else the
    largest): its pixels ``(h, w, 3)``, mask ``(h, w)`` bool, and box ``[x1, y1, x2, y2]`` (ints); ``None`` without."""
    import cv2

    from vadkit.io import to_gray

    middle = len(frames) // 2
    candidates = boxes[middle].astype(np.int64)
    if len(candidates) == 0:
        return None
    w, h = candidates[:, 2] - candidates[:, 0], candidates[:, 3] - candidates[:, 1]
    upright = (h >= 1.5 * w) & (h <= 4 * w)
    pick = int(np.argmax(np.where(upright, h, -1))) if upright.any() else int(np.argmax(w * h))
    x1, y1, x2, y2 = candidates[pick]
    background = np.median(np.stack([to_gray(f) for f in frames[::4]]), axis=0)
    frame = frames[middle]
    mask = np.abs(to_gray(frame)[y1:y2, x1:x2].astype(np.float64) - background[y1:y2, x1:x2]) > MASK_DIFFERENCE
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if mask.sum() < 20:
        return None
    rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
    return rgb[y1:y2, x1:x2].copy(), mask, np.array([x1, y1, x2, y2])


def typical_speed(flow: np.ndarray, boxes: list[np.ndarray]) -> float:
    """Median over the clip's boxes of the 90th percentile flow magnitude inside each (pixels per frame)."""
    speeds = []
    for t, frame_boxes in enumerate(boxes[:len(flow)]):
        for x1, y1, x2, y2 in frame_boxes.astype(np.int64):
            patch = flow[t, y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
            if patch.size:
                speeds.append(np.quantile(np.hypot(patch[..., 0], patch[..., 1]), 0.9))
    return float(np.median(speeds)) if speeds else 1.0


def pasted_clip(frames: list[np.ndarray], sprite, speed: float, flip: bool, out: Path) -> np.ndarray:
    """Write the clip with the sprite moving sideways (bouncing at the frame's edges) over its middle third as PNG
    frames; returns the frame labels (1 where the sprite is)."""
    import cv2

    pixels, mask, (x1, y1, x2, y2) = sprite
    if flip:
        pixels, mask = pixels[::-1], mask[::-1]
    h, w = mask.shape
    n = len(frames)
    start, length = n // 3, max(1, n // 3)
    labels = np.zeros(n, np.int64)
    out.mkdir(parents=True, exist_ok=True)
    width = frames[0].shape[1]
    span = max(1, width - w)
    for t, frame in enumerate(frames):
        frame = frame.copy() if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
        if start <= t < start + length:
            travelled = x1 + speed * (t - start)
            phase = travelled % (2 * span)
            x = int(round(phase if phase <= span else 2 * span - phase))  # bounce between the edges
            region = frame[y1:y1 + h, x:x + w]
            region[mask[:region.shape[0], :region.shape[1]]] = pixels[:region.shape[0], :region.shape[1]][
                mask[:region.shape[0], :region.shape[1]]]
            labels[t] = 1
        cv2.imwrite(str(out / f"{t:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return labels


def parse_candidate(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    values = {}
    for pair in filter(None, settings.split(",")):
        key, _, value = pair.partition("=")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value  # a bare word: a string
    return name, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "objects_ped2_motion.yaml")
    parser.add_argument("--candidate", action="append", default=[],
                        help="NAME:key=value,... detector_args changed from the config (default: the config alone)")
    parser.add_argument("--work", type=Path, default=REPO / "features" / "ped2_paste")
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    from vadkit.detectors import VideoItem, build_detector
    from vadkit.engine.config import load_config
    from vadkit.engine.train import make_items, split_records
    from vadkit.features.flow import flow_for_video
    from vadkit.io import open_video, open_video_frames

    data = data_root()
    config = load_config(args.config, [f"data.root={data / 'ucsd_ped2'}"])
    if config.detector_args.get("boxes") == "vec":
        sys.exit(f"{args.config}: precomputed box files (boxes: vec) do not know the pasted objects; use a config "
                 f"whose boxes are motion, background, hog or onnx")
    train = make_items(split_records(config)[0])
    probe = build_detector("objects", **config.detector_args)

    start = time.perf_counter()
    synthetic: dict[str, list[tuple[VideoItem, np.ndarray]]] = {}  # clip id -> [(item, labels)] of its forms
    skipped = []
    for item in train:
        with open_video(item.path) as video:
            frames = [np.asarray(f) for f in video.frames()]
        with open_video_frames(item.path, item.num_frames, item.id) as video:
            _, boxes = probe._boxes(item, video)
            flow = flow_for_video(video, probe.cache_root / "flow", probe.flow_settings)
        sprite = cut_object(frames, boxes)
        if sprite is None:
            skipped.append(item.id)
            continue
        speed = typical_speed(flow, boxes)
        forms = [(item, np.zeros(item.num_frames, np.int64))]
        for kind, factor, flip in (("fast", FAST, False), ("strange", 1.0, True)):
            folder = args.work / args.config.stem / kind / Path(item.path).name  # a config's own clips
            labels = pasted_clip(frames, sprite, factor * speed, flip, folder)
            forms.append((VideoItem(id=f"synthetic-{kind}/{Path(item.path).name}", num_frames=item.num_frames,
                                    path=folder, fps=item.fps, label=1, frame_labels=labels), labels))
        synthetic[item.id] = forms
    made_s = time.perf_counter() - start

    candidates = [parse_candidate(c) for c in args.candidate] or [("as_configured", {})]
    result: dict = {"protocol": "Ped2 training clips only, 4 folds: fitted on 12 clips, scored on the other 4 as they "
                                "are, with a fast pasted object and with an upside-down pasted object; AUC over all "
                                "held-out frames pooled", "config": str(args.config),
                    "clips": len(synthetic), "skipped": skipped, "fast_factor": FAST, "paste_s": round(made_s, 1)}
    for name, changes in candidates:
        began = time.perf_counter()
        scores, labels, kinds, per_video, alarms = [], [], [], [], []
        for fold in range(FOLDS):
            held = [item for i, item in enumerate(train) if i % FOLDS == fold]
            fit_on = [item for i, item in enumerate(train) if i % FOLDS != fold]
            detector = build_detector("objects", **{**config.detector_args, **changes}).fit(fit_on, progress=False)
            for item in held:
                for form, (video, truth) in enumerate(synthetic.get(item.id, [])):
                    values = np.asarray(detector.score(video).values)
                    scores.append(values)
                    labels.append(truth)
                    kinds.append(np.full(len(values), form))
                    if form == 0:
                        alarms.append(values > detector.threshold_)
                    else:
                        per_video.append(roc_auc_score(truth, values))
        s, y, k = np.concatenate(scores), np.concatenate(labels), np.concatenate(kinds)
        entry = {"changes": changes, "auc": round(float(roc_auc_score(y, s)), 4),
                 "auc_per_video_mean": round(float(np.mean(per_video)), 4),
                 "far_clean": round(float(np.concatenate(alarms).mean()), 4),
                 "seconds": round(time.perf_counter() - began, 1)}
        for form, kind in ((1, "fast"), (2, "strange")):
            keep = (k == 0) | (k == form)
            entry[f"auc_{kind}"] = round(float(roc_auc_score(y[keep], s[keep])), 4)
        result[name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
