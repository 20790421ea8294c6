"""Choosing the object detector's appearance embedding on UCSD Ped2's *training* clips alone: synthetic appearance
anomalies (each object of a training clip turned upside down inside its own box: the same place, size and motion,
a shape no training object has), scored leave-one-video-out. No test clip is read.

    python bench/objects_synthetic.py [--appearance i3d hog]

For each appearance embedding, every training video is held out in turn: the appearance density (distance to the
nearest object of the other training videos, as the detector fits it) scores the held-out video's objects as they
are and turned upside down; printed: the AUC of telling the two apart, pooled over all held-out videos, and per
video (mean). One JSON line.
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


def upside_down_clip(item, boxes: list[np.ndarray], out: Path) -> Path:
    """The clip's frames with every box's pixels flipped vertically (in box order), written as PNG frames."""
    import cv2

    from vadkit.features.attributes import _pixel_box
    from vadkit.io import open_video

    out.mkdir(parents=True, exist_ok=True)
    with open_video(item.path) as video:
        for t, frame in enumerate(video.frames()):
            frame = frame.copy() if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
            for box in boxes[t]:
                x1, y1, x2, y2 = _pixel_box(box, frame.shape[1], frame.shape[0])
                frame[y1:y2, x1:x2] = frame[y1:y2, x1:x2][::-1].copy()
            cv2.imwrite(str(out / f"{t:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appearance", nargs="+", default=["i3d", "hog"])
    parser.add_argument("--work", type=Path, default=REPO / "features" / "ped2_synthetic")
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    from vadkit.detectors import VideoItem, build_detector
    from vadkit.detectors.objects import appearance_distances
    from vadkit.engine.config import load_config
    from vadkit.engine.train import make_items, split_records

    data = data_root()
    config = load_config(REPO / "configs" / "objects_ped2.yaml",
                         [f"data.root={data / 'ucsd_ped2'}", f"detector_args.boxes_dir={data / 'ucsd_ped2_boxes'}"])
    train = make_items(split_records(config)[0])
    probe = build_detector("objects", **config.detector_args)
    flipped = []
    for item in train:  # the synthetic clips mirror the training layout, so the box file finds their boxes
        boxes = probe._box_source.files.boxes_for(item.id, item.path, item.num_frames)
        folder = args.work / "training" / "frames" / Path(item.path).name
        if not (folder.is_dir() and len(list(folder.glob("*.png"))) == item.num_frames):
            upside_down_clip(item, boxes, folder)
        flipped.append(VideoItem(id=item.id, num_frames=item.num_frames, path=folder, fps=item.fps, label=0))
    result: dict = {"protocol": "Ped2 training clips only; positives: the same objects upside down in their boxes; "
                                "leave one training video out", "videos": len(train)}
    for appearance in args.appearance:
        start = time.perf_counter()
        detector = build_detector("objects", **{**config.detector_args, "appearance": appearance})
        original = [detector.objects(v)["appearance"] for v in train]
        synthetic = [detector.objects(v)["appearance"] for v in flipped]
        rng = np.random.default_rng(0)
        negatives, positives, per_video = [], [], []
        for v in range(len(train)):
            bank = detector._bank(np.concatenate([o for j, o in enumerate(original) if j != v]), rng)
            neg = appearance_distances(original[v], bank, detector.args["k"])
            pos = appearance_distances(synthetic[v], bank, detector.args["k"])
            negatives.append(neg)
            positives.append(pos)
            per_video.append(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))
        neg, pos = np.concatenate(negatives), np.concatenate(positives)
        result[appearance] = {
            "auc": round(float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos])), 4),
            "auc_per_video_mean": round(float(np.mean(per_video)), 4), "objects": int(len(neg)),
            "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
