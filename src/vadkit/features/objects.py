"""Object boxes per frame for object-centric detectors (STATE), after VEC's "obj_det_with_motion".

A frame's boxes are the union of

- **appearance boxes**: detections kept when ``score > τ_s`` and area ``>= A_min``, with boxes mostly covered by a
  larger one removed (:func:`remove_covered_boxes`). They come from a user-supplied ONNX detector
  (:class:`OnnxDetector`) or from precomputed per-frame boxes (e.g. a box file, :func:`load_boxes`);
- **motion boxes** (:func:`motion_boxes`): regions that change over the 3-frame context ``(t-1, t, t+1)`` and are not
  already covered by an appearance box.

Boxes are ``float32`` arrays ``(n, 4)`` of ``[x1, y1, x2, y2]`` in frame pixels; a video's boxes are a list with
one array per frame. :func:`extract_boxes` does a whole video, streaming its frames, and caches the result per video
(``.npz``, written atomically).

Box files: :func:`load_boxes` reads the ``.npz`` form (``frame`` int32, ``xyxy`` float32 ``(n, 4)``,
``num_frames``; :func:`save_boxes` writes it) and VEC's original ``.npy`` object arrays. The latter are pickles;
they are read with :func:`load_object_array`, an unpickler that admits numpy arrays and dtypes only and raises
:class:`UnsafePickleError` on anything else, before it is built.

Difference from VEC (a fix, see docs/seed-systems.md §5.10): the frame differences are summed in ``int16``, not in
``uint8`` where the sum wrapped modulo 256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from vadkit.io.files import atomic_write_bytes, content_stamp, safe_name
from vadkit.io import VideoSource, open_video, to_gray

__all__ = [
    "DATASET_THRESHOLDS",
    "BoxThresholds",
    "OnnxDetector",
    "UnsafePickleError",
    "box_areas",
    "box_thresholds",
    "detected_boxes",
    "extract_boxes",
    "filter_detections",
    "frame_boxes",
    "load_boxes",
    "load_object_array",
    "motion_boxes",
    "motion_mask",
    "remove_covered_boxes",
    "save_boxes",
    "split_by_video",
]

Boxes = np.ndarray  # float32 (n, 4): [x1, y1, x2, y2]
Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # RGB frame -> (boxes (n, 4), scores (n,))
CACHE_VERSION = 1


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


# ---------------------------------------------------------------------------------------------------------------
# Motion boxes
# ---------------------------------------------------------------------------------------------------------------

def motion_mask(frames: Sequence[np.ndarray], thresholds: str | BoxThresholds = "ped2") -> np.ndarray:
    """Where the (blurred) frames change: ``Σ_k |f_{k+1} - f_k| > τ_b`` in any channel, bool ``(H, W)``.

    Args:
        frames: 2 or more uint8 frames ``(H, W, C)`` or ``(H, W)`` (VEC: the context ``t-1, t, t+1``).
    """
    th = box_thresholds(thresholds)
    if len(frames) < 2:
        raise ValueError(f"motion needs at least 2 frames, got {len(frames)}")
    blurred = [cv2.GaussianBlur(np.asarray(f), (th.blur, th.blur), 0).astype(np.int16) for f in frames]
    total = np.zeros(blurred[0].shape, np.int16)  # int16: up to 2 * 255 per pair without wrapping
    for before, after in zip(blurred[:-1], blurred[1:]):
        if after.shape != before.shape:
            raise ValueError(f"frames differ in shape: {before.shape} vs {after.shape}")
        total += np.abs(after - before)
    moving = total > th.binary
    return moving.any(axis=-1) if moving.ndim == 3 else moving


def motion_boxes(frames: Sequence[np.ndarray], exclude=None, thresholds: str | BoxThresholds = "ped2") -> Boxes:
    """VEC's motion boxes of the middle frame of ``frames`` (the 3-frame context).

    Steps: :func:`motion_mask`; erase each box of ``exclude`` (the appearance boxes) enlarged by ``extend`` px;
    external contours; bounding rectangles ``(x, y, w, h)`` kept when ``(w+1)(h+1) > A_min`` and both aspect ratios
    are below ``max_aspect``; enlarged by ``extend`` px and clipped to ``[0, W] x [0, H]``.

    Returns:
        float32 ``(n, 4)`` integer-valued boxes ``[x1, y1, x2, y2]``.
    """
    th = box_thresholds(thresholds)
    return _mask_boxes(_erase(motion_mask(frames, th).astype(np.uint8), exclude, th), th)  # (H, W) 0/1 mask


def _erase(mask: np.ndarray, exclude, th: BoxThresholds) -> np.ndarray:
    """``mask`` with each box of ``exclude`` (enlarged by ``extend`` px) set to 0."""
    height, width = mask.shape
    for x1, y1, x2, y2 in as_boxes(exclude if exclude is not None else []).astype(np.int64):  # truncation, as VEC
        mask[max(0, y1 - th.extend):min(y2 + th.extend, height) + 1,
             max(0, x1 - th.extend):min(x2 + th.extend, width) + 1] = 0
    return mask


REGIONS = ("motion", "background", "none")  # none: a detector's boxes alone
BACKGROUND_SAMPLES = 50  # frames the median background is taken over (evenly spaced)
BACKGROUND_DIFFERENCE = 20  # grey levels from the background for a pixel to be foreground
# (chosen on Ped2's training clips 02, 05, 09, 13 by agreement with VEC's boxes, IoU >= 0.3: with the other clips'
# median frame, F1 0.65 at 20 against 0.59-0.64 at 12-30; with each clip's own median frame, as used, 0.674)


def median_background(video: VideoSource) -> np.ndarray:
    """A still camera's empty scene: the per-pixel median of :data:`BACKGROUND_SAMPLES` evenly spaced grey frames of
    the video itself (objects that move are absent from most of them), uint8 ``(H, W)``."""
    step = max(1, -(-video.num_frames // BACKGROUND_SAMPLES))  # ceil: at most BACKGROUND_SAMPLES frames kept
    sampled = [to_gray(f) for t, f in enumerate(video.frames()) if t % step == 0]
    if not sampled:
        raise ValueError(f"{video.path}: no frames to take a background from")
    return np.median(np.stack(sampled), axis=0).astype(np.uint8)  # (H, W)


def background_boxes(frame: np.ndarray, background: np.ndarray, exclude=None,
                     thresholds: str | BoxThresholds = "ped2") -> Boxes:
    """Boxes of what differs from the background (whole objects, where frame differences give the edges of moving
    ones; an object that stays still for most of the frames the median was taken over is part of the background):
    blurred ``|frame - background| >`` :data:`BACKGROUND_DIFFERENCE`, ``exclude`` erased (as :func:`motion_boxes`),
    external contours, the motion boxes' area, aspect and margin rules."""
    th = box_thresholds(thresholds)
    blurred = cv2.GaussianBlur(to_gray(frame), (th.blur, th.blur), 0)
    if blurred.shape != background.shape:
        raise ValueError(f"frame {blurred.shape} and background {background.shape} differ in size")
    mask = cv2.absdiff(blurred, cv2.GaussianBlur(background, (th.blur, th.blur), 0)) > BACKGROUND_DIFFERENCE
    return _mask_boxes(_erase(mask.astype(np.uint8), exclude, th), th)


def _mask_boxes(mask: np.ndarray, th: BoxThresholds) -> Boxes:
    """Bounding boxes of a 0/1 mask's external contours with the area, aspect and margin rules of VEC."""
    height, width = mask.shape
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if (w + 1) * (h + 1) > th.min_area and w / h < th.max_aspect and h / w < th.max_aspect:
            found.append([max(0, x - th.extend), max(0, y - th.extend),
                          min(x + w + th.extend, width), min(y + h + th.extend, height)])
    return as_boxes(found)


def frame_boxes(context: Sequence[np.ndarray], detections: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
                thresholds: str | BoxThresholds = "ped2", background: np.ndarray | None = None,
                regions: bool = True) -> Boxes:
    """All boxes of one frame: appearance boxes (filtered, covered ones removed) then motion boxes (with
    ``background``, the video's empty scene: :func:`background_boxes` of the middle frame instead).

    Args:
        context: the frames ``(t-1, t, t+1)`` (repeat ``t`` at a video's ends).
        detections: ``(boxes, scores)`` from a detector (filtered with :func:`filter_detections`), or boxes alone
            (already score-filtered, e.g. precomputed; only the area filter applies), or ``None``.
        thresholds: dataset name or :class:`BoxThresholds`.
        background: the video's empty scene, grey ``(H, W)`` (:func:`median_background`), or ``None`` for
            frame differences.
        regions: add the motion (or background) boxes; ``False``: the appearance boxes alone.
    """
    th = box_thresholds(thresholds)
    if detections is None:
        appearance = np.zeros((0, 4), np.float32)
    elif isinstance(detections, tuple):
        appearance = filter_detections(detections[0], detections[1], th)
    else:
        appearance = as_boxes(detections, "appearance boxes")
        appearance = appearance[box_areas(appearance) >= th.min_area]
    appearance = remove_covered_boxes(appearance, th.cover)
    if not regions:
        return appearance
    found = (motion_boxes(context, appearance, th) if background is None else
             background_boxes(context[1], background, appearance, th))
    return np.concatenate([appearance, found], axis=0)


def frame_contexts(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream ``(f[t-1], f[t], f[t+1])`` for every ``t``, repeating ``f[t]`` at the ends ('hard' border)."""
    iterator = iter(frames)
    try:
        current = next(iterator)
    except StopIteration:
        return
    previous = current
    for following in iterator:
        yield previous, current, following
        previous, current = current, following
    yield previous, current, current


# ---------------------------------------------------------------------------------------------------------------
# Whole videos, with a cache
# ---------------------------------------------------------------------------------------------------------------

def extract_boxes(video: str | os.PathLike | VideoSource, thresholds: str | BoxThresholds = "ped2", *,
                  detector: Detector | None = None, appearance: Sequence[np.ndarray] | None = None,
                  cache_dir: str | os.PathLike | None = None, regions: str = "motion",
                  detect_every: int = 1) -> list[Boxes]:
    """Boxes of every frame of a video (appearance + motion), cached per video when ``cache_dir`` is given.

    Args:
        video: a video file, frame folder or an open :class:`~vadkit.io.VideoSource` (RGB frames).
        thresholds: dataset name or :class:`BoxThresholds`.
        detector: a callable ``frame (H, W, 3) uint8 RGB -> (boxes (n, 4), scores (n,))``, e.g.
            :class:`OnnxDetector`. Its detections are filtered with ``τ_s`` and ``A_min``.
        appearance: precomputed appearance boxes, one ``(n, 4)`` array per frame (not given with ``detector``).
        cache_dir: where ``<video>-<hash>.npz`` is kept; the hash covers the video path, content stamp
            (:func:`~vadkit.io.files.content_stamp`) and length, the thresholds, the appearance source, ``regions``
            and ``detect_every``, so other settings, or another video at the same path, never reuse a cache entry.
        regions: what finds the objects no detector gave: ``motion`` (frame differences, VEC), ``background``
            (what differs from the video's median frame: :func:`background_boxes`; the video is read twice) or
            ``none`` (the detector's or the given boxes alone).
        detect_every: run ``detector`` on every N-th frame only and give the frames between its last detections
            (objects move little in a few frames; motion or background regions still cover what moved away).
            A detector with a ``detect(frames)`` method and a ``batch`` size (:class:`~vadkit.features.yolox.
            YoloxDetector`) gets ``batch`` of those frames per call (at most ``batch * detect_every`` frames held).

    Returns:
        one float32 ``(n_t, 4)`` array per frame.
    """
    if detector is not None and appearance is not None:
        raise ValueError("give either a detector or precomputed appearance boxes, not both")
    if regions not in REGIONS:
        raise ValueError(f"regions must be one of {REGIONS}, got {regions!r}")
    if int(detect_every) != detect_every or detect_every < 1:
        raise ValueError(f"detect_every must be a whole number >= 1, got {detect_every!r}")
    th = box_thresholds(thresholds)
    source = video if isinstance(video, VideoSource) else open_video(video)
    if appearance is not None and len(appearance) != source.num_frames:
        raise ValueError(f"appearance boxes cover {len(appearance)} frames, the video has {source.num_frames}")
    cache_file = None
    if cache_dir is not None:
        name = safe_name(source.path.stem or source.path.name)
        key = _cache_key(source, th, detector, appearance, regions, detect_every)
        cache_file = Path(cache_dir) / f"{name}-{key}.npz"
        if cache_file.exists():
            cached = load_boxes(cache_file)
            if len(cached) == source.num_frames:
                return cached
    background = median_background(source) if regions == "background" else None
    boxes = []
    contexts = frame_contexts(source.frames())
    paired = (_detected(contexts, detector, detect_every) if detector is not None else
              ((c, None if appearance is None else appearance[t]) for t, c in enumerate(contexts)))
    for context, detections in paired:
        boxes.append(frame_boxes(context, detections, th, background, regions=regions != "none"))
    if len(boxes) != source.num_frames:
        raise ValueError(f"{source.path}: decoded {len(boxes)} frames, expected {source.num_frames}")
    if cache_file is not None:
        save_boxes(cache_file, boxes)
    return boxes


def detected_boxes(video: str | os.PathLike | VideoSource, detector: Detector, *, detect_every: int = 1,
                   cache_dir: str | os.PathLike | None = None) -> list[Boxes]:
    """A detector's own boxes for every frame of a video (no score or area filter, no regions: a detector that
    applies its own confidence, such as :class:`~vadkit.features.yolox.YoloxDetector`), run on every
    ``detect_every``-th frame (batched as in :func:`extract_boxes`), cached per video under ``cache_dir`` by the
    detector's ``identity``; pass them to :func:`extract_boxes` as ``appearance`` to add regions. Keeping them apart
    lets settings of the regions share one detection pass."""
    source = video if isinstance(video, VideoSource) else open_video(video)
    cache_file = None
    if cache_dir is not None:
        record = dict(version=CACHE_VERSION, video=str(Path(source.path).resolve()), frames=source.num_frames,
                      size=[source.width, source.height], detector=getattr(detector, "identity", None) or
                      f"{type(detector).__module__}.{type(detector).__qualname__}", detect_every=int(detect_every))
        key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"{safe_name(source.path.stem or source.path.name)}-{key}.npz"
        if cache_file.exists():
            cached = load_boxes(cache_file)
            if len(cached) == source.num_frames:
                return cached
    found = [as_boxes(detections[0]) for _, detections in
             _detected(((None, f, None) for f in source.frames()), detector, detect_every)]
    if len(found) != source.num_frames:
        raise ValueError(f"{source.path}: decoded {len(found)} frames, expected {source.num_frames}")
    if cache_file is not None:
        save_boxes(cache_file, found)
    return found


def _detected(contexts: Iterable[tuple], detector: Detector, detect_every: int) -> Iterator[tuple[tuple, object]]:
    """``(context, detections)`` per frame: ``detector`` runs on every ``detect_every``-th frame (in batches of its
    ``batch`` when it has ``detect``), the frames between reuse the last detections."""
    batch = int(getattr(detector, "batch", 1)) if hasattr(detector, "detect") else 1
    run = detector.detect if hasattr(detector, "detect") else (lambda frames: [detector(f) for f in frames])
    pending: list[tuple[int, tuple]] = []
    last = None
    for t, context in enumerate(contexts):
        pending.append((t, context))
        if len(pending) == batch * detect_every:
            last = yield from _flush(pending, run, detect_every, last)
    yield from _flush(pending, run, detect_every, last)


def _flush(pending: list, run, detect_every: int, last):
    """Detect on the pending frames due for it, yield every pending ``(context, detections)``; returns the last."""
    found = iter(run([context[1] for t, context in pending if t % detect_every == 0]))
    for t, context in pending:
        if t % detect_every == 0:
            last = next(found)
        yield context, last
    pending.clear()
    return last


def _cache_key(source: VideoSource, th: BoxThresholds, detector, appearance, regions: str = "motion",
               detect_every: int = 1) -> str:
    if detector is not None:
        origin = getattr(detector, "identity", None) or f"{type(detector).__module__}.{type(detector).__qualname__}"
    elif appearance is not None:
        digest = hashlib.sha256()
        for boxes in appearance:
            digest.update(as_boxes(boxes).tobytes() + b"|")
        origin = f"boxes:{digest.hexdigest()}"
    else:
        origin = "motion-only"
    record = dict(version=CACHE_VERSION, video=str(Path(source.path).resolve()), frames=source.num_frames,
                  size=[source.width, source.height], thresholds=asdict(th), appearance=origin,
                  stamp=content_stamp(source.path))
    if regions == "background":  # (motion caches keep their key)
        record["regions"] = [regions, BACKGROUND_SAMPLES, BACKGROUND_DIFFERENCE]
    elif regions != "motion":
        record["regions"] = regions
    if detect_every != 1:
        record["detect_every"] = int(detect_every)
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# Box files
# ---------------------------------------------------------------------------------------------------------------

def save_boxes(path: str | os.PathLike, boxes: Sequence[np.ndarray]) -> Path:
    """Write per-frame boxes as ``.npz`` (``frame`` int32, ``xyxy`` float32 ``(n, 4)``, ``num_frames``), atomically."""
    path = Path(path)
    arrays = [as_boxes(b, f"boxes of frame {t}") for t, b in enumerate(boxes)]
    frame = np.concatenate([np.full(len(b), t, np.int32) for t, b in enumerate(arrays)] or [np.zeros(0, np.int32)])
    xyxy = np.concatenate(arrays) if arrays else np.zeros((0, 4), np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, frame=frame, xyxy=xyxy, num_frames=np.int32(len(arrays)))
    atomic_write_bytes(path, buffer.getvalue())
    return path


MAX_BOX_FRAMES = 2_000_000  # a box file may describe at most this many frames (memory is spent per frame)


class BoxFileError(ValueError):
    """A box file cannot be read: the message names the file, what was expected and what was found."""


def load_boxes(path: str | os.PathLike) -> list[Boxes]:
    """Per-frame boxes from a ``.npz`` box file or a VEC ``.npy`` object array (read safely).

    Returns:
        one float32 ``(n_t, 4)`` array per frame, frames in file order.

    Raises:
        FileNotFoundError: no file at ``path``.
        BoxFileError: anything else wrong with the file (whatever numpy, zipfile, zlib or the unpickler raised).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"box file not found: {path}")
    try:
        return _read_boxes(path)
    except BoxFileError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy, zipfile, zlib, pickle and tokenize raise their own types
        text = (str(err).strip().splitlines() or [""])[0][:300]
        if str(path) in text:
            raise BoxFileError(text) from None
        raise BoxFileError(f"{path}: not a readable box file ({type(err).__name__}: {text or 'no detail'})") from None


def _read_boxes(path: Path) -> list[Boxes]:
    if path.suffix == ".npz":
        return _load_npz_boxes(path)
    if path.suffix == ".npy":
        array = load_object_array(path)
        if array.dtype != object:  # a plain (n, 4) array would be one frame; refuse the ambiguity
            raise ValueError(f"{path}: expected an object array with one (n, 4) array per frame, got {array.dtype} "
                             f"array of shape {array.shape}")
        return [as_boxes(b, f"{path} frame {t}") for t, b in enumerate(array.reshape(-1))]
    raise ValueError(f"{path}: unknown box file type {path.suffix!r}; expected .npz or .npy")


def _load_npz_boxes(path: Path) -> list[Boxes]:
    with np.load(path, allow_pickle=False) as data:
        missing = {"frame", "xyxy", "num_frames"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: a box file needs arrays frame, xyxy, num_frames; missing {sorted(missing)}")
        claimed = data["num_frames"]
        if claimed.shape != () or claimed.dtype.kind not in "iu":
            raise BoxFileError(f"{path}: num_frames must be one integer, found a {claimed.dtype} array of shape "
                               f"{claimed.shape}")
        num_frames = int(claimed)
        if not 0 <= num_frames <= MAX_BOX_FRAMES:
            raise BoxFileError(f"{path}: num_frames {num_frames} outside 0..{MAX_BOX_FRAMES}")
        frame = data["frame"]
        if frame.ndim != 1 or frame.dtype.kind not in "iu":
            raise BoxFileError(f"{path}: frame must be a 1-d integer array, found {frame.dtype} {frame.shape}")
        frame, xyxy = frame.astype(np.int64), as_boxes(data["xyxy"], f"{path} xyxy")
    if frame.shape[0] != xyxy.shape[0]:
        raise ValueError(f"{path}: {frame.shape[0]} frame indices but {xyxy.shape[0]} boxes")
    if frame.size and (frame.min() < 0 or frame.max() >= num_frames):
        raise ValueError(f"{path}: frame indices {frame.min()}..{frame.max()} outside 0..{num_frames - 1}")
    order = np.argsort(frame, kind="stable")
    bounds = np.searchsorted(frame[order], np.arange(num_frames + 1))
    return [xyxy[order[bounds[t]:bounds[t + 1]]] for t in range(num_frames)]


class SplitBoxFiles:
    """Precomputed boxes of a benchmark's videos: one box file per split (``box_file`` with ``{split}``, e.g. VEC's
    ``ped2_{split}_boxes.npz``) listing the frames of the split's *sorted* videos, all concatenated.

    :meth:`boxes_for` finds a video's slice from its id (``<split>/<video>``) and path: the sorted siblings of the
    path of the same kind (frame folders or files with its extension) are counted, their frame counts must add up to
    the file's, and the file is cut with :func:`split_by_video`. Videos outside such a layout get ``None``.
    """

    def __init__(self, boxes_dir: str | os.PathLike, box_file: str) -> None:
        self.boxes_dir = Path(os.path.expanduser(str(boxes_dir)))
        self.box_file = box_file
        self._cache: dict[str, tuple[list[Path], list[list[Boxes]]]] = {}

    def file(self, split: str) -> Path:
        return self.boxes_dir / self.box_file.format(split=split)

    def _split_videos(self, split: str, folder: Path, like: Path) -> tuple[list[Path], list[list[Boxes]]]:
        key = f"{split}:{folder.resolve()}"
        if key not in self._cache:
            if like.is_dir():
                videos = sorted(p for p in folder.iterdir() if p.is_dir())
            else:
                videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == like.suffix)
            lengths = []
            for video in videos:
                with open_video(video) as source:
                    lengths.append(source.num_frames)
            file = self.file(split)
            all_boxes = load_boxes(file)
            if sum(lengths) != len(all_boxes):
                raise ValueError(f"{file} holds boxes for {len(all_boxes)} frames, but the {len(videos)} sorted videos "
                                 f"of {folder} have {sum(lengths)} frames; the box file must list the frames of "
                                 f"exactly these videos in sorted order")
            self._cache[key] = ([v.resolve() for v in videos], split_by_video(all_boxes, lengths))
        return self._cache[key]

    def boxes_for(self, video_id: str, path: str | os.PathLike | None, num_frames: int) -> list[Boxes] | None:
        """The boxes of a video's frames, or ``None`` when it is not a video of a split with a box file."""
        split = video_id.split("/", 1)[0] if "/" in video_id else None
        if split is None or path is None or not self.file(split).is_file():
            return None
        path = Path(path).resolve()
        videos, boxes = self._split_videos(split, path.parent, path)
        if path not in videos:
            return None
        found = boxes[videos.index(path)]
        if len(found) != num_frames:
            raise ValueError(f"video {video_id}: the box file gives {len(found)} frames, the record says {num_frames}")
        return found


def split_by_video(boxes: Sequence[np.ndarray], lengths: Sequence[int]) -> list[list[Boxes]]:
    """Cut a dataset's per-frame box list (frames in sorted-video order) into one list per video."""
    if sum(lengths) != len(boxes):
        raise ValueError(f"the videos have {sum(lengths)} frames in all, the box list has {len(boxes)}")
    starts = np.cumsum([0, *lengths])
    return [list(boxes[a:b]) for a, b in zip(starts[:-1], starts[1:])]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickled file asks for something other than numpy arrays; it was not loaded."""


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickled numpy array needs, under the module names numpy 1.x and 2.x write."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtype classes such as numpy.dtypes.Float64DType
    for name in dir(dtypes) if dtypes is not None else ():
        value = getattr(dtypes, name)
        if isinstance(value, type) and issubclass(value, np.dtype):
            allowed[("numpy.dtypes", name)] = value
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves numpy's array-building globals and refuses every other one."""

    allowed = _numpy_globals()

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self.source}: the pickle asks for {module}.{name}; only numpy arrays and dtypes "
                                    f"are admitted, so the file was not loaded") from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: the pickle holds a persistent reference; refused")


def load_object_array(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` file, including an object array (a pickle), admitting numpy arrays and dtypes only.

    Plain numeric files are read as ``np.load(allow_pickle=False)`` would. For ``dtype=object`` the pickle is
    unpickled with an allow-list of numpy's own array and dtype constructors; any other global (a class, a function
    such as ``os.system``) raises :class:`UnsafePickleError` before anything is built, and so does any element of the
    object array that is not a numeric numpy array (lists, dicts, strings, nested object arrays).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"{path}: unsupported .npy format version {version}")
        shape, fortran_order, dtype = read_header[version](handle)
        if not dtype.hasobject:
            claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if claimed > path.stat().st_size:  # before any allocation: a tiny file may claim gigabytes
                raise ValueError(f"{path}: the header announces {claimed} bytes of data, the file has "
                                 f"{path.stat().st_size}")
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
        if len(shape) != 1 or shape[0] > MAX_BOX_FRAMES:
            raise ValueError(f"{path}: expected a 1-d object array of at most {MAX_BOX_FRAMES} frames, the header "
                             f"announces shape {shape}")
        array = _ArrayUnpickler(handle, str(path)).load()
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        found = type(array).__name__ if not isinstance(array, np.ndarray) else f"array of shape {array.shape}"
        raise UnsafePickleError(f"{path}: the header announces an array of shape {shape}, the pickle holds {found}")
    for index, item in enumerate(array.reshape(-1)):
        if not isinstance(item, np.ndarray) or item.dtype.hasobject or item.dtype.kind not in "biuf":
            what = f"a {item.dtype} array" if isinstance(item, np.ndarray) else f"a {type(item).__name__}"
            raise UnsafePickleError(f"{path}: element {index} is {what}; only numeric numpy arrays are admitted")
    return array


# ---------------------------------------------------------------------------------------------------------------
# ONNX detector
# ---------------------------------------------------------------------------------------------------------------

def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("OnnxDetector needs the onnxruntime package: pip install 'vadkit[onnx]' (or pip install "
                          "onnxruntime)") from err
    return onnxruntime


class OnnxDetector:
    """A user-supplied ONNX object detector as a box source: ``detector(frame) -> (boxes, scores)``.

    The model must output post-processed detections (after NMS), e.g. a torchvision Faster R-CNN export or a
    detector exported with its NMS: boxes ``(N, 4)`` ``[x1, y1, x2, y2]`` in input pixels and scores ``(N,)``,
    optionally with a leading batch axis of 1; ``(N, 5+)`` rows ``[x1, y1, x2, y2, score, ...]`` also work.
    Outputs are found by ``output_names`` or else by their names (``boxes``, ``scores``) or shapes.
    Raw detection heads (e.g. YOLO's ``(1, 84, 8400)``) need decoding and NMS first: export them with NMS.

    Args:
        model_path: the ``.onnx`` file.
        input_size: ``(width, height)`` the frame is resized to; default: the model's static input size, or the
            frame's own size when the model's is dynamic. Boxes are scaled back to frame pixels.
        scale, mean, std: input normalisation ``((pixel * scale) - mean) / std`` per RGB channel.
        bgr: feed BGR instead of RGB.
        batch_axis: feed ``(1, 3, H, W)`` (True) or ``(3, H, W)`` (False, torchvision exports).
        output_names: ``(boxes_name, scores_name)`` to pick the outputs explicitly.
        classes: keep only these class ids (needs a labels output); default all classes, as VEC.
        providers: onnxruntime execution providers (default CPU).
    """

    def __init__(self, model_path: str | os.PathLike, *, input_size: tuple[int, int] | None = None,
                 scale: float = 1 / 255, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), bgr: bool = False, batch_axis: bool = True,
                 output_names: tuple[str, str] | None = None, classes: Sequence[int] | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.model_path}")
        ort = _import_onnxruntime()
        self.session = ort.InferenceSession(str(self.model_path), providers=list(providers))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        static = [d for d in model_input.shape[-2:] if isinstance(d, int)]
        self.input_size = input_size or ((model_input.shape[-1], model_input.shape[-2]) if len(static) == 2 else None)
        self.scale, self.bgr, self.batch_axis = scale, bgr, batch_axis
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.output_names = output_names
        self.classes = None if classes is None else set(int(c) for c in classes)
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:16]
        self.identity = f"onnx:{digest}:{self.input_size}:{scale}:{tuple(mean)}:{tuple(std)}:{bgr}:{classes}"

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` ``(H, W, 3)`` uint8 RGB -> boxes ``(n, 4)`` in frame pixels, scores ``(n,)``."""
        height, width = frame.shape[:2]
        image = frame if self.input_size is None else cv2.resize(frame, tuple(self.input_size))
        if self.bgr:
            image = image[..., ::-1]
        tensor = (image.transpose(2, 0, 1).astype(np.float32) * self.scale - self.mean) / self.std  # (3, h, w)
        if self.batch_axis:
            tensor = tensor[None]  # (1, 3, h, w)
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(None, {self.input_name: np.ascontiguousarray(tensor)})))
        boxes, scores, labels = parse_detections(outputs, self.output_names)
        if self.classes is not None:
            if labels is None:
                raise ValueError(f"{self.model_path}: classes were given but the model has no labels output")
            keep = np.isin(labels, list(self.classes))
            boxes, scores = boxes[keep], scores[keep]
        in_w, in_h = (width, height) if self.input_size is None else self.input_size
        return boxes * np.array([width / in_w, height / in_h] * 2, np.float32), scores


class HogPeopleDetector:
    """OpenCV's built-in people detector (Dalal & Triggs' HOG with a linear SVM trained on INRIA's 64x128 pedestrians;
    in OpenCV 4.x, no download) as a box source: ``detector(frame) -> (boxes, scores)``.

    Far-field pedestrians (UCSD Ped2's are about 20x40 pixels) are smaller than its window, so the frame is enlarged
    ``upscale`` times first; the cost grows with the square of it (Ped2 training clips: 22 ms per frame at 2x, 54 at
    3x on two cores in session 6, 90 ms at 3x in session 7's run of docs/results.md; with ``detect_every`` in
    :func:`extract_boxes` it runs on every N-th frame only).

    Args:
        upscale: frame enlargement before detection.
        hit_threshold: the SVM margin a window needs (OpenCV's ``hitThreshold``); the scores returned are the
            margins, which ``τ_s`` of the box thresholds filters again.
        stride: window stride in (enlarged) pixels.
        scale: pyramid step.
    """

    def __init__(self, upscale: float = 2.0, hit_threshold: float = 0.0, stride: int = 8, scale: float = 1.05) -> None:
        if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise RuntimeError(f"OpenCV {cv2.__version__} has no built-in HOG people detector (OpenCV 5 dropped it): "
                               f"install opencv-python-headless<5")
        if upscale <= 0 or stride < 1 or scale <= 1:
            raise ValueError(f"expected upscale > 0, stride >= 1 and scale > 1, got {upscale}, {stride}, {scale}")
        self.upscale, self.hit_threshold = float(upscale), float(hit_threshold)
        self.stride, self.scale = int(stride), float(scale)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.identity = (f"opencv-hog-people:{cv2.__version__}:{self.upscale}:{self.hit_threshold}:{self.stride}:"
                         f"{self.scale}")

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` ``(H, W, 3)`` uint8 RGB (or grey) -> boxes ``(n, 4)`` in frame pixels, scores ``(n,)``."""
        grey = to_gray(frame)
        if self.upscale != 1:
            grey = cv2.resize(grey, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        window_w, window_h = self.hog.winSize
        if grey.shape[0] < window_h or grey.shape[1] < window_w:  # no window fits (OpenCV crashes on it)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects, weights = self.hog.detectMultiScale(grey, hitThreshold=self.hit_threshold,
                                                   winStride=(self.stride, self.stride), scale=self.scale)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects = np.asarray(rects, np.float32).reshape(-1, 4) / self.upscale  # (n, 4) x, y, w, h in frame pixels
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)  # (n, 4) x1, y1, x2, y2
        return boxes, np.asarray(weights, np.float32).reshape(-1)


def parse_detections(outputs: dict[str, np.ndarray], names: tuple[str, str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Find ``(boxes (n, 4), scores (n,), labels (n,) or None)`` among a detector's named outputs."""
    squeezed = {k: np.asarray(v) for k, v in outputs.items()}
    if any(v.ndim == 3 and v.shape[0] == 1 for v in squeezed.values()):  # batched outputs: drop the batch axis
        squeezed = {k: (v[0] if v.ndim >= 1 and v.shape[0] == 1 else v) for k, v in squeezed.items()}
    if names is not None:
        missing = [n for n in names if n not in squeezed]
        if missing:
            raise ValueError(f"detector outputs {sorted(squeezed)} lack {missing}")
        boxes, scores = squeezed[names[0]], squeezed[names[1]]
        labels = None
    else:
        by_name = {k.lower(): v for k, v in squeezed.items()}
        boxes, scores, labels = by_name.get("boxes"), by_name.get("scores"), by_name.get("labels")
        if boxes is None:
            candidates = [v for v in squeezed.values() if v.ndim == 2 and v.shape[1] >= 4]
            if len(candidates) != 1:
                shapes = {k: v.shape for k, v in squeezed.items()}
                raise ValueError(f"cannot tell the boxes output among {shapes}; pass output_names=(boxes, scores)")
            boxes = candidates[0]
        if scores is None and boxes.shape[1] == 4:
            candidates = [v for v in squeezed.values() if v.ndim == 1 and v.dtype.kind == "f" and len(v) == len(boxes)]
            if len(candidates) != 1:
                shapes = {k: v.shape for k, v in squeezed.items()}
                raise ValueError(f"cannot tell the scores output among {shapes}; pass output_names=(boxes, scores)")
            scores = candidates[0]
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"detector boxes must be (n, 4) or (n, 5+), got shape {boxes.shape}")
    if scores is None:
        scores = boxes[:, 4]
    scores = np.asarray(scores, np.float32)
    if scores.ndim == 2:  # per-class scores (n, classes): the best class
        scores = scores.max(axis=1)
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"detector gave {boxes.shape[0]} boxes but scores of shape {scores.shape}")
    return boxes[:, :4], scores, None if labels is None else np.asarray(labels).reshape(-1)
