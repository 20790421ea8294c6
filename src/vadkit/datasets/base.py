"""Video records, the dataset base class and the checks every layout shares.

A dataset is scanned in two steps:

1. ``_scan()`` walks the layout and returns cheap :class:`VideoEntry` objects (id, split, path, video label,
   class, where the ground truth comes from). Layout errors (a missing folder, an unreadable ground-truth
   file) surface here, at construction.
2. ``videos()`` turns entries into :class:`VideoRecord` objects, counting frames (a file listing for frame
   folders, a demux for video files; memoised per file) and expanding the ground truth into one 0/1 label per
   frame. A ground truth whose length differs from the video's is an error naming the video and both counts.
"""

from __future__ import annotations

import inspect
import math
import os
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from vadkit.io import VideoNotFoundError, VideoReadError, VideoSource, list_frame_files, open_video, natural_key

SPLIT_ORDER = ("train", "val", "test")


#: limits on what a file may claim before memory is spent on it
MAX_FRAMES = 10_000_000          # a frame number or a per-frame array (about 4 days at 30 fps)
MAX_LISTED_FRAMES = 1_000_000    # frames listed one by one in a file (``a:step:b`` expanded), per file
MAX_VIDEOS = 100_000             # videos a ground-truth file may index (``TestVideoFile{k}``, cell entries)
MAX_TEXT_BYTES = 16 << 20        # a text ground-truth, list or CSV file (the real ones are under 1 MB)
MAX_JSON_BYTES = 8 << 20         # a JSON label or split file (parsed whole: every value becomes an object)
MAX_RANGES = 1_000_000           # anomalous ranges (or listed frames) one file may give, all videos together
MAX_FIELDS = 10_000              # fields on one line of a text ground-truth file
MAX_MESSAGE = 600                # characters of an error message (longer ones are cut in the middle)

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxlevel = 80, 80, 6, 4, 6, 3


def preview(value) -> str:
    """A bounded ``repr`` of a value found in a file, for error messages (long strings and lists are cut)."""
    return _REPR.repr(value)


def clip(text: str, limit: int = 80) -> str:
    """``text`` as is when short, else its first ``limit`` characters and ``...`` (names found in files)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def shorten(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut in the middle to at most about ``limit`` characters (the start and the end are kept)."""
    if len(message) <= limit:
        return message
    head, tail = limit * 3 // 4, limit // 6
    return f"{message[:head]} ... [{len(message) - head - tail} characters cut] ... {message[-tail:]}"


class DatasetError(ValueError):
    """A bad root, layout or ground truth. The message names the path and what was expected and found
    (cut to about ``MAX_MESSAGE`` characters)."""

    def __init__(self, message: object = "") -> None:
        super().__init__(shorten(str(message)))


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a dataset.

    Attributes:
        id: unique within the dataset (``"Test001"``, ``"01_0014"``, ``"Abuse028_x264"``).
        split: ``"train"`` or ``"test"`` (other names such as ``"val"`` are allowed).
        path: the video file or the folder of frames.
        num_frames: exact number of frames.
        fps: frames per second (a frame folder gets the dataset's nominal rate).
        label: 0 normal, 1 abnormal (video level).
        class_name: ``"normal"`` or the anomaly class (LAD2000: the category folder, also for its normal videos).
        frame_labels: uint8 ``(num_frames,)`` of 0/1, read-only; ``None`` where unknown (a weakly labelled
            abnormal training video).
    """

    id: str
    split: str
    path: Path
    num_frames: int
    fps: float
    label: int
    class_name: str
    frame_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if int(self.num_frames) < 1:
            raise DatasetError(f"video {self.id} ({self.path}): expected at least one frame, found {self.num_frames}")
        object.__setattr__(self, "num_frames", int(self.num_frames))
        if self.label not in (0, 1):
            raise DatasetError(f"video {self.id}: video label must be 0 or 1, got {self.label!r}")
        object.__setattr__(self, "label", int(self.label))
        if self.frame_labels is not None:
            labels = np.asarray(self.frame_labels)
            if labels.shape != (self.num_frames,):
                raise DatasetError(f"video {self.id} ({self.path}): frame labels have shape {labels.shape}, "
                                   f"the video has {self.num_frames} frames")
            if labels.size and not np.isin(labels, (0, 1)).all():
                raise DatasetError(f"video {self.id}: frame labels must be 0/1, found values {np.unique(labels)[:5]}")
            labels = labels.astype(np.uint8)  # a fresh copy we own
            labels.setflags(write=False)
            object.__setattr__(self, "frame_labels", labels)

    @property
    def num_anomalous(self) -> int | None:
        """Number of anomalous frames, ``None`` when the frame labels are unknown."""
        return None if self.frame_labels is None else int(self.frame_labels.sum())

    def open(self, **kwargs) -> VideoSource:
        """Open the video for reading: ``open_video(self.path, fps=self.fps, **kwargs)``."""
        kwargs.setdefault("fps", self.fps)
        return open_video(self.path, **kwargs)

    def __repr__(self) -> str:
        anomalous = "?" if self.frame_labels is None else self.num_anomalous
        return (f"VideoRecord(id={self.id!r}, split={self.split!r}, frames={self.num_frames}, fps={self.fps:g}, "
                f"label={self.label}, class={self.class_name!r}, anomalous={anomalous}, path='{self.path}')")


# ---------------------------------------------------------------------------------------------------------------
# ground truth sources (expanded to one label per frame once the frame count is known)
# ---------------------------------------------------------------------------------------------------------------
class GroundTruthError(DatasetError):
    """A ground-truth source does not fit the video (the dataset prefixes the video's name)."""


class GroundTruth:
    """Where a video's frame labels come from. ``labels(n)`` returns uint8 ``(n,)`` or raises
    :class:`GroundTruthError` naming both counts.

    Attributes:
        source: short description of where it comes from (``"ped2.mat, video 3"``).
        kind: the kind of source, shared by all videos labelled from one file or convention (``"ped2.mat"``);
            used to summarise agreement between two kinds.
        length: the number of frames the source itself covers, when it has one (arrays, masks); ``None`` for
            ranges, which fit any video long enough.
    """

    source: str = "ground truth"
    _kind: str | None = None

    @property
    def kind(self) -> str:
        return self._kind or self.source

    def labels(self, num_frames: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def length(self) -> int | None:
        return None


class AllNormal(GroundTruth):
    """Every frame normal (a normal video, e.g. a one-class training video)."""

    def __init__(self, source: str = "normal video", kind: str | None = None) -> None:
        self.source, self._kind = source, kind

    def labels(self, num_frames: int) -> np.ndarray:
        return np.zeros(num_frames, np.uint8)


class FrameRanges(GroundTruth):
    """Anomalous frame ranges, 0-based, start inclusive and stop exclusive (``labels[start:stop] = 1``)."""

    def __init__(self, ranges: list[tuple[int, int]], source: str, kind: str | None = None) -> None:
        self.source, self._kind = source, kind
        self.ranges = [(int(a), int(b)) for a, b in ranges]
        for start, stop in self.ranges:
            if start < 0 or stop <= start:
                raise GroundTruthError(f"{source}: invalid anomalous range [{start}, {stop}) "
                                       f"(0-based, stop exclusive; expected 0 <= start < stop)")

    def labels(self, num_frames: int) -> np.ndarray:
        out = np.zeros(num_frames, np.uint8)
        for start, stop in self.ranges:
            if stop > num_frames:
                raise GroundTruthError(f"ground truth {self.source} marks frames up to {stop} (1-based), "
                                       f"the video has {num_frames} frames")
            out[start:stop] = 1
        return out


class FrameArray(GroundTruth):
    """A per-frame array (or a function loading it on demand); nonzero means anomalous.

    Args:
        array: the labels, or a callable returning them (read lazily, once).
        source: description of the file.
        tail: ``"strict"``: the array must have exactly as many entries as the video has frames.
            ``"extend"``: an array cut to whole 16-frame snippets (length a multiple of 16, at most 16 frames
            short, as distributed with the weakly supervised codebases) is extended by repeating its last value.
    """

    def __init__(self, array: np.ndarray | Callable[[], np.ndarray], source: str, tail: str = "strict",
                 kind: str | None = None) -> None:
        if tail not in ("strict", "extend"):
            raise ValueError(f"tail must be 'strict' or 'extend', got {tail!r}")
        self._array = None if callable(array) else _as_binary(array, source)
        self._loader = array if callable(array) else None
        self.source, self._kind = source, kind
        self.tail = tail

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            try:
                self._array = _as_binary(self._loader(), self.source)
            except GroundTruthError:
                raise
            except DatasetError as err:  # an unreadable file: reported per video, like a length mismatch
                raise GroundTruthError(str(err)) from None
        return self._array

    @property
    def length(self) -> int:
        return len(self.array)

    def labels(self, num_frames: int) -> np.ndarray:
        array = self.array
        if len(array) == num_frames:
            return array.copy()
        short = num_frames - len(array)
        if self.tail == "extend" and 0 < short <= 16 and len(array) % 16 == 0 and len(array) > 0:
            return np.concatenate([array, np.full(short, array[-1], np.uint8)])
        hint = ""
        if self.tail == "strict" and 0 < short <= 16 and len(array) % 16 == 0:
            hint = " (an array cut to whole 16-frame snippets; pass gt_tail='extend' to repeat its last value)"
        raise GroundTruthError(f"ground truth {self.source} has {len(array)} frames, the video has {num_frames}{hint}")


def _as_binary(array, source: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise GroundTruthError(f"{source}: expected numeric per-frame labels, found {describe_array(array)}")
    if array.size > MAX_FRAMES:
        raise GroundTruthError(f"{source}: {array.size} per-frame labels, more than the limit of {MAX_FRAMES}")
    if array.ndim != 1:
        squeezed = array.squeeze()
        if squeezed.ndim != 1:
            raise GroundTruthError(f"{source}: expected a 1-D array of per-frame labels, found shape {array.shape}")
        array = squeezed
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise GroundTruthError(f"{source}: per-frame labels contain NaN")
    return (array != 0).astype(np.uint8)


def describe_array(array) -> str:
    """What an array read from a file holds, in words, for error messages."""
    array = np.asarray(array)
    if array.dtype.names:
        return f"a struct with fields {preview(list(array.dtype.names))} (shape {array.shape})"
    if array.dtype.kind in "US":
        return f"text {preview(array.ravel()[0].item() if array.size == 1 else array.ravel()[:3].tolist())}"
    if array.dtype.kind == "O":
        return f"a cell/object array of shape {array.shape}"
    return f"a {array.dtype} array of shape {array.shape}"


# ---------------------------------------------------------------------------------------------------------------
# reading files safely: every failure is a DatasetError naming the file, limits checked before allocation
# ---------------------------------------------------------------------------------------------------------------
def read_text_file(path: str | Path, what: str, errors: str = "strict", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises:
        DatasetError: missing, not a regular file, larger than ``max_bytes``, unreadable or not UTF-8 (with
            ``errors="strict"``); the message names the file.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise DatasetError(f"{what} not found: {path}")
        if not path.is_file():
            raise DatasetError(f"{path}: expected {what} (a file), found a folder or a special file")
        size = path.stat().st_size
        if size > max_bytes:
            raise DatasetError(f"{path}: {what} of {size} bytes, larger than the limit of {max_bytes} bytes")
        with open(path, "rb") as handle:  # read(n) allocates n bytes first: ask for what the file holds
            data = handle.read(size + 1)
    except DatasetError:
        raise
    except (OSError, ValueError) as err:  # permission, I/O error, a NUL byte in the name
        raise DatasetError(f"cannot read {what} {path}: {getattr(err, 'strerror', None) or err}") from None
    if len(data) > max_bytes:  # it grew while we read it
        raise DatasetError(f"{path}: {what} larger than the limit of {max_bytes} bytes")
    try:
        return data.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: {what} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                           f"save it as UTF-8") from None


def iter_lines(text: str, keepends: bool = False):
    """The lines of ``text`` one at a time (``\n`` or ``\r\n`` ends a line), without building a list of them."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        end = size if end < 0 else end + 1
        line = text[start:end]
        yield line if keepends else line.rstrip("\r\n")
        start = end


def load_npy(path: str | Path, what: str = "per-frame labels", max_items: int = MAX_FRAMES) -> np.ndarray:
    """A numeric ``.npy`` array, read with ``allow_pickle=False`` after its header is checked (numeric dtype, at
    most ``max_items`` values, as many bytes as the header announces).

    Raises:
        DatasetError: missing, empty, truncated, text, pickled, an object/string/struct array, or too large; the
            message names the file and what was found.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise DatasetError(f"{what} file not found: {path}" if not path.exists() else
                               f"{path}: expected a .npy file of {what}, found a folder or a special file")
        size = path.stat().st_size
        if size == 0:
            raise DatasetError(f"{path}: empty file (0 bytes), expected a NumPy .npy array of {what}")
        with open(path, "rb") as handle:
            start = handle.read(8)
            handle.seek(0)
            try:
                version = np.lib.format.read_magic(handle)
            except Exception:  # noqa: BLE001  (numpy raises ValueError or EOFError for a wrong magic)
                found = "a Python pickle (not loaded)" if start[:1] == b"\x80" else f"data starting with {start!r}"
                raise DatasetError(f"{path}: not a NumPy .npy file ({found}); expected an array of {what}") from None
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise DatasetError(f"{path}: unsupported .npy format version {version[0]}.{version[1]} "
                                   f"(expected 1.0 or 2.0)")
            try:
                shape, _fortran, dtype = readers[version](handle)
            except Exception as err:  # noqa: BLE001  (a malformed header: ValueError, SyntaxError, ...)
                raise DatasetError(f"{path}: malformed .npy header ({first_line(err)})") from None
            offset = handle.tell()
            if dtype.hasobject:
                raise DatasetError(f"{path}: holds pickled Python objects (dtype object); refused: only numeric "
                                   f"arrays of {what} are read (allow_pickle=False)")
            if dtype.kind not in "biuf" or dtype.names:
                raise DatasetError(f"{path}: expected a numeric array of {what}, found dtype {dtype}")
            count = math.prod(shape)
            if count > max_items:
                raise DatasetError(f"{path}: header announces shape {preview(shape)} ({count} values), more than "
                                   f"the limit of {max_items} {what}")
            needed = count * dtype.itemsize
            if size - offset < needed:
                raise DatasetError(f"{path}: truncated: the header announces shape {preview(shape)} of {dtype} "
                                   f"({needed} bytes), the file holds {size - offset} bytes of data")
            handle.seek(0)
            try:
                return np.load(handle, allow_pickle=False)
            except Exception as err:  # noqa: BLE001
                raise DatasetError(f"{path}: cannot read the .npy array of {what} ({first_line(err)})") from None
    except DatasetError:
        raise
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {what} file {path}: {getattr(err, 'strerror', None) or err}") from None


def first_line(err: BaseException) -> str:
    """``"ErrorType: first line of its message"`` (cut), for wrapping a library's exception in a DatasetError."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


# ---------------------------------------------------------------------------------------------------------------
# entries and frame counting
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class VideoEntry:
    """What a layout scan knows about a video before it is opened.

    ``label=None`` derives the video label from the frame labels (any anomalous frame); ``class_name=None`` gives
    ``"normal"`` or ``"anomaly"`` by the video label. ``alternatives`` are other
    ground-truth sources for the same video, compared with ``ground_truth`` by ``check()``.
    """

    id: str
    split: str
    path: Path
    class_name: str | None = None
    label: int | None = None
    ground_truth: GroundTruth | None = None
    num_frames: int | None = None
    fps: float | None = None
    alternatives: list[GroundTruth] = field(default_factory=list)


_PROBE_CACHE: dict[tuple, tuple[int, float | None]] = {}


def probe(path: Path) -> tuple[int, float | None]:
    """``(num_frames, fps)`` of a video file (demuxed, memoised by path, size and mtime) or a frame folder
    (files counted; fps ``None``).

    Raises:
        VideoNotFoundError: nothing at ``path``.
        VideoReadError: an unreadable video or an empty frame folder.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise VideoNotFoundError(f"video not found: {path}") from None
    if path.is_dir():
        count = len(list_frame_files(path))
        if count == 0:
            raise VideoReadError(f"{path}: no frames found (expected image files: jpg, png, tif, bmp)")
        return count, None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _PROBE_CACHE:
        with open_video(path) as source:
            _PROBE_CACHE[key] = (source.num_frames, source.fps)
    return _PROBE_CACHE[key]


# ---------------------------------------------------------------------------------------------------------------
# the dataset base class
# ---------------------------------------------------------------------------------------------------------------
class VideoDataset:
    """A benchmark's videos with labels and ground truth.

    Subclasses set ``name`` (the registry name), ``folder_fps`` (the nominal rate given to frame folders) and
    ``class_names`` where meaningful, and implement ``_scan()``.
    """

    name: ClassVar[str] = "dataset"
    folder_fps: ClassVar[float] = 25.0
    class_names: tuple[str, ...] | None = None

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetError(f"{self.name}: root {self.root} does not exist")
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: root {self.root} is a file, expected a folder")
        self._entries: list[VideoEntry] | None = None
        self._records: dict[str, VideoRecord] = {}
        self._agreement_cache: tuple[list[str], list[str]] | None = None
        self._index: dict[str, VideoEntry] | None = None

    # -- to implement ---------------------------------------------------------------------------------------
    def _scan(self) -> list[VideoEntry]:
        raise NotImplementedError

    def _extra_problems(self, records: list[VideoRecord]) -> list[str]:
        """Layout-specific checks beyond the shared ones (override)."""
        return []

    # -- public ---------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def entries(self) -> list[VideoEntry]:
        if self._entries is None:
            entries = self._scan()
            seen: dict[str, VideoEntry] = {}
            for entry in entries:
                if entry.id in seen:
                    raise DatasetError(f"{self.name}: video id {entry.id!r} appears twice: {seen[entry.id].path} "
                                       f"and {entry.path}")
                seen[entry.id] = entry
            if not entries:
                raise DatasetError(f"{self.name}: no videos found under {self.root}")
            self._entries = entries
        return self._entries

    def splits(self) -> list[str]:
        """The split names present, train / val / test first."""
        names = {entry.split for entry in self.entries}
        return sorted(names, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))

    def ids(self, split: str | None = None) -> list[str]:
        """Video ids (cheap: no video is opened)."""
        return [e.id for e in self.entries if split is None or e.split == split]

    def videos(self, split: str | None = None) -> list[VideoRecord]:
        """The records of one split (or all), in layout order. Counts frames of videos not yet seen.

        Raises:
            DatasetError: an unknown split, an unreadable video, or ground truth that does not fit a video.
        """
        if split is not None and split not in self.splits():
            raise DatasetError(f"{self.name}: no split {split!r} under {self.root}; found: {', '.join(self.splits())}")
        return [self._record(e) for e in self.entries if split is None or e.split == split]

    def video(self, video_id: str) -> VideoRecord:
        """One record by id."""
        entry = self._by_id().get(video_id)
        if entry is None:
            raise DatasetError(f"{self.name}: no video {video_id!r} under {self.root}")
        return self._record(entry)

    def check(self, decode: bool = False) -> list[str]:
        """Every problem found, one line each (an empty list means the dataset is sound).

        Checks that every video opens and has ground truth of its length, that test videos have frame labels,
        that video labels agree with frame labels, and that alternative ground-truth files agree frame for frame.
        ``decode=True`` also decodes every frame to confirm the counts (slow).
        """
        problems: list[str] = []
        records: list[VideoRecord] = []
        for entry in self.entries:
            try:
                record = self._record(entry)
            except DatasetError as err:
                problems.append(str(err))
                continue
            records.append(record)
            problems += self._record_problems(record)
            if decode:
                problems += self._decode_problems(record)
        problems += self._agreement()[0]
        problems += self._extra_problems(records)
        return problems

    def notes(self) -> list[str]:
        """Positive findings worth reporting (e.g. two ground-truth files agreeing frame for frame)."""
        return self._agreement()[1]

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, root='{self.root}')"

    # -- helpers --------------------------------------------------------------------------------------------
    def _by_id(self) -> dict[str, VideoEntry]:
        if self._index is None:
            self._index = {entry.id: entry for entry in self.entries}
        return self._index

    def _describe(self, entry: VideoEntry | VideoRecord) -> str:
        return f"{self.name}: {entry.split} video {entry.id} ({entry.path})"

    def _measure(self, entry: VideoEntry) -> tuple[int, float]:
        num_frames, fps = entry.num_frames, entry.fps
        if num_frames is None or (fps is None and not Path(entry.path).is_dir()):
            try:
                num_frames, probed_fps = probe(entry.path)
            except VideoNotFoundError:
                raise DatasetError(f"{self._describe(entry)}: not found "
                                   f"(expected a video file or a frame folder)") from None
            except VideoReadError as err:
                raise DatasetError(f"{self._describe(entry)}: {err}") from err
            fps = fps if fps is not None else probed_fps
        return num_frames, float(fps if fps is not None else self.folder_fps)

    def _record(self, entry: VideoEntry) -> VideoRecord:
        cached = self._records.get(entry.id)
        if cached is not None:
            return cached
        num_frames, fps = self._measure(entry)
        labels = None
        if entry.ground_truth is not None:
            try:
                labels = entry.ground_truth.labels(num_frames)
            except GroundTruthError as err:
                raise DatasetError(f"{self._describe(entry)}: {err}") from None
        label = entry.label
        if label is None:
            if labels is None:
                raise DatasetError(f"{self._describe(entry)}: no video label and no frame labels")
            label = int(labels.any())
        record = VideoRecord(id=entry.id, split=entry.split, path=Path(entry.path), num_frames=num_frames, fps=fps,
                             label=label, class_name=entry.class_name or ("anomaly" if label else "normal"),
                             frame_labels=labels)
        self._records[entry.id] = record
        return record

    def _record_problems(self, record: VideoRecord) -> list[str]:
        where = f"{self.name}: {record.split} video {record.id}"
        if record.frame_labels is None:
            return [f"{where}: no frame labels"] if record.split == "test" else []
        anomalous = int(record.frame_labels.sum())
        if record.label == 1 and anomalous == 0 and record.split == "test":
            return [f"{where}: video label is abnormal but none of its {record.num_frames} frames is labelled "
                    f"anomalous"]
        if record.label == 0 and anomalous > 0:
            return [f"{where}: video label is normal but {anomalous} of its {record.num_frames} frames are anomalous"]
        return []

    def _decode_problems(self, record: VideoRecord) -> list[str]:
        try:
            with record.open() as source:
                decoded = sum(1 for _ in source.frames())
        except (VideoReadError, IndexError) as err:
            return [f"{self.name}: {record.split} video {record.id}: {err}"]
        if decoded != record.num_frames:
            return [f"{self.name}: {record.split} video {record.id}: decoded {decoded} frames, "
                    f"counted {record.num_frames}"]
        return []

    def _agreement(self) -> tuple[list[str], list[str]]:
        """Compare every alternative ground-truth source with the primary one. An alternative array cut to whole
        16-frame snippets (at most 16 frames short) is compared on its own length. Returns ``(problems, notes)``."""
        if self._agreement_cache is not None:
            return self._agreement_cache
        problems: list[str] = []
        tallies: dict[tuple[str, str], list[int]] = {}  # (primary kind, alternative kind) -> [videos, frames, agreeing]
        for entry in self.entries:
            if not entry.alternatives or entry.ground_truth is None:
                continue
            try:
                primary = self._record(entry).frame_labels
            except DatasetError:
                continue  # check() reports it
            for alternative in entry.alternatives:
                try:
                    other = _comparable(alternative, len(primary))
                except GroundTruthError as err:
                    problems.append(f"{self._describe(entry)}: {err}")
                    continue
                length = len(other)
                differ = np.flatnonzero(primary[:length] != other)
                if len(differ):
                    problems.append(f"{self.name}: {entry.split} video {entry.id}: {entry.ground_truth.source} and "
                                    f"{alternative.source} disagree on {len(differ)} of {length} frames "
                                    f"(first at frame {differ[0]}, 0-based)")
                tally = tallies.setdefault((entry.ground_truth.kind, alternative.kind), [0, 0, 0])
                tally[0] += 1
                tally[1] += length
                tally[2] += int(len(differ) == 0)
        notes = []
        for (first, second), (videos, frames, agreeing) in tallies.items():
            if agreeing == videos:
                notes.append(f"ground truth: {first} and {second} agree frame for frame on all {frames} frames "
                             f"of {videos} videos")
        self._agreement_cache = (problems, notes)
        return self._agreement_cache


def _comparable(truth: GroundTruth, num_frames: int) -> np.ndarray:
    """``truth``'s labels for a video of ``num_frames`` frames, or its own shorter array when it is cut to whole
    16-frame snippets."""
    length = truth.length
    if length is not None and length < num_frames and num_frames - length <= 16 and length % 16 == 0:
        return truth.labels(length)
    return truth.labels(num_frames)


# ---------------------------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------------------------
def summarize(dataset: VideoDataset) -> dict:
    """Counts per split and one row per video.

    Returns:
        ``{"dataset", "root", "num_classes", "class_names", "splits": {split: {"videos", "frames",
        "abnormal_videos", "labelled_videos", "anomalous_frames"}}, "videos": [{"id", "split", "num_frames",
        "num_anomalous", "label", "class_name"}], "notes": [...]}``. ``anomalous_frames`` sums over the videos
        with frame labels (``None`` when no video of the split has any).
    """
    records = dataset.videos()
    splits: dict[str, dict] = {}
    for split in dataset.splits():
        rows = [r for r in records if r.split == split]
        labelled = [r for r in rows if r.frame_labels is not None]
        splits[split] = {
            "videos": len(rows),
            "frames": sum(r.num_frames for r in rows),
            "abnormal_videos": sum(r.label for r in rows),
            "labelled_videos": len(labelled),
            "anomalous_frames": sum(r.num_anomalous for r in labelled) if labelled else None,
        }
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names) if dataset.class_names is not None else None,
        "splits": splits,
        "videos": [{"id": r.id, "split": r.split, "num_frames": r.num_frames, "num_anomalous": r.num_anomalous,
                    "label": r.label, "class_name": r.class_name} for r in records],
        "notes": dataset.notes(),
    }


def accepted_options(cls: type) -> list[str]:
    """The keyword options a dataset class takes besides ``root``."""
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "root")]


# ---------------------------------------------------------------------------------------------------------------
# small layout helpers shared by the dataset modules
# ---------------------------------------------------------------------------------------------------------------
def subdirs(folder: Path) -> list[Path]:
    """Child folders, natural order, hidden ones skipped. A link to a folder is skipped when it leads back to
    ``folder`` or above it (a loop), or to a folder already listed (a duplicate)."""
    children = sorted((p for p in folder.iterdir() if _is_dir(p) and not p.name.startswith(".")),
                      key=lambda p: (p.is_symlink(), natural_key(p.name)))
    if not any(p.is_symlink() for p in children):
        return children
    here = _real(folder)
    seen, out = set(), []
    for child in children:
        real = _real(child)
        if real is None or real in seen or (child.is_symlink() and here is not None and here.is_relative_to(real)):
            continue
        seen.add(real)
        out.append(child)
    return sorted(out, key=lambda p: natural_key(p.name))


class DirGuard:
    """Decides which folders a directory walk enters, so that a walk visits each real folder once, never leaves the
    dataset through a link and never loops.

    The walk starts at ``tops`` (the folders the layout names, e.g. every ``normal/`` and ``abnormal/``; they may
    themselves be links to anywhere). Below them a link to a folder is followed only when its target lies inside
    ``root``, outside the walked trees (a folder inside them is reached by its real path, so a link there would
    repeat it or loop: ``loop -> .``, ``up -> ..``) and not above the link; each real folder is entered once.
    Links to files are not this class's business (they cannot loop).

    >>> guard = DirGuard(root, [root / "test" / "normal"])   # doctest: +SKIP
    >>> guard.enter(root / "test" / "normal" / "loop")       # False: a link back into the walked tree
    """

    def __init__(self, root: str | Path, tops: list[Path] | tuple[Path, ...] = ()) -> None:
        self.root = _real(Path(root))
        self.top_paths = {Path(top) for top in tops}
        self.tops = [t for t in (_real(Path(top)) for top in tops) if t is not None]
        self.seen: set[tuple[int, int]] = set()

    def enter(self, folder: Path) -> bool:
        """Whether the walk goes into ``folder`` (True once per real folder; False for a link out, up or back)."""
        folder = Path(folder)
        real = _real(folder)
        if real is None:
            return False
        try:
            stat = real.stat()
        except OSError:
            return False
        if folder.is_symlink() and folder not in self.top_paths:
            if self.root is None or not real.is_relative_to(self.root):
                return False  # a link out of the dataset
            if any(real.is_relative_to(top) for top in self.tops):
                return False  # inside a walked tree: reached by its real path (or a loop)
            parent = _real(folder.parent)
            if parent is not None and parent.is_relative_to(real):
                return False  # a link back up: a loop
        key = (stat.st_dev, stat.st_ino)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _real(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path, strict=True))
    except (OSError, RuntimeError, ValueError):
        return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def find_child(folder: Path, *names: str) -> Path | None:
    """The first child of ``folder`` whose name matches one of ``names`` (case-insensitive)."""
    if not folder.is_dir():
        return None
    children = {p.name.lower(): p for p in folder.iterdir()}
    for name in names:
        if name.lower() in children:
            return children[name.lower()]
    return None
