"""Spatio-temporal object cubes (STCs) for STATE: per box, 7 frames of 32x32 RGB patches and the matching flow.

For a box of frame ``t`` the cube spans 7 consecutive frames of the same video, ``t-3 .. t+3``, shifted inward at
the video's ends so that it always holds 7 real frames ('elastic' border, :func:`elastic_window`; ``t`` is then not
in the centre). The box is fixed over the 7 frames: ``x1, y1, x2, y2 = ceil(box)`` (clipped to the frame, at least
one pixel), each crop resized to 32x32 bilinearly. Flow patches are cropped and resized the same way; their values
stay in frame pixels (not rescaled to the patch), as in STATE.

Layout differences from STATE, both deliberate: patches are **RGB** (vadkit reads RGB; STATE's were BGR) and stored
channel-first per frame, ``(7, 3, 32, 32)``, so a cube flattens to STATE's frame-major ``(21, 32, 32)`` input by a
reshape.

On disk (:class:`CubeStore`), one set of files per video, memory-mapped when read::

    <root>/cubes.json            manifest: cube geometry and, per finished video, its key and cube count
    <root>/<key>.raw.npy         uint8   (n, 7, 3, 32, 32)   RGB patches
    <root>/<key>.flow.npy        float16 (n, 7, 2, 32, 32)   flow patches (dx, dy)
    <root>/<key>.index.npz       frame int32 (n,), box int32 (n,), xyxy float32 (n, 4), window int32 (n,),
                                 motion float32 (n,) = mean over frames of Σ flow² (STATE's motion filter)

:class:`CubeDataset` streams cubes to training from the memory maps without loading a store into RAM.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vadkit.features.flow import FlowSettings, flow_for_video
from vadkit.io.files import atomic_path
from vadkit.features.boxes.core import as_boxes
from vadkit.io.files import atomic_write_json, safe_name
from vadkit.io import VideoSource, open_video

__all__ = [
    "CUBE_FRAMES",
    "PATCH_SIZE",
    "CubeDataset",
    "CubeIndex",
    "CubeStore",
    "build_cube_store",
    "crop_patches",
    "elastic_window",
    "video_cubes",
]

CUBE_FRAMES = 7
PATCH_SIZE = 32
MANIFEST = "cubes.json"
STORE_VERSION = 1


def elastic_window(t: int, num_frames: int, length: int = CUBE_FRAMES) -> int:
    """First frame of the ``length``-frame window of frame ``t``: ``t - length // 2``, shifted to lie in the video.

    Returns ``start`` with ``0 <= start <= num_frames - length``; the window is ``start .. start + length - 1`` and
    contains ``t``. A video shorter than ``length`` gives 0 (its frames are then repeated at the end, see
    :func:`window_indices`).
    """
    if not 0 <= t < num_frames:
        raise IndexError(f"frame {t} outside the video's {num_frames} frames")
    return max(0, min(t - length // 2, num_frames - length))


def window_indices(t: int, num_frames: int, length: int = CUBE_FRAMES) -> np.ndarray:
    """The ``length`` frame indices of frame ``t``'s window (last frame repeated if the video is too short)."""
    start = elastic_window(t, num_frames, length)
    return np.minimum(np.arange(start, start + length), num_frames - 1)


def _pixel_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """``ceil`` of a box, clipped to the frame, at least 1 px wide and high: ``x1, y1, x2, y2`` (exclusive ends)."""
    x1, y1, x2, y2 = (math.ceil(float(v)) for v in box[:4])
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    return x1, y1, x2, y2


def crop_patches(images: np.ndarray, box: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """Crop one box out of each image and resize it bilinearly to ``size x size``.

    Args:
        images: ``(l, H, W, C)`` (uint8 frames or float flow).
        box: ``[x1, y1, x2, y2]`` in pixels (``ceil``-ed, clipped).

    Returns:
        ``(l, C, size, size)``, dtype of ``images`` (float16 input gives float16).
    """
    l, height, width, channels = images.shape
    x1, y1, x2, y2 = _pixel_box(box, width, height)
    crops = images[:, y1:y2, x1:x2]  # (l, h, w, C)
    work = crops.astype(np.float32) if crops.dtype == np.float16 else crops
    out = np.stack([cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=cv2.INTER_LINEAR)
                    .reshape(size, size, channels) for c in work])  # (l, size, size, C)
    return out.transpose(0, 3, 1, 2).astype(images.dtype, copy=False)  # (l, C, size, size)


@dataclass
class VideoCubes:
    """The cubes of one frame: ``raw`` uint8 ``(n, l, 3, s, s)``, ``flow`` float16 ``(n, l, 2, s, s)``."""

    frame: int
    window: int
    boxes: np.ndarray
    raw: np.ndarray
    flow: np.ndarray


def video_cubes(frames: Iterable[np.ndarray], num_frames: int, boxes: Sequence[np.ndarray], flow: np.ndarray,
                length: int = CUBE_FRAMES, size: int = PATCH_SIZE) -> Iterator[VideoCubes]:
    """Stream the cubes of a video, frame by frame, holding only ``length`` decoded frames.

    Args:
        frames: the video's RGB frames ``(H, W, 3)`` uint8, in order.
        num_frames: their number ``N``.
        boxes: one ``(n_t, 4)`` box array per frame.
        flow: ``(N, H, W, 2)`` (e.g. the float16 memory map of :func:`~vadkit.features.flow.flow_for_video`).
    """
    if len(boxes) != num_frames:
        raise ValueError(f"got boxes for {len(boxes)} frames, the video has {num_frames}")
    if flow.shape[0] != num_frames or flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be ({num_frames}, H, W, 2), got {flow.shape}")
    buffer: dict[int, np.ndarray] = {}
    iterator = iter(frames)
    decoded = 0
    for t in range(num_frames):
        indices = window_indices(t, num_frames, length)
        while decoded <= indices[-1]:
            try:
                buffer[decoded] = next(iterator)
            except StopIteration:
                raise ValueError(f"the video ended after {decoded} frames, expected {num_frames}") from None
            decoded += 1
        for old in [k for k in buffer if k < indices[0]]:
            del buffer[old]
        frame_boxes = as_boxes(boxes[t], f"boxes of frame {t}")
        window = np.stack([buffer[i] for i in indices])  # (l, H, W, 3)
        if window.shape[1:3] != flow.shape[1:3]:
            raise ValueError(f"frames are {window.shape[1:3]} but flow is {flow.shape[1:3]}")
        flow_window = np.asarray(flow[indices[0]:indices[-1] + 1])[indices - indices[0]]  # (l, H, W, 2)
        raw = np.zeros((len(frame_boxes), length, 3, size, size), np.uint8)
        flows = np.zeros((len(frame_boxes), length, 2, size, size), np.float16)
        for k, box in enumerate(frame_boxes):
            raw[k] = crop_patches(window, box, size)
            flows[k] = crop_patches(flow_window, box, size)
        yield VideoCubes(t, int(indices[0]), frame_boxes, raw, flows)


@dataclass
class CubeIndex:
    """Where every cube of a store comes from; arrays of length ``n`` (cubes in store order)."""

    video: np.ndarray  # int32, position in CubeStore.videos
    frame: np.ndarray  # int32, frame index in its video
    box: np.ndarray  # int32, box index within the frame's box list
    xyxy: np.ndarray  # float32 (n, 4)
    window: np.ndarray  # int32, first frame of the cube
    motion: np.ndarray  # float32, mean over the cube's frames of Σ flow²

    def __len__(self) -> int:
        return len(self.frame)


class CubeStore:
    """A folder of cubes, one memory-mapped set of files per video (see the module docstring).

    Args:
        root: the folder (created on the first :meth:`add_video`).
        length, size: frames per cube and patch size; a store made with others is refused.
    """

    def __init__(self, root: str | os.PathLike, length: int = CUBE_FRAMES, size: int = PATCH_SIZE) -> None:
        self.root = Path(root)
        self.length, self.size = length, size
        self._manifest = self._read_manifest()

    # -- manifest -------------------------------------------------------------------------------------------------
    def _read_manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.exists():
            return dict(version=STORE_VERSION, length=self.length, size=self.size, videos=[])
        manifest = json.loads(path.read_text())
        found = (manifest.get("version"), manifest.get("length"), manifest.get("size"))
        if found != (STORE_VERSION, self.length, self.size):
            raise ValueError(f"{path}: store has (version, length, size) = {found}, expected "
                             f"{(STORE_VERSION, self.length, self.size)}")
        return manifest

    @property
    def videos(self) -> list[str]:
        """Keys of the finished videos, in store order."""
        return [v["key"] for v in self._manifest["videos"]]

    def __contains__(self, key: str) -> bool:
        return key in self.videos

    def count(self, key: str) -> int:
        return next(v["count"] for v in self._manifest["videos"] if v["key"] == key)

    def __len__(self) -> int:
        return sum(v["count"] for v in self._manifest["videos"])

    def _file(self, key: str, kind: str) -> Path:
        return self.root / f"{safe_name(key)}.{kind}"

    # -- writing --------------------------------------------------------------------------------------------------
    def add_video(self, key: str, video: str | os.PathLike | VideoSource, boxes: Sequence[np.ndarray],
                  flow: np.ndarray) -> int:
        """Cut and store the cubes of one video; returns its number of cubes. A key already stored is kept as is.

        Args:
            key: a unique name for the video (e.g. ``"test/01"``).
            video: the video (file, frame folder or source), read as RGB.
            boxes: one ``(n_t, 4)`` array per frame.
            flow: ``(N, H, W, 2)`` flow of the video.
        """
        if key in self:
            return self.count(key)
        source = video if isinstance(video, VideoSource) else open_video(video)
        count = int(sum(len(as_boxes(b)) for b in boxes))
        l, s = self.length, self.size
        frame, box, xyxy, window, motion = [], [], [], [], []
        raw_file, flow_file = self._file(key, "raw.npy"), self._file(key, "flow.npy")
        with atomic_path(raw_file, ".npy") as raw_tmp, atomic_path(flow_file, ".npy") as flow_tmp:
            raw_out = np.lib.format.open_memmap(raw_tmp, mode="w+", dtype=np.uint8, shape=(count, l, 3, s, s))
            flow_out = np.lib.format.open_memmap(flow_tmp, mode="w+", dtype=np.float16, shape=(count, l, 2, s, s))
            at = 0
            for cubes in video_cubes(source.frames(), source.num_frames, boxes, flow, l, s):
                n = len(cubes.boxes)
                raw_out[at:at + n], flow_out[at:at + n] = cubes.raw, cubes.flow
                flow32 = cubes.flow.astype(np.float32)
                motion.append((flow32 ** 2).sum(axis=(2, 3, 4)).mean(axis=1))  # (n,) mean_l Σ_{c,h,w} flow²
                frame.append(np.full(n, cubes.frame, np.int32))
                box.append(np.arange(n, dtype=np.int32))
                xyxy.append(cubes.boxes)
                window.append(np.full(n, cubes.window, np.int32))
                at += n
            raw_out.flush()
            flow_out.flush()
            del raw_out, flow_out
            with atomic_path(self._file(key, "index.npz"), ".npz") as index_tmp:
                np.savez(index_tmp, frame=_cat(frame, np.int32), box=_cat(box, np.int32),
                         xyxy=_cat(xyxy, np.float32, (0, 4)), window=_cat(window, np.int32),
                         motion=_cat(motion, np.float32))
        self._manifest["videos"].append(dict(key=key, count=count, num_frames=source.num_frames,
                                             source=str(source.path)))
        atomic_write_json(self.root / MANIFEST, self._manifest)
        return count

    # -- reading --------------------------------------------------------------------------------------------------
    def raw(self, key: str) -> np.ndarray:
        """Memory map uint8 ``(n, l, 3, s, s)`` of a video's RGB cubes."""
        return np.load(self._file(key, "raw.npy"), mmap_mode="r")

    def flow(self, key: str) -> np.ndarray:
        """Memory map float16 ``(n, l, 2, s, s)`` of a video's flow cubes."""
        return np.load(self._file(key, "flow.npy"), mmap_mode="r")

    def video_index(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self._file(key, "index.npz"), allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def index(self, videos: Sequence[str] | None = None) -> CubeIndex:
        """The :class:`CubeIndex` of the given videos (default all), in store order."""
        keys = self.videos if videos is None else list(videos)
        missing = [k for k in keys if k not in self]
        if missing:
            raise KeyError(f"videos not in the store {self.root}: {missing}")
        parts = [self.video_index(k) for k in keys]
        positions = [self.videos.index(k) for k in keys]
        return CubeIndex(
            video=_cat([np.full(len(p["frame"]), i, np.int32) for i, p in zip(positions, parts)], np.int32),
            frame=_cat([p["frame"] for p in parts], np.int32), box=_cat([p["box"] for p in parts], np.int32),
            xyxy=_cat([p["xyxy"] for p in parts], np.float32, (0, 4)),
            window=_cat([p["window"] for p in parts], np.int32), motion=_cat([p["motion"] for p in parts], np.float32),
        )


def _cat(parts: list[np.ndarray], dtype, empty_shape: tuple = (0,)) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(empty_shape, dtype)


def build_cube_store(root: str | os.PathLike, videos: Mapping[str, str | os.PathLike],
                     boxes: Mapping[str, Sequence[np.ndarray]], flow_dir: str | os.PathLike,
                     flow_settings: FlowSettings = FlowSettings()) -> CubeStore:
    """Compute (cached) flow and store the cubes of several videos; videos already stored are skipped.

    Args:
        root: the cube store folder.
        videos: key -> video file or frame folder.
        boxes: key -> per-frame boxes of that video (e.g. from :func:`~vadkit.features.boxes.video.extract_boxes` or
            :func:`~vadkit.features.boxes.files.split_by_video` of a box file).
        flow_dir: flow cache folder (:func:`~vadkit.features.flow.flow_for_video`).
    """
    store = CubeStore(root)
    for key, path in videos.items():
        if key in store:
            continue
        if key not in boxes:
            raise KeyError(f"no boxes given for video {key!r}")
        source = open_video(path)
        store.add_video(key, source, boxes[key], flow_for_video(source, flow_dir, flow_settings))
    return store


class CubeDataset(Dataset):
    """Cubes of a :class:`CubeStore` as training samples, read from memory maps (nothing preloaded).

    Args:
        store: a :class:`CubeStore` or its folder.
        videos: restrict to these video keys (default all).
        min_motion: keep cubes whose ``motion`` (mean over frames of Σ flow²) exceeds this; STATE uses 0, which
            drops exactly static cubes. ``None`` keeps every cube (scoring needs every box).

    Item ``i``: ``(raw, flow)`` with ``raw`` float32 ``(l*3, s, s)`` in [0, 1], frame-major channels (STATE's input
    layout), and ``flow`` float32 ``(l, 2, s, s)``. ``dataset.index`` holds the provenance of the kept cubes. Memory
    maps are opened lazily in each worker process, so a ``DataLoader`` with workers does not copy them.
    """

    def __init__(self, store: CubeStore | str | os.PathLike, videos: Sequence[str] | None = None,
                 min_motion: float | None = 0.0) -> None:
        self.store = store if isinstance(store, CubeStore) else CubeStore(store)
        self.keys = self.store.videos if videos is None else list(videos)
        full = self.store.index(self.keys)
        offsets = np.zeros(len(full), np.int64)  # row within its video's files
        for position in np.unique(full.video):
            rows = np.flatnonzero(full.video == position)
            offsets[rows] = np.arange(len(rows))
        keep = np.ones(len(full), bool) if min_motion is None else full.motion > min_motion
        self.index = CubeIndex(**{k: v[keep] for k, v in vars(full).items()})
        self.rows = offsets[keep]
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = {}  # reopen memory maps in the worker instead of pickling them
        return state

    def _arrays(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        if position not in self._maps:
            key = self.store.videos[position]
            self._maps[position] = (self.store.raw(key), self.store.flow(key))
        return self._maps[position]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        raw_map, flow_map = self._arrays(int(self.index.video[i]))
        row = int(self.rows[i])
        return _to_tensors(raw_map[row], flow_map[row])

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` stacked: raw ``(B, l*3, s, s)``, flow ``(B, l, 2, s, s)``; one read per video."""
        indices = np.asarray(indices, np.int64)
        raws, flows = [None] * len(indices), [None] * len(indices)
        videos = self.index.video[indices]
        for position in np.unique(videos):
            where = np.flatnonzero(videos == position)
            rows = self.rows[indices[where]]
            order = np.argsort(rows)  # memory maps read fastest in file order
            raw_map, flow_map = self._arrays(int(position))
            raw_rows, flow_rows = raw_map[rows[order]], flow_map[rows[order]]
            for k, j in enumerate(where[order]):
                raws[j], flows[j] = raw_rows[k], flow_rows[k]
        raw, flow = _to_tensors(np.stack(raws), np.stack(flows))
        return raw, flow

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        raw, flow = self.batch(indices)
        return list(zip(raw, flow))


def _to_tensors(raw: np.ndarray, flow: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(..., l, 3, s, s)`` -> float ``(..., l*3, s, s)`` in [0, 1]; float16 flow -> float32."""
    raw_t = torch.from_numpy(np.array(raw)).float().div_(255.0)  # np.array: a writable copy of a read-only map
    raw_t = raw_t.reshape(*raw_t.shape[:-4], -1, *raw_t.shape[-2:])  # (..., l, 3, s, s) -> (..., l*3, s, s)
    return raw_t, torch.from_numpy(np.array(flow)).float()
