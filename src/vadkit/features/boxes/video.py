"""Whole videos' boxes, streamed frame by frame and cached per video (``.npz``, written atomically):
:func:`extract_boxes` (appearance boxes from a detector or given per frame, plus regions) and :func:`detected_boxes`
(a detector's own boxes alone)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from vadkit.features.boxes.core import BoxThresholds, Boxes, as_boxes, box_thresholds
from vadkit.features.boxes.files import load_boxes, save_boxes
from vadkit.features.boxes.regions import (BACKGROUND_DIFFERENCE, BACKGROUND_SAMPLES, REGIONS, RunningBackground,
                                           frame_boxes, frame_contexts, median_background)
from vadkit.io import VideoSource, open_video
from vadkit.io.files import content_stamp, safe_name

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # RGB frame -> (boxes (n, 4), scores (n,))
CACHE_VERSION = 1


def extract_boxes(video: str | os.PathLike | VideoSource, thresholds: str | BoxThresholds = "ped2", *,
                  detector: Detector | None = None, appearance: Sequence[np.ndarray] | None = None,
                  cache_dir: str | os.PathLike | None = None, regions: str = "motion",
                  detect_every: int = 1, running: RunningBackground | None = None) -> list[Boxes]:
    """Boxes of every frame of a video (appearance + motion), cached per video when ``cache_dir`` is given.

    Args:
        video: a video file, frame folder or an open :class:`~vadkit.io.VideoSource` (RGB frames).
        thresholds: dataset name or :class:`BoxThresholds`.
        detector: a callable ``frame (H, W, 3) uint8 RGB -> (boxes (n, 4), scores (n,))``, e.g.
            :class:`~vadkit.features.boxes.box_detectors.OnnxDetector`. Its detections are filtered with ``τ_s`` and ``A_min``.
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
        running: with ``regions="background"``: a stream's :class:`~vadkit.features.boxes.regions.RunningBackground`
            in place of the video's own median (the video is one segment of a stream: its frames are fed to the
            running background first). Such boxes depend on the stream's past, so they are not cached.

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
    running = running if regions == "background" else None
    cache_file = None
    if cache_dir is not None and running is None:
        name = safe_name(source.path.stem or source.path.name)
        key = _cache_key(source, th, detector, appearance, regions, detect_every)
        cache_file = Path(cache_dir) / f"{name}-{key}.npz"
        if cache_file.exists():
            cached = load_boxes(cache_file)
            if len(cached) == source.num_frames:
                return cached
    background = None
    if regions == "background":
        background = median_background(source) if running is None else running.update(source)
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
