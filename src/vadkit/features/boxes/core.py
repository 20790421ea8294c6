"""Box thresholds and box geometry: the plain pieces every box source shares.

Boxes are ``float32`` arrays ``(n, 4)`` of ``[x1, y1, x2, y2]`` in frame pixels; a video's boxes are a list with
one array per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Boxes = np.ndarray  # float32 (n, 4): [x1, y1, x2, y2]
MAX_BOX_FRAMES = 2_000_000  # a box file may describe at most this many frames (memory is spent per frame)

# ---------------------------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoxThresholds:
    """The knobs of VEC's box extraction.

    Attributes:
        score: ``τ_s``, keep detections with ``score > score``.
        min_area: ``A_min`` in pixels: detections need ``(x2-x1+1)(y2-y1+1) >= min_area``, motion regions
            ``(w+1)(h+1) > min_area``.
        cover: ``τ_cover``, drop a detection when more than this fraction of it lies inside a larger one.
        binary: ``τ_b``, a pixel moves when its summed absolute difference exceeds this (0-255 scale, per channel).
        blur: Gaussian blur kernel size ``g`` applied to each frame before differencing (odd).
        extend: pixels added around appearance boxes (masked out of the motion map) and around motion boxes.
        max_aspect: motion regions need ``w/h`` and ``h/w`` below this.
    """

    score: float = 0.5
    min_area: float = 10 * 10
    cover: float = 0.6
    binary: int = 18
    blur: int = 3
    extend: int = 2
    max_aspect: float = 10.0

    def __post_init__(self) -> None:
        if self.blur < 1 or self.blur % 2 == 0:
            raise ValueError(f"blur must be an odd kernel size >= 1, got {self.blur}")
        if not 0 < self.cover <= 1:
            raise ValueError(f"cover must be in (0, 1], got {self.cover}")


DATASET_THRESHOLDS: dict[str, BoxThresholds] = {
    "ped2": BoxThresholds(score=0.5, min_area=10 * 10, cover=0.6, binary=18, blur=3),
    "avenue": BoxThresholds(score=0.25, min_area=40 * 40, cover=0.6, binary=18, blur=5),
    "shanghaitech": BoxThresholds(score=0.5, min_area=8 * 8, cover=0.65, binary=15, blur=5),
}
_ALIASES = {"ucsdped2": "ped2", "ucsd_ped2": "ped2", "ucsd-ped2": "ped2", "sht": "shanghaitech",
            "shanghai_tech": "shanghaitech", "cuhk_avenue": "avenue"}


def box_thresholds(dataset: str | BoxThresholds) -> BoxThresholds:
    """The thresholds of a dataset by name (``ped2``, ``avenue``, ``shanghaitech`` or an alias), or pass through."""
    if isinstance(dataset, BoxThresholds):
        return dataset
    key = _ALIASES.get(dataset.lower(), dataset.lower())
    if key not in DATASET_THRESHOLDS:
        valid = ", ".join(sorted(DATASET_THRESHOLDS))
        raise KeyError(f"no box thresholds for dataset {dataset!r}; expected one of: {valid} (or a BoxThresholds)")
    return DATASET_THRESHOLDS[key]


# ---------------------------------------------------------------------------------------------------------------
# Box geometry
# ---------------------------------------------------------------------------------------------------------------

def as_boxes(boxes, name: str = "boxes") -> Boxes:
    """``boxes`` as float32 ``(n, 4)``; an empty array of any shape gives ``(0, 4)``."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] < 4:
        raise ValueError(f"{name} must be (n, 4) [x1, y1, x2, y2], got shape {array.shape}")
    if not np.isfinite(array[:, :4]).all():
        raise ValueError(f"{name}: box coordinates must be finite numbers, found NaN or infinity")
    return np.ascontiguousarray(array[:, :4])


def box_areas(boxes: Boxes) -> np.ndarray:
    """VEC's inclusive-pixel areas ``(x2 - x1 + 1) * (y2 - y1 + 1)``, ``(n,)``."""
    boxes = as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def filter_detections(boxes, scores, thresholds: str | BoxThresholds = "ped2") -> Boxes:
    """Keep detections with ``score > τ_s`` and area ``>= A_min`` (all classes pooled)."""
    th = box_thresholds(thresholds)
    boxes = as_boxes(boxes, "detections")
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"got {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    keep = (scores > th.score) & (box_areas(boxes) >= th.min_area)
    return boxes[keep]


def remove_covered_boxes(boxes, cover: float = 0.6) -> Boxes:
    """Drop each box of which more than ``cover`` of the area lies inside one *larger* box.

    Boxes are visited by ascending area; box ``i`` is compared with the boxes after it in that order. Order of the
    result: ascending area (as VEC).
    """
    boxes = as_boxes(boxes)
    areas = box_areas(boxes)
    order = np.argsort(areas, kind="stable")
    keep = []
    for rank, i in enumerate(order):
        larger = boxes[order[rank + 1:]]
        inter_w = np.maximum(0, np.minimum(boxes[i, 2], larger[:, 2]) - np.maximum(boxes[i, 0], larger[:, 0]) + 1)
        inter_h = np.maximum(0, np.minimum(boxes[i, 3], larger[:, 3]) - np.maximum(boxes[i, 1], larger[:, 1]) + 1)
        if not np.any(inter_w * inter_h / areas[i] > cover):
            keep.append(i)
    return boxes[np.asarray(keep, dtype=np.int64)]
