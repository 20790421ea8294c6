"""Readers for the ground-truth files of the benchmarks, each turning its own convention into ranges or arrays.

Conventions (all pinned down by tests against real files in ``../shared/data``):

- UCSD ``UCSDpedN.m`` (``TestVideoFile{end+1}.gt_frame = [61:180];``) and the ``pedN.mat`` / ``avenue.mat`` cells
  of ``2 x K`` ``[start; end]`` columns: 1-based, both ends inclusive.
- UCF-Crime ``Temporal_Anomaly_Annotation.txt`` (``name.mp4  Class  s1  e1  s2  e2``, ``-1`` for no event) and
  XD-Violence ``annotations.txt`` (``name s1 e1 s2 e2 ...``): 0-based frame indices, start inclusive, end
  exclusive, i.e. frames ``s <= i < e`` are anomalous. The per-frame arrays distributed with the weakly supervised
  codebases are exactly ``labels[s:e] = 1`` (checked on Abuse028: 165..239 and Arrest001: 1185..1484).
- Pixel masks (UCSD ``TestNNN_gt/*.bmp``, Avenue ``volLabel``): a frame is anomalous when its mask has any nonzero
  pixel.

Every range in the returned values is 0-based with an exclusive stop.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from vadkit.datasets.base import DatasetError, GroundTruth, GroundTruthError

Ranges = list[tuple[int, int]]


# ---------------------------------------------------------------------------------------------------------------
# MATLAB files
# ---------------------------------------------------------------------------------------------------------------
def load_mat_variable(path: str | Path, name: str):
    """Read one variable of a ``.mat`` file, v5 (scipy) or v7.3 (HDF5, via h5py).

    Cells come back as object arrays in MATLAB orientation (v7.3 data is transposed back to it), numeric arrays
    as NumPy arrays.

    Raises:
        DatasetError: unreadable file or no such variable (the message lists the variables found).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"MATLAB file not found: {path}")
    if _is_hdf5(path):
        return _load_mat73_variable(path, name)
    try:
        import scipy.io

        try:
            contents = scipy.io.loadmat(str(path))
        except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
            return _load_mat73_variable(path, name)
    except DatasetError:
        raise
    except Exception as err:  # scipy raises several types for broken files
        raise DatasetError(f"cannot read MATLAB file {path}: {err}") from err
    if name not in contents:
        found = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise DatasetError(f"{path}: no variable {name!r} (found: {found})")
    return contents[name]


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


def _load_mat73_variable(path: Path, name: str):
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if name not in handle:
                found = ", ".join(k for k in handle if not k.startswith("#")) or "none"
                raise DatasetError(f"{path}: no variable {name!r} (found: {found})")
            return _h5_to_numpy(handle, handle[name])
    except DatasetError:
        raise
    except Exception as err:
        raise DatasetError(f"cannot read MATLAB v7.3 file {path}: {err}") from err


def _h5_to_numpy(handle, node):
    """An HDF5 dataset written by MATLAB, back in MATLAB orientation (HDF5 stores it transposed)."""
    import h5py

    data = node[()]
    is_cell = data.dtype == object and data.size and isinstance(data.flat[0], h5py.Reference)
    if node.dtype == h5py.ref_dtype or is_cell:
        out = np.empty(data.shape, dtype=object)
        for index, ref in np.ndenumerate(data):
            out[index] = _h5_to_numpy(handle, handle[ref])
        return out.T
    return np.asarray(data).T


def mat_cell_items(cell) -> list:
    """The elements of a MATLAB cell (object array) in linear order, or ``[cell]`` for a plain array."""
    array = np.asarray(cell)
    if array.dtype == object:
        return [item for item in array.ravel(order="F")]
    return [array]


def ranges_from_mat_cell(cell, path: Path) -> list[Ranges]:
    """Per-video ranges from a cell of ``2 x K`` arrays of 1-based inclusive ``[start; end]`` columns
    (``ped2.mat``, ``ped1.mat``, ``avenue.mat``). A ``K x 2`` array with ``K != 2`` is read as its transpose."""
    videos = []
    for index, item in enumerate(mat_cell_items(cell)):
        array = np.asarray(item, dtype=np.int64)
        if array.size == 0:
            videos.append([])
            continue
        if array.ndim != 2 or 2 not in array.shape:
            raise DatasetError(f"{path}: video {index + 1}: expected a 2 x K array of [start; end] ranges, "
                               f"found shape {array.shape}")
        if array.shape[0] != 2:
            array = array.T
        videos.append([_one_based_inclusive(int(a), int(b), f"{path}, video {index + 1}") for a, b in array.T])
    return videos


def frame_flags_from_masks(masks, path: Path) -> np.ndarray:
    """One 0/1 per mask of a cell of pixel masks (``volLabel``): 1 when the mask has any nonzero pixel."""
    array = np.asarray(masks)
    if array.dtype != object and array.ndim == 3:  # one H x W x F array instead of a cell
        return np.array([int(np.any(array[:, :, f])) for f in range(array.shape[2])], dtype=np.uint8)
    items = mat_cell_items(masks)
    if not items:
        raise DatasetError(f"{path}: the mask cell is empty")
    return np.array([int(np.any(np.asarray(mask))) for mask in items], dtype=np.uint8)


def read_vol_label(path: str | Path) -> np.ndarray:
    """Per-frame labels of an Avenue ``N_label.mat`` (variable ``volLabel``, a 1 x F cell of pixel masks)."""
    return frame_flags_from_masks(load_mat_variable(path, "volLabel"), Path(path))


def read_gt_vector(path: str | Path, name: str = "gt") -> np.ndarray:
    """A ``[1, F]`` (or ``[F, 1]``) per-frame vector stored in a ``.mat`` file (LAD2000 ``gt_*.mat``)."""
    array = np.asarray(load_mat_variable(path, name))
    if array.dtype == object or array.ndim > 2 or (array.ndim == 2 and min(array.shape) > 1):
        raise DatasetError(f"{path}: expected {name!r} to be a 1 x F vector of frame labels, found shape {array.shape}")
    return (array.ravel() != 0).astype(np.uint8)


_GT_FRAME = re.compile(r"TestVideoFile\s*\{\s*(end\s*\+\s*1|\d+)\s*\}\s*\.\s*gt_frame\s*=\s*\[([^\]]*)\]")


def parse_ucsd_m(text: str, source: str = "UCSD .m file") -> list[Ranges]:
    """Per-video ranges from the official ``UCSDpedN.m`` (``TestVideoFile{end+1}.gt_frame = [61:180];``).

    Inside the brackets: ``a:b`` (1-based inclusive), ``a:s:b`` or single frames, separated by commas or spaces.
    ``TestVideoFile{k}`` with an explicit index is honoured.
    """
    text = re.sub(r"%[^\n]*", "", text)  # MATLAB comments
    videos: dict[int, Ranges] = {}
    next_index = 1
    for match in _GT_FRAME.finditer(text):
        index = next_index if match.group(1).replace(" ", "").startswith("end") else int(match.group(1))
        next_index = max(next_index, index + 1)
        videos[index] = _parse_matlab_vector(match.group(2), f"{source}, video {index}")
    if not videos:
        raise DatasetError(f"{source}: no 'TestVideoFile{{...}}.gt_frame = [...]' lines found")
    missing = [i for i in range(1, max(videos) + 1) if i not in videos]
    if missing:
        raise DatasetError(f"{source}: no gt_frame for videos {missing}")
    return [videos[i] for i in range(1, max(videos) + 1)]


def _parse_matlab_vector(body: str, where: str) -> Ranges:
    body = re.sub(r"\s*:\s*", ":", body.strip())
    frames: list[int] = []
    ranges: Ranges = []
    for token in (t for t in re.split(r"[,;\s]+", body) if t):
        parts = token.split(":")
        try:
            numbers = [int(float(p)) for p in parts]
        except ValueError:
            raise DatasetError(f"{where}: cannot read {token!r} (expected a:b, a:step:b or a frame number)") from None
        if len(numbers) == 1:
            ranges.append(_one_based_inclusive(numbers[0], numbers[0], where))
        elif len(numbers) == 2:
            ranges.append(_one_based_inclusive(numbers[0], numbers[1], where))
        elif len(numbers) == 3 and numbers[1] > 0:
            frames += list(range(numbers[0], numbers[2] + 1, numbers[1]))
        else:
            raise DatasetError(f"{where}: cannot read {token!r} (expected a:b, a:step:b or a frame number)")
    ranges += [_one_based_inclusive(f, f, where) for f in frames]
    return ranges


def _one_based_inclusive(first: int, last: int, where: str) -> tuple[int, int]:
    if first < 1 or last < first:
        raise DatasetError(f"{where}: invalid range {first}:{last} (1-based inclusive; expected 1 <= start <= end)")
    return first - 1, last


# ---------------------------------------------------------------------------------------------------------------
# text annotations of the weakly supervised benchmarks
# ---------------------------------------------------------------------------------------------------------------
def read_ucf_annotation(path: str | Path) -> dict[str, tuple[str, Ranges]]:
    """``Temporal_Anomaly_Annotation.txt``: ``{video stem: (class, ranges)}``.

    Each line is ``name.mp4  Class  s1  e1  s2  e2`` with ``-1 -1`` where there is no (second) event; frames
    ``s <= i < e`` (0-based) are anomalous. ``Class`` is ``Normal`` for normal videos.
    """
    path = Path(path)
    out: dict[str, tuple[str, Ranges]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2 or (len(fields) - 2) % 2:
            raise DatasetError(f"{path}:{number}: expected 'name.mp4 Class s1 e1 [s2 e2 ...]', found {line.strip()!r}")
        name, class_name = Path(fields[0]).stem, fields[1]
        out[name] = (class_name, _pairs(fields[2:], f"{path}:{number}"))
    if not out:
        raise DatasetError(f"{path}: no annotation lines")
    return out


def read_xd_annotations(path: str | Path) -> dict[str, Ranges]:
    """XD-Violence ``annotations.txt``: ``{video stem: ranges}`` from lines ``name s1 e1 s2 e2 ...``
    (0-based, end exclusive; a ``.mp4`` suffix on the name is optional)."""
    path = Path(path)
    out: dict[str, Ranges] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if (len(fields) - 1) % 2:
            raise DatasetError(f"{path}:{number}: expected 'name s1 e1 [s2 e2 ...]', found {line.strip()!r}")
        name = fields[0][:-4] if fields[0].lower().endswith(".mp4") else fields[0]
        out.setdefault(name, []).extend(_pairs(fields[1:], f"{path}:{number}"))
    return out


def _pairs(fields: list[str], where: str) -> Ranges:
    try:
        numbers = [int(float(f)) for f in fields]
    except ValueError:
        raise DatasetError(f"{where}: frame numbers must be integers, found {' '.join(fields)!r}") from None
    ranges = []
    for start, stop in zip(numbers[0::2], numbers[1::2]):
        if start == -1 and stop == -1:
            continue
        if start < 0 or stop <= start:
            raise DatasetError(f"{where}: invalid event [{start}, {stop}) (0-based, end exclusive)")
        ranges.append((start, stop))
    return ranges


XD_CODES = {"A": "normal", "B1": "fighting", "B2": "shooting", "B4": "riot", "B5": "abuse",
            "B6": "car accident", "G": "explosion"}
_XD_LABEL = re.compile(r"_label_([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)$")


def xd_codes(name: str) -> tuple[str, ...]:
    """The class codes in an XD-Violence video name (``..._label_G-B2-B6`` -> ``("G", "B2", "B6")``);
    ``0`` placeholders are dropped; ``("A",)`` is normal.

    Raises:
        DatasetError: no ``_label_`` part or an unknown code.
    """
    stem = name
    for extension in (".mp4", ".avi", ".mkv", ".npy"):
        if stem.lower().endswith(extension):
            stem = stem[: -len(extension)]
    match = _XD_LABEL.search(snippet_array_key(stem))
    if not match:
        raise DatasetError(f"XD-Violence name {name!r} has no '_label_<codes>' part")
    codes = tuple(c for c in match.group(1).split("-") if c != "0")
    unknown = [c for c in codes if c not in XD_CODES]
    if unknown or not codes:
        raise DatasetError(f"XD-Violence name {name!r}: unknown label codes {unknown or codes} "
                           f"(expected {', '.join(XD_CODES)})")
    return codes


def snippet_array_key(file_name: str) -> str:
    """The video name of a distributed per-video array: ``Abuse028_x264__9_gt.npy`` -> ``Abuse028_x264``,
    ``<name>__0.npy`` -> ``<name>``, ``<name>.npy`` -> ``<name>``."""
    stem = file_name[:-4] if file_name.endswith(".npy") else file_name
    return re.sub(r"(__\d+)?(_gt)?$", "", stem)


# ---------------------------------------------------------------------------------------------------------------
# a user's own labels (folder dataset)
# ---------------------------------------------------------------------------------------------------------------
def read_range_table(path: str | Path) -> dict[str, Ranges]:
    """Anomalous ranges per video from a CSV (``video,start,end``, one row per event, header optional) or a JSON
    file (``{"video": [[start, end], ...]}`` or ``[{"video": ..., "start": ..., "end": ...}, ...]``).

    Frames are 0-based, ``start`` inclusive and ``end`` exclusive (``labels[start:end] = 1``). A video listed
    with no events (an empty list in JSON, or a CSV row with empty start/end) is all normal.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}: not valid JSON: {err}") from err
        rows = _json_rows(data, path)
    elif path.suffix.lower() in (".csv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise DatasetError(f"{path}: expected a .csv or .json file of video,start,end rows")
    out: dict[str, Ranges] = {}
    for video, start, end, where in rows:
        ranges = out.setdefault(video, [])
        if start is None and end is None:
            continue
        try:
            start_i, end_i = int(start), int(end)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: start and end must be integers, found {start!r}, {end!r}") from None
        if start_i < 0 or end_i <= start_i:
            raise DatasetError(f"{where}: invalid range [{start_i}, {end_i}) for {video!r} "
                               f"(0-based, end exclusive; expected 0 <= start < end)")
        ranges.append((start_i, end_i))
    return out


def _csv_rows(path: Path):
    with open(path, newline="") as handle:
        lines = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if lines and [c.strip().lower() for c in lines[0][:3]] == ["video", "start", "end"]:
        lines = lines[1:]
    for number, row in enumerate(lines, 1):
        cells = [c.strip() for c in row]
        if len(cells) == 1:
            yield cells[0], None, None, f"{path} row {number}"
        elif len(cells) >= 3:
            start, end = (cells[1] or None), (cells[2] or None)
            yield cells[0], start, end, f"{path} row {number}"
        else:
            raise DatasetError(f"{path} row {number}: expected video,start,end, found {','.join(row)!r}")


def _json_rows(data, path: Path):
    if isinstance(data, dict):
        for video, events in data.items():
            if not isinstance(events, list):
                raise DatasetError(f"{path}: {video!r}: expected a list of [start, end] pairs")
            if not events:
                yield video, None, None, str(path)
            for event in events:
                if not (isinstance(event, (list, tuple)) and len(event) == 2):
                    raise DatasetError(f"{path}: {video!r}: expected [start, end] pairs, found {event!r}")
                yield video, event[0], event[1], str(path)
    elif isinstance(data, list):
        for number, row in enumerate(data):
            if not isinstance(row, dict) or "video" not in row:
                raise DatasetError(f"{path}: item {number}: expected {{'video', 'start', 'end'}}, found {row!r}")
            yield str(row["video"]), row.get("start"), row.get("end"), f"{path} item {number}"
    else:
        raise DatasetError(f"{path}: expected a JSON object or list")


# ---------------------------------------------------------------------------------------------------------------
# pixel-mask folders (UCSD TestNNN_gt/*.bmp)
# ---------------------------------------------------------------------------------------------------------------
class MaskFolder(GroundTruth):
    """One mask image per frame (``Test001_gt/001.bmp`` ...); a frame is anomalous when its mask has any nonzero
    pixel. The masks are read on first use."""

    def __init__(self, folder: Path, kind: str = "masks") -> None:
        from vadkit.io import list_frame_files

        self.folder = Path(folder)
        self.files = list_frame_files(self.folder)
        self.source = f"{self.folder.name}/ masks"
        self._kind = kind
        self._array: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.files)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            import cv2

            flags = []
            for file in self.files:
                mask = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
                if mask is None:
                    raise GroundTruthError(f"cannot read mask {file}")
                flags.append(int(np.any(mask)))
            self._array = np.array(flags, dtype=np.uint8)
        return self._array

    def labels(self, num_frames: int) -> np.ndarray:
        if self.length != num_frames:
            raise GroundTruthError(f"ground truth {self.source} has {self.length} frames, the video has {num_frames}")
        return self.array.copy()
