"""Box sources: where an object detector's per-frame boxes come from, one interface for STATE and the objects
detector.

A :class:`BoxSource` is made by name with :func:`make_box_source` (a registry, :data:`BOX_SOURCES`):

==============  =================================================================================================
``motion``      VEC's motion boxes (frame differences)
``background``  what differs from a still camera's empty scene: the video's median frame, or in a stream a running
                median carried from segment to segment (:class:`~vadkit.features.boxes.regions.RunningBackground`)
``vec``         a benchmark's precomputed per-split box files (:class:`~vadkit.features.boxes.files.SplitBoxFiles`);
                a video outside them falls back to motion boxes, with one warning per source
``onnx``        a user's ONNX detector (:class:`~vadkit.features.boxes.box_detectors.OnnxDetector`) + ``fallback``
``hog``         OpenCV's HOG people detector (:class:`~vadkit.features.boxes.box_detectors.HogPeopleDetector`)
                + ``fallback``
``yolox``       the YOLOX-Nano shipped with vadkit (:class:`~vadkit.features.yolox.YoloxDetector`) + ``fallback``
==============  =================================================================================================

Use: ``source.for_video(video_id, path, num_frames)`` gives the source that serves one video (itself, or for box
files the file's slice or the fallback); its ``kind``, ``identity`` and ``cache_options()`` say what its boxes depend
on (for a detector's own cache keys); ``boxes(video, cache_root, stream)`` computes them, caching under
``cache_root / "boxes"`` (and ``"detections"``). ``stream`` is a dict a caller keeps per live stream (see
:meth:`vadkit.detectors.Detector.streaming`): a source that carries state between a stream's segments keeps it
there (``running_state``), and nothing else does.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from vadkit.features.boxes.core import Boxes, box_thresholds
from vadkit.features.boxes.files import SplitBoxFiles
from vadkit.features.boxes.regions import RunningBackground
from vadkit.features.boxes.video import detected_boxes, extract_boxes
from vadkit.io import VideoSource
from vadkit.registry import Registry

__all__ = ["BOX_SOURCES", "BUILT_IN_DETECTORS", "BoxSource", "FALLBACKS", "box_cache_root", "box_source_args",
           "make_box_source", "register_box_source"]

CACHE_HOME = "~/.cache/vadkit"
FALLBACKS = ("motion", "background", "none")  # what boxes the moving regions a detector's boxes leave uncovered
BUILT_IN_DETECTORS = ("hog", "yolox")  # person detectors that ship with vadkit or OpenCV, named instead of a file
RUNNING = "background"  # the key of a stream's running background in its state dict


def box_cache_root(cache_dir: str | os.PathLike | None, detector: str) -> Path:
    """Where a detector keeps its per-video caches (boxes, detections, flow, ...): ``cache_dir`` (``~`` expanded), or
    ``~/.cache/vadkit/<detector>`` when none is given."""
    return Path(os.path.expanduser(str(cache_dir or f"{CACHE_HOME}/{detector}")))


def box_source_args(box_detector: str | os.PathLike) -> dict:
    """The detector arguments for a person/object detector named on the command line: a built-in one by name
    (``hog``: OpenCV's people detector; ``yolox``: the YOLOX-Nano shipped with vadkit), or an ONNX file
    (``boxes: onnx``). Another detector than YOLOX starts from its own options, not the declared YOLOX ones."""
    name = str(box_detector)
    if name in BUILT_IN_DETECTORS and not Path(name).is_file():
        return {"boxes": name} if name == "yolox" else {"boxes": name, "detector_options": {}}
    return {"boxes": "onnx", "detector_file": str(Path(name).resolve()), "detector_options": {}}


class BoxSource:
    """Per-frame boxes of a video (see the module docstring).

    Attributes:
        kind: the source's name (what caches record as ``boxes``).
        identity: what the boxes depend on besides the video: the thresholds' name, the box file's name or the
            detector's identity.
        runs_detector: whether it runs an object detector (with regions as fallback).
    """

    kind = ""
    runs_detector = False

    def __init__(self, thresholds="ped2") -> None:
        self.thresholds = thresholds
        box_thresholds(thresholds)  # raises for an unknown dataset name

    @property
    def identity(self) -> str:
        return str(self.thresholds)

    def cache_options(self) -> dict:
        """Settings beyond ``kind`` and ``identity`` the boxes depend on (only those off their defaults, so that
        cache keys made before a setting existed stay valid)."""
        return {}

    def for_video(self, video_id: str, path, num_frames: int) -> "BoxSource":
        """The source that serves this video (itself, except for box files)."""
        return self

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        """One float32 ``(n_t, 4)`` array per frame of ``video``."""
        raise NotImplementedError


BOX_SOURCES: Registry[Callable[..., BoxSource]] = Registry("box source")
register_box_source = BOX_SOURCES.register


def running_state(stream: dict | None) -> RunningBackground | None:
    """A stream's running background (made on its first segment), or ``None`` outside a stream."""
    return None if stream is None else stream.setdefault(RUNNING, RunningBackground())


class RegionBoxes(BoxSource):
    """Regions only: ``motion`` (frame differences) or ``background`` (differences from the empty scene)."""

    def __init__(self, regions: str, thresholds="ped2") -> None:
        super().__init__(thresholds)
        self.kind = regions

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        return extract_boxes(video, self.thresholds, cache_dir=cache_root / "boxes", regions=self.kind,
                             running=running_state(stream) if self.kind == RUNNING else None)


class GivenBoxes(BoxSource):
    """Boxes already known for one video (a box file's slice)."""

    def __init__(self, kind: str, identity: str, found: list[Boxes]) -> None:
        self.kind, self._identity, self.found = kind, identity, found

    @property
    def identity(self) -> str:
        return self._identity

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        return self.found


class BoxFiles(BoxSource):
    """A benchmark's per-split box files; videos outside them get ``fallback``'s boxes, with one warning."""

    kind = "vec"

    def __init__(self, boxes_dir, box_file: str, fallback: BoxSource) -> None:
        if not boxes_dir:
            raise ValueError("boxes='vec' needs boxes_dir, the folder of the per-split box files")
        self.boxes_dir, self.box_file, self.fallback = boxes_dir, box_file, fallback
        self.files = SplitBoxFiles(boxes_dir, box_file)
        self._warned = False

    @property
    def identity(self) -> str:
        return self.box_file

    def for_video(self, video_id: str, path, num_frames: int) -> BoxSource:
        found = self.files.boxes_for(video_id, path, num_frames)
        if found is not None:
            return GivenBoxes(self.kind, self.box_file, found)
        if not self._warned:
            warnings.warn(f"video {video_id}: no precomputed boxes for it (not a '<split>/<video>' of a split with a "
                          f"box file in {self.boxes_dir}); using {self.fallback.kind} boxes for such videos",
                          stacklevel=3)
            self._warned = True
        return self.fallback

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        raise TypeError("box files serve a video through for_video(video_id, path, num_frames)")


class DetectorBoxes(BoxSource):
    """An object detector's boxes (filtered by the thresholds' score and area, covered ones removed) on every
    ``detect_every``-th frame, plus ``fallback`` regions where it found nothing. The detector is made on first use."""

    runs_detector = True

    def __init__(self, kind: str, make_detector: Callable[[], object], thresholds="ped2", fallback: str = "motion",
                 detect_every: int = 1) -> None:
        super().__init__(thresholds)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        self.kind, self.fallback, self.detect_every = kind, fallback, detect_every
        self._make, self._detector = make_detector, None

    @property
    def detector(self):
        if self._detector is None:
            self._detector = self._make()
        return self._detector

    @property
    def identity(self) -> str:
        return self.detector.identity

    def cache_options(self) -> dict:
        options = {}
        if self.detect_every != 1:
            options["detect_every"] = self.detect_every
        if self.fallback != "motion":  # (motion-fallback caches keep their key)
            options["fallback"] = self.fallback
        return options

    def _running(self, stream: dict | None) -> RunningBackground | None:
        return running_state(stream) if self.fallback == RUNNING else None

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        return extract_boxes(video, self.thresholds, detector=self.detector, cache_dir=cache_root / "boxes",
                             regions=self.fallback, detect_every=self.detect_every, running=self._running(stream))


class ConfidentDetectorBoxes(DetectorBoxes):
    """A detector that applies its own confidence floor (YOLOX): its boxes are kept as found (cached apart under
    ``detections``, so that settings of the regions share one detection pass), then ``fallback`` regions."""

    def boxes(self, video: VideoSource, cache_root: Path, stream: dict | None = None) -> list[Boxes]:
        found = detected_boxes(video, self.detector, detect_every=self.detect_every,
                               cache_dir=cache_root / "detections")
        return extract_boxes(video, self.thresholds, appearance=found, cache_dir=cache_root / "boxes",
                             regions=self.fallback, running=self._running(stream))


@register_box_source("motion")
@register_box_source("background")
def _regions(kind: str, thresholds="ped2", **_) -> BoxSource:
    return RegionBoxes(kind, thresholds)


@register_box_source("vec")
def _box_files(kind: str, thresholds="ped2", boxes_dir=None, box_file: str = "ped2_{split}_boxes.npz",
               **_) -> BoxSource:
    return BoxFiles(boxes_dir, box_file, fallback=RegionBoxes("motion", thresholds))


@register_box_source("onnx")
def _onnx(kind: str, thresholds="ped2", detector_file=None, detector_options=None, fallback="motion",
          detect_every=1, **_) -> BoxSource:
    if not detector_file:
        raise ValueError("boxes='onnx' needs detector_file, an ONNX object detector that outputs boxes and scores "
                         "after NMS (see vadkit.features.boxes.box_detectors.OnnxDetector)")

    def make():
        from vadkit.features.boxes.box_detectors import OnnxDetector

        return OnnxDetector(os.path.expanduser(detector_file), **(detector_options or {}))

    return DetectorBoxes(kind, make, thresholds, fallback, detect_every)


@register_box_source("hog")
def _hog(kind: str, thresholds="ped2", detector_options=None, fallback="motion", detect_every=1, **_) -> BoxSource:
    def make():
        from vadkit.features.boxes.box_detectors import HogPeopleDetector

        return HogPeopleDetector(**(detector_options or {}))

    return DetectorBoxes(kind, make, thresholds, fallback, detect_every)


@register_box_source("yolox")
def _yolox(kind: str, thresholds="ped2", detector_options=None, fallback="motion", detect_every=1, threads=None,
           device: str = "cpu", runtime: str | None = None, **_) -> BoxSource:
    def make():
        from vadkit.features.yolox import YoloxDetector

        options = {"threads": threads, "device": device, **(detector_options or {})}
        if runtime is not None:
            options["runtime"] = runtime
        return YoloxDetector(**options)

    return ConfidentDetectorBoxes(kind, make, thresholds, fallback, detect_every)


def make_box_source(kind: str, **options) -> BoxSource:
    """The box source ``kind`` (one of :data:`BOX_SOURCES`) with its options (each source takes what it needs):
    ``thresholds``; ``boxes_dir``, ``box_file`` (``vec``); ``detector_file`` (``onnx``), ``detector_options``,
    ``fallback``, ``detect_every`` (the detector sources); ``threads``, ``device``, ``runtime`` (``yolox``)."""
    if kind not in BOX_SOURCES:
        raise ValueError(f"boxes must be one of {tuple(BOX_SOURCES)}, got {kind!r}")
    every = options.get("detect_every", 1)
    if int(every) != every or every < 1:
        raise ValueError(f"detect_every must be a whole number >= 1, got {every!r}")
    return BOX_SOURCES.get(kind)(kind, **options)
