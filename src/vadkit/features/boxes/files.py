"""Box files: per-frame boxes as ``.npz`` (``frame`` int32, ``xyxy`` float32 ``(n, 4)``, ``num_frames``;
:func:`save_boxes` writes it, :func:`load_boxes` reads it) or VEC's original ``.npy`` object arrays (pickles, read
with :func:`~vadkit.features.boxes.safe_pickle.load_object_array`), and :class:`SplitBoxFiles`, a benchmark's
precomputed boxes with one file per split."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from vadkit.features.boxes.core import MAX_BOX_FRAMES, Boxes, as_boxes
from vadkit.features.boxes.safe_pickle import load_object_array
from vadkit.io import open_video
from vadkit.io.files import atomic_write_bytes


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
