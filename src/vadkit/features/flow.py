"""Dense optical flow per frame with OpenCV (DIS by default, Farneback as an option), cached per video.

Convention (one flow field per frame, ``(N, H, W, 2)``, ``[..., 0] = dx``, ``[..., 1] = dy`` in pixels of the
frame's own size):

- frame ``t < N-1`` gets the forward flow ``t -> t+1`` (as VEC / STATE, docs/seed-systems.md §5.2);
- the last frame gets ``N-2 -> N-1``, i.e. a copy of frame ``N-2``'s field (as VEC);
- the first frame gets ``0 -> 1`` like every other frame. VEC paired frame 0 with itself and gave it zero flow
  (§5.10 item 5); that is fixed here. A one-frame video gets zero flow.

When flow is computed at a reduced size (``FlowSettings.size``), it is resized back to the frame size **and the
displacements are rescaled** to frame pixels (VEC left FlowNet2's 512x384-pixel units in place; also fixed).

Caching: :func:`flow_for_video` writes ``<cache_dir>/<video>-<hash>.flow.npy`` (float16 ``(N, H, W, 2)``)
frame by frame into a memory-mapped temporary file, renames it when complete, and returns it memory-mapped
read-only, so a long video never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from vadkit.io.files import atomic_path, content_stamp, safe_name
from vadkit.io import VideoSource, open_video, to_gray

__all__ = ["FlowSettings", "compute_flow", "flow_cache_file", "flow_for_video", "iter_flow", "pair_flow"]

CACHE_VERSION = 1
_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


@dataclass(frozen=True)
class FlowSettings:
    """How flow is computed.

    Attributes:
        method: ``"dis"`` (OpenCV DIS, default) or ``"farneback"``.
        preset: DIS preset, ``"ultrafast"``, ``"fast"`` or ``"medium"`` (default).
        size: optional ``(width, height)`` to compute at; the result is brought back to the frame size.
        pyr_scale, levels, winsize, iterations, poly_n, poly_sigma: Farneback parameters (OpenCV's usual values).
    """

    method: str = "dis"
    preset: str = "medium"
    size: tuple[int, int] | None = None
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def __post_init__(self) -> None:
        if self.method not in ("dis", "farneback"):
            raise ValueError(f"flow method must be 'dis' or 'farneback', got {self.method!r}")
        if self.method == "dis" and self.preset not in _DIS_PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(_DIS_PRESETS)}, got {self.preset!r}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ValueError(f"size must be (width, height) with positive values, got {self.size!r}")


def _flow_function(settings: FlowSettings) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``(gray0, gray1) -> flow (H, W, 2) float32`` for uint8 gray images of one size."""
    if settings.method == "dis":
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[settings.preset])
        return lambda a, b: dis.calc(a, b, None)
    s = settings
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, s.pyr_scale, s.levels, s.winsize, s.iterations,
                                                     s.poly_n, s.poly_sigma, 0)


def pair_flow(first: np.ndarray, second: np.ndarray, settings: FlowSettings = FlowSettings(),
              _fn: Callable | None = None) -> np.ndarray:
    """Flow ``first -> second`` as float32 ``(H, W, 2)`` in pixels of the input size (RGB or gray uint8 frames)."""
    fn = _fn or _flow_function(settings)
    a, b = to_gray(first), to_gray(second)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in size: {a.shape} vs {b.shape}")
    height, width = a.shape
    if settings.size is None or tuple(settings.size) == (width, height):
        return fn(a, b)
    small_w, small_h = settings.size
    flow = fn(cv2.resize(a, (small_w, small_h), interpolation=cv2.INTER_AREA),
              cv2.resize(b, (small_w, small_h), interpolation=cv2.INTER_AREA))  # (h, w, 2) in small pixels
    flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)  # (H, W, 2), still small-pixel units
    flow[..., 0] *= width / small_w
    flow[..., 1] *= height / small_h
    return flow


def iter_flow(frames: Iterable[np.ndarray], settings: FlowSettings = FlowSettings()) -> Iterator[np.ndarray]:
    """Yield one float32 ``(H, W, 2)`` field per frame, in order, following the module's convention.

    Frame ``t`` gets ``t -> t+1``; the last frame repeats ``N-2 -> N-1``; a single frame gets zeros. Keeps two
    frames in memory.
    """
    fn = _flow_function(settings)
    iterator = iter(frames)
    try:
        previous = next(iterator)
    except StopIteration:
        return
    flow = None
    for current in iterator:
        flow = pair_flow(previous, current, settings, fn)
        yield flow
        previous = current
    if flow is None:
        height, width = np.asarray(previous).shape[:2]
        flow = np.zeros((height, width, 2), np.float32)
    yield flow


def compute_flow(video: str | os.PathLike | VideoSource | np.ndarray,
                 settings: FlowSettings = FlowSettings()) -> np.ndarray:
    """Flow of a whole (short) video in memory: float32 ``(N, H, W, 2)``; long videos: :func:`flow_for_video`."""
    frames = video if isinstance(video, np.ndarray) else _source(video).frames()
    fields = list(iter_flow(frames, settings))
    if not fields:
        raise ValueError("the video has no frames")
    return np.stack(fields)


def _source(video) -> VideoSource:
    return video if isinstance(video, VideoSource) else open_video(video)


def flow_cache_file(video: str | os.PathLike | VideoSource, cache_dir: str | os.PathLike,
                    settings: FlowSettings = FlowSettings()) -> Path:
    """Where :func:`flow_for_video` keeps a video's flow (the name hashes path, content stamp, length, size and
    settings)."""
    source = _source(video)
    record = dict(version=CACHE_VERSION, video=str(Path(source.path).resolve()), frames=source.num_frames,
                  size=[source.width, source.height], settings=asdict(settings), stamp=content_stamp(source.path))
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{safe_name(source.path.stem or source.path.name)}-{key}.flow.npy"


def flow_for_video(video: str | os.PathLike | VideoSource, cache_dir: str | os.PathLike,
                   settings: FlowSettings = FlowSettings()) -> np.ndarray:
    """A video's flow, computed once and cached: read-only memory map, float16 ``(N, H, W, 2)``.

    Args:
        video: a video file, frame folder or open :class:`~vadkit.io.VideoSource`.
        cache_dir: folder of the cache files (created when missing).
        settings: :class:`FlowSettings`; other settings give another cache file.
    """
    source = _source(video)
    target = flow_cache_file(source, cache_dir, settings)
    if not target.exists():
        shape = (source.num_frames, source.height, source.width, 2)
        with atomic_path(target, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
            count = 0
            for t, field in enumerate(iter_flow(source.frames(), settings)):
                if field.shape != shape[1:]:
                    raise ValueError(f"{source.path}: frame {t} gave flow {field.shape}, expected {shape[1:]}")
                out[t] = field  # float32 -> float16
                count += 1
            if count != shape[0]:
                raise ValueError(f"{source.path}: decoded {count} frames, expected {shape[0]}")
            out.flush()
            del out
    flow = np.load(target, mmap_mode="r")
    if flow.dtype != np.float16 or flow.ndim != 4 or flow.shape[0] != source.num_frames:
        raise ValueError(f"{target}: expected float16 ({source.num_frames}, H, W, 2), found {flow.dtype} {flow.shape}")
    return flow
