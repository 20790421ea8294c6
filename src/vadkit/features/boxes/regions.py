"""Regions that no detector gave: VEC's motion boxes (frame differences over ``t-1, t, t+1``), background boxes
(differences from a still camera's empty scene: a video's median frame, or for a live stream a running median,
:class:`RunningBackground`), and :func:`frame_boxes`, which joins a frame's appearance boxes and its regions.

Difference from VEC (a fix, see docs/seed-systems.md §5.10): the frame differences are summed in ``int16``, not in
``uint8`` where the sum wrapped modulo 256.
"""

from __future__ import annotations

import collections
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from vadkit.features.boxes.core import (BoxThresholds, Boxes, as_boxes, box_areas, box_thresholds,
                                        filter_detections, remove_covered_boxes)
from vadkit.io import VideoSource, to_gray

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


RUNNING_EVERY = 5  # a running background samples every 5th frame of a stream (50 samples: 10 s at 25 frames/s)


class RunningBackground:
    """A live camera's empty scene, where there is no whole video to take a median of: the per-pixel median of a
    bounded ring of the stream's recent grey frames (every ``every``-th frame, the latest ``samples`` of them), fed
    segment by segment (:meth:`update`) and carried from one segment to the next. Memory: at most ``samples`` grey
    frames (``samples * H * W`` bytes); a frame of another size (the source changed) empties the ring first.

    An object still for most of the ring's span becomes background, as with :func:`median_background`.
    """

    def __init__(self, samples: int = BACKGROUND_SAMPLES, every: int = RUNNING_EVERY) -> None:
        if samples < 1 or every < 1:
            raise ValueError(f"samples and every must be >= 1, got {samples} and {every}")
        self.every = int(every)
        self.ring: collections.deque = collections.deque(maxlen=int(samples))  # grey (H, W) uint8 frames
        self.seen = 0  # frames offered so far (the sampling clock runs across segments)

    def add(self, frame: np.ndarray) -> None:
        """Offer the stream's next frame (RGB or grey); every ``every``-th one enters the ring."""
        if self.seen % self.every == 0:
            grey = to_gray(frame)
            if self.ring and self.ring[0].shape != grey.shape:
                self.ring.clear()
            self.ring.append(grey)
        self.seen += 1

    def update(self, video: VideoSource) -> np.ndarray:
        """Feed a segment's frames, then the background as it stands: uint8 ``(H, W)``."""
        for frame in video.frames():
            self.add(frame)
        return self.background(video.path)

    def background(self, source="the stream") -> np.ndarray:
        if not self.ring:
            raise ValueError(f"{source}: no frames yet to take a running background from")
        return np.median(np.stack(self.ring), axis=0).astype(np.uint8)  # (H, W)

    @property
    def nbytes(self) -> int:
        return sum(frame.nbytes for frame in self.ring)


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
