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
import io
import json
import math
import re
from pathlib import Path
from typing import Callable

import numpy as np

from vadkit.datasets.base import (
    MAX_FIELDS,
    MAX_FRAMES,
    MAX_JSON_BYTES,
    MAX_LISTED_FRAMES,
    MAX_RANGES,
    MAX_VIDEOS,
    DatasetError,
    GroundTruth,
    GroundTruthError,
    describe_array,
    first_line,
    iter_lines,
    preview,
    read_text_file,
)
from vadkit.datasets.matfile import check_mat5, is_mat5

#: the largest array a MATLAB v7.3 (HDF5) ground-truth file may make us read at once, and the largest file
MAX_MAT_ARRAY_BYTES = 1 << 30
MAX_MAT_FILE_BYTES = 1 << 30
#: what a file of per-video ranges (``ped2.mat``, ``avenue.mat``) may hold: MAX_RANGES [start; end] doubles and
#: the cell's overhead for MAX_VIDEOS videos (the real ones hold a few kilobytes)
RANGES_MAT_BYTES = 2 * MAX_RANGES * 8 + MAX_VIDEOS * 128
VECTOR_MAT_BYTES = MAX_FRAMES * 8 + (64 << 10)  # a per-frame vector of MAX_FRAMES doubles
MASK_OVERHEAD_BYTES = 256  # per mask of a volLabel cell: its tags, flags, dimensions and name

Ranges = list[tuple[int, int]]


# ---------------------------------------------------------------------------------------------------------------
# MATLAB files
# ---------------------------------------------------------------------------------------------------------------
def load_mat_variable(path: str | Path, name: str, reduce_cells: Callable[[np.ndarray], object] | None = None,
                      max_bytes: int = MAX_MAT_ARRAY_BYTES):
    """Read one variable of a ``.mat`` file, v5 (scipy) or v7.3 (HDF5, via h5py).

    Cells come back as object arrays in MATLAB orientation (v7.3 data is transposed back to it), numeric arrays
    as NumPy arrays. ``reduce_cells`` (v7.3) replaces each cell element as soon as it is read (``volLabel``: a
    mask by its flag), so that a cell of large arrays is never held whole. A file's variables may hold at most
    ``max_bytes`` in all (compressed v5 data inflated; v7.3 data read), checked before scipy or h5py allocates:
    the caller bounds it by what the content may need.

    Raises:
        DatasetError: unreadable file or no such variable (the message lists the variables found).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"MATLAB file not found: {path}" if not path.exists() else
                           f"{path}: expected a MATLAB .mat file, found a folder or a special file")
    if _is_hdf5(path):
        return _load_mat73_variable(path, name, reduce_cells, max_bytes)
    try:
        size = path.stat().st_size
        if size > min(MAX_MAT_FILE_BYTES, max_bytes + 4096):
            raise DatasetError(f"{path}: MATLAB file of {size} bytes, larger than the limit of "
                               f"{min(MAX_MAT_FILE_BYTES, max_bytes + 4096)} for what it may hold")
        data = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read MATLAB file {path}: {err.strerror or err}") from None
    if is_mat5(data):
        check_mat5(data, path, max_bytes)  # scipy's reader crashes the interpreter on some malformed files
    try:
        import scipy.io

        try:
            contents = scipy.io.loadmat(io.BytesIO(data))
        except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
            return _load_mat73_variable(path, name, reduce_cells, max_bytes)
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(f"cannot read MATLAB file {path}: it claims more memory than is available") from None
    except Exception as err:  # noqa: BLE001  (scipy raises many types for broken files)
        raise DatasetError(f"cannot read MATLAB file {path}: {first_line(err)}") from None
    if name not in contents:
        found = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise DatasetError(f"{path}: no variable {name!r} (found: {preview(found)})")
    return contents[name]


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


def _load_mat73_variable(path: Path, name: str, reduce_cells=None, max_bytes: int = MAX_MAT_ARRAY_BYTES):
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if name not in handle:
                found = ", ".join(k for k in handle if not k.startswith("#")) or "none"
                raise DatasetError(f"{path}: no variable {preview(name)} (found: {preview(found)})")
            link = handle.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):  # a soft or external link: to another file, maybe a FIFO
                raise DatasetError(f"{path}: {name} is a {type(link).__name__} to elsewhere, expected the data itself")
            return _h5_to_numpy(handle, handle[name], path, name, [max_bytes], reduce_cells)
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(f"cannot read MATLAB v7.3 file {path}: it claims more memory than is available") from None
    except Exception as err:  # noqa: BLE001  (h5py raises OSError, KeyError, TypeError, ... for broken files)
        raise DatasetError(f"cannot read MATLAB v7.3 file {path}: {first_line(err)}") from None


def _h5_to_numpy(handle, node, path: Path, name: str, budget: list[int], reduce_cells=None, depth: int = 0):
    """An HDF5 dataset written by MATLAB, back in MATLAB orientation (HDF5 stores it transposed). Sizes are checked
    against ``budget[0]`` (bytes left to read from the file) before anything is read; a cell may nest cells a few
    levels deep, no more."""
    import h5py

    if depth > 8:
        raise DatasetError(f"{path}: {name}: cells nested more than 8 levels deep (or a reference loop)")
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{path}: {name} is a MATLAB struct or object (an HDF5 group), expected a numeric "
                           f"array or a cell")
    if node.is_virtual or node.external:  # data kept in other files: not read
        raise DatasetError(f"{path}: {name} keeps its data in other files (an external or virtual HDF5 dataset)")
    nbytes = int(node.size or 0) * node.dtype.itemsize
    if nbytes > budget[0]:
        raise DatasetError(f"{path}: {name} has shape {node.shape} of {node.dtype} ({nbytes} bytes): more than the "
                           f"limit of bytes read from one file ({budget[0]} left of what it may hold)")
    if node.dtype == h5py.ref_dtype and (node.size or 0) > MAX_FRAMES:
        raise DatasetError(f"{path}: {name}: a cell of {node.size} elements, more than the limit of {MAX_FRAMES}")
    budget[0] -= nbytes
    data = node[()]
    if not isinstance(data, np.ndarray):
        data = np.asarray(data)
    is_cell = data.dtype == object and data.size and isinstance(data.flat[0], h5py.Reference)
    if node.dtype == h5py.ref_dtype or is_cell:
        out = np.empty(data.shape, dtype=object)
        for index, ref in np.ndenumerate(data):
            if not isinstance(ref, h5py.Reference) or not ref:
                raise DatasetError(f"{path}: {name}: cell element {index} is not a valid reference")
            item = _h5_to_numpy(handle, handle[ref], path, name, budget, reduce_cells, depth + 1)
            out[index] = reduce_cells(item) if reduce_cells is not None and depth == 0 else item
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
    array = np.asarray(cell)
    if array.dtype.names:
        raise DatasetError(f"{path}: expected a cell of 2 x K [start; end] arrays, found {describe_array(array)}")
    items = mat_cell_items(cell)
    if len(items) > MAX_VIDEOS:
        raise DatasetError(f"{path}: a cell of {len(items)} videos, more than the limit of {MAX_VIDEOS}")
    total = 0
    for index, item in enumerate(items):  # shapes and counts first: nothing is converted before they are right
        array = np.asarray(item)
        if array.dtype.kind not in "biuf" or array.dtype.names:
            continue  # refused below, with what it is
        if array.size and (array.ndim != 2 or 2 not in array.shape):
            raise DatasetError(f"{path}, video {index + 1}: expected a 2 x K array of [start; end] ranges, found "
                               f"shape {array.shape}")
        total += array.size // 2
        if total > MAX_RANGES:
            raise DatasetError(f"{path}: more than {MAX_RANGES} [start; end] ranges (video {index + 1} has "
                               f"{array.size // 2}), more than the frames any test set has")
    videos = []
    for index, item in enumerate(items):
        where = f"{path}, video {index + 1}"
        array = _integer_array(item, where, "a 2 x K array of [start; end] ranges")
        if array.size == 0:
            videos.append([])
            continue
        if array.shape[0] != 2:
            array = array.T  # (K, 2) -> (2, K)
        if array.max() >= 1 and array.shape[1] > array.max():  # K ranges of one frame or more need K frames
            raise DatasetError(f"{where}: {array.shape[1]} ranges within frames 1 to {int(array.max())}: more "
                               f"ranges than frames")
        videos.append([_one_based_inclusive(int(a), int(b), where) for a, b in array.T])
    return videos


def _integer_array(item, where: str, expected: str) -> np.ndarray:
    """``item`` as int64 when it holds finite whole numbers within ``MAX_FRAMES``, else a DatasetError."""
    array = np.asarray(item)
    if array.dtype.kind not in "biuf" or array.dtype.names:
        raise DatasetError(f"{where}: expected {expected}, found {describe_array(array)}")
    if array.dtype.kind == "f" and array.size:
        if not np.isfinite(array).all():
            raise DatasetError(f"{where}: expected {expected}, found NaN or infinite values")
        if (array != np.round(array)).any():
            raise DatasetError(f"{where}: expected whole frame numbers, found {preview(array.ravel()[:4].tolist())}")
    if array.size and (array.max() > MAX_FRAMES or array.min() < -MAX_FRAMES):
        raise DatasetError(f"{where}: frame numbers beyond the limit of {MAX_FRAMES} "
                           f"(found {preview(array.ravel()[:4].tolist())})")
    return array.astype(np.int64)


def frame_flags_from_masks(masks, path: Path) -> np.ndarray:
    """One 0/1 per mask of a cell of pixel masks (``volLabel``): 1 when the mask has any nonzero pixel."""
    array = np.asarray(masks)
    if array.dtype != object and (array.dtype.kind not in "biuf" or array.dtype.names):
        raise DatasetError(f"{path}: expected a cell of pixel masks (volLabel), found {describe_array(array)}")
    if array.dtype != object and array.ndim == 3:  # one H x W x F array instead of a cell
        return np.array([int(np.any(array[:, :, f])) for f in range(array.shape[2])], dtype=np.uint8)
    items = mat_cell_items(masks)
    if not items:
        raise DatasetError(f"{path}: the mask cell is empty")
    if len(items) > MAX_FRAMES:
        raise DatasetError(f"{path}: a cell of {len(items)} masks, more than the limit of {MAX_FRAMES}")
    flags = []
    for index, mask in enumerate(items):
        mask = np.asarray(mask)
        if mask.dtype.kind not in "biuf" or mask.dtype.names:
            raise DatasetError(f"{path}: mask {index + 1} of the cell: expected a numeric pixel mask, found "
                               f"{describe_array(mask)}")
        flags.append(int(np.any(mask)))
    return np.array(flags, dtype=np.uint8)


def read_vol_label(path: str | Path, frames: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Per-frame labels of an Avenue ``N_label.mat`` (variable ``volLabel``, a 1 x F cell of pixel masks).

    ``frames`` and ``size`` (width, height): the video's, when known; the file may then hold no more than their
    masks need (as doubles, the widest type MATLAB writes), checked before anything is allocated."""
    limit = MAX_MAT_ARRAY_BYTES
    if frames is not None and size is not None:
        limit = min(limit, (frames + 1) * (size[0] * size[1] * 8 + MASK_OVERHEAD_BYTES) + 4096)
    array = load_mat_variable(path, "volLabel", reduce_cells=_mask_flag, max_bytes=limit)
    return frame_flags_from_masks(array, Path(path))


def _mask_flag(mask):
    """A numeric mask replaced by its flag (0-d uint8: any nonzero pixel); anything else kept, to be reported."""
    array = np.asarray(mask)
    if array.dtype.kind in "biuf" and not array.dtype.names:
        return np.uint8(np.any(array))
    return mask


def read_gt_vector(path: str | Path, name: str = "gt", frames: int | None = None) -> np.ndarray:
    """A ``[1, F]`` (or ``[F, 1]``) per-frame vector stored in a ``.mat`` file (LAD2000 ``gt_*.mat``).

    ``frames``: the video's, when known; the file may then hold no more than its labels need (as doubles)."""
    limit = VECTOR_MAT_BYTES if frames is None else min(VECTOR_MAT_BYTES, (frames + 16) * 8 + (64 << 10))
    array = np.asarray(load_mat_variable(path, name, max_bytes=limit))
    if array.dtype.kind not in "biuf" or array.dtype.names:
        raise DatasetError(f"{path}: expected {name!r} to be a 1 x F vector of frame labels, found "
                           f"{describe_array(array)}")
    if array.ndim > 2 or (array.ndim == 2 and min(array.shape) > 1):
        raise DatasetError(f"{path}: expected {name!r} to be a 1 x F vector of frame labels, found shape {array.shape}")
    if array.size > MAX_FRAMES:
        raise DatasetError(f"{path}: {array.size} frame labels, more than the limit of {MAX_FRAMES}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise DatasetError(f"{path}: the frame labels {name!r} contain NaN")
    return (array.ravel() != 0).astype(np.uint8)


# the bracket body stops at the next '[' too, so that a file of unclosed brackets is scanned in linear time
_GT_FRAME = re.compile(r"TestVideoFile\s*\{\s*(end\s*\+\s*1|\d+)\s*\}\s*\.\s*gt_frame\s*=\s*\[([^\[\]]*)\]")


def parse_ucsd_m(text: str, source: str = "UCSD .m file") -> list[Ranges]:
    """Per-video ranges from the official ``UCSDpedN.m`` (``TestVideoFile{end+1}.gt_frame = [61:180];``).

    Inside the brackets: ``a:b`` (1-based inclusive), ``a:s:b`` or single frames, separated by commas or spaces.
    ``TestVideoFile{k}`` with an explicit index is honoured.
    """
    text = re.sub(r"%[^\n]*", "", text)  # MATLAB comments
    videos: dict[int, Ranges] = {}
    next_index = 1
    budget = [MAX_LISTED_FRAMES]  # ranges and frames listed one by one (a:step:b), for the whole file
    for match in _GT_FRAME.finditer(text):
        if match.group(1).replace(" ", "").startswith("end"):
            index = next_index
        else:
            digits = match.group(1).lstrip("0") or "0"
            index = int(digits) if len(digits) <= 7 else MAX_VIDEOS + 1
        if not 1 <= index <= MAX_VIDEOS:
            raise DatasetError(f"{source}: TestVideoFile{{{match.group(1)[:20]}}}: video index out of range "
                               f"(expected 1 to {MAX_VIDEOS})")
        next_index = max(next_index, index + 1)
        videos[index] = _parse_matlab_vector(match.group(2), f"{source}, video {index}", budget)
    if not videos:
        raise DatasetError(f"{source}: no 'TestVideoFile{{...}}.gt_frame = [...]' lines found")
    last = max(videos)
    if len(videos) != last:
        missing = [i for i in range(1, last + 1) if i not in videos]
        shown = ", ".join(map(str, missing[:10])) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise DatasetError(f"{source}: no gt_frame for videos {shown} (videos 1 to {last} are indexed)")
    return [videos[i] for i in range(1, last + 1)]


def _parse_matlab_vector(body: str, where: str, budget: list[int] | None = None) -> Ranges:
    """Ranges from the inside of ``[...]``. ``a:1:b`` is one range; ``a:step:b`` lists its frames one by one.
    At most ``budget[0]`` ranges and listed frames (shared by the whole file)."""
    budget = budget if budget is not None else [MAX_LISTED_FRAMES]
    body = ":".join(part.strip() for part in body.split(":"))  # "61 : 180" -> "61:180" (linear, unlike \s*:\s*)
    ranges: Ranges = []
    for match in re.finditer(r"[^,;\s]+", body):
        token = match.group()
        if budget[0] <= 0:
            raise DatasetError(f"{where}: more than {MAX_LISTED_FRAMES} ranges and frames in the file")
        budget[0] -= 1
        parts = token.split(":")
        bad = f"{where}: cannot read {preview(token)} (expected a:b, a:step:b or a frame number)"
        if len(parts) > 3:
            raise DatasetError(bad)
        numbers = [_matlab_integer(part, bad, where) for part in parts]
        if len(numbers) == 1:
            ranges.append(_one_based_inclusive(numbers[0], numbers[0], where))
        elif len(numbers) == 2:
            ranges.append(_one_based_inclusive(numbers[0], numbers[1], where))
        elif numbers[1] <= 0:
            raise DatasetError(f"{bad}: the step must be positive")
        elif numbers[2] < numbers[0]:
            continue  # an empty MATLAB range
        elif numbers[1] == 1:
            ranges.append(_one_based_inclusive(numbers[0], numbers[2], where))
        else:
            first, step, last = numbers
            count = (last - first) // step + 1
            if count > budget[0]:
                raise DatasetError(f"{where}: {preview(token)} lists {count} frames one by one; the file may list at "
                                   f"most {MAX_LISTED_FRAMES} ranges and frames (write a:b for a contiguous range)")
            budget[0] -= count
            ranges += [_one_based_inclusive(f, f, where) for f in range(first, last + 1, step)]
    return ranges


def _matlab_integer(text: str, bad: str, where: str) -> int:
    """A whole frame number written as MATLAB would (``61``, ``61.0``, ``6.1e1``), within ``MAX_FRAMES``; ``bad``
    is the message for text that is no number at all."""
    if not re.fullmatch(r"[+-]?(\d|\.|[eE][+-]?)+|[+-]?(inf|Inf|nan|NaN)", text):
        raise DatasetError(bad)
    return frame_number(text, where)


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
    budget = [MAX_RANGES]
    for number, line in enumerate(iter_lines(read_text_file(path, "UCF-Crime annotation")), 1):
        fields = _fields(line, f"{path}:{number}")
        if not fields:
            continue
        if len(fields) < 2 or (len(fields) - 2) % 2:
            raise DatasetError(f"{path}:{number}: expected 'name.mp4 Class s1 e1 [s2 e2 ...]', "
                               f"found {preview(line.strip())}")
        name, class_name = Path(fields[0]).stem, fields[1]
        out[name] = (class_name, _pairs(fields[2:], f"{path}:{number}", budget))
    if not out:
        raise DatasetError(f"{path}: no annotation lines")
    return out


def read_xd_annotations(path: str | Path) -> dict[str, Ranges]:
    """XD-Violence ``annotations.txt``: ``{video stem: ranges}`` from lines ``name s1 e1 s2 e2 ...``
    (0-based, end exclusive; a ``.mp4`` suffix on the name is optional)."""
    path = Path(path)
    out: dict[str, Ranges] = {}
    budget = [MAX_RANGES]
    for number, line in enumerate(iter_lines(read_text_file(path, "XD-Violence annotation")), 1):
        fields = _fields(line, f"{path}:{number}")
        if not fields:
            continue
        if (len(fields) - 1) % 2:
            raise DatasetError(f"{path}:{number}: expected 'name s1 e1 [s2 e2 ...]', found {preview(line.strip())}")
        name = fields[0][:-4] if fields[0].lower().endswith(".mp4") else fields[0]
        out.setdefault(name, []).extend(_pairs(fields[1:], f"{path}:{number}", budget))
    return out


def _fields(line: str, where: str) -> list[str]:
    """The whitespace-separated fields of a line, at most ``MAX_FIELDS`` of them."""
    fields = line.split(None, MAX_FIELDS)
    if len(fields) > MAX_FIELDS:
        raise DatasetError(f"{where}: more than {MAX_FIELDS} fields on one line")
    return fields


def _pairs(fields: list[str], where: str, budget: list[int] | None = None) -> Ranges:
    numbers = [frame_number(f, where) for f in fields]
    if budget is not None:
        budget[0] -= len(numbers) // 2
        if budget[0] < 0:
            raise DatasetError(f"{where}: more than {MAX_RANGES} events in the file")
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


def frame_number(value, where: str) -> int:
    """A whole frame number from a text field or a JSON value (``240``, ``"240"``, ``240.0``; ``-1`` included),
    at most ``MAX_FRAMES`` in magnitude.

    Raises:
        DatasetError: text that is no number, a fraction, NaN, infinity, a boolean or another type, or a number
            beyond the limit; the message says what was found.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DatasetError(f"{where}: frame numbers must be integers, found {preview(value)}")
    found = value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,12}", text):
            number = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                raise DatasetError(f"{where}: frame numbers must be integers, found {preview(text)}") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise DatasetError(f"{where}: frame numbers must be whole finite numbers, found {preview(found)}")
        number = int(value)
    elif isinstance(value, int):
        number = value
    if abs(number) > MAX_FRAMES:
        raise DatasetError(f"{where}: frame number {preview(number)} beyond the limit of {MAX_FRAMES} frames")
    return number


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
        rows = _json_rows(load_json(path, "label file"), path)
    elif path.suffix.lower() in (".csv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise DatasetError(f"{path}: expected a .csv or .json file of video,start,end rows")
    out: dict[str, Ranges] = {}
    count = 0
    for video, start, end, where in rows:
        count += 1
        if count > MAX_RANGES:
            raise DatasetError(f"{where}: more than {MAX_RANGES} rows in the file")
        ranges = out.setdefault(video, [])
        if start is None and end is None:
            continue
        if start is None or end is None:
            raise DatasetError(f"{where}: start and end must be integers, found {preview(start)}, {preview(end)}")
        start_i, end_i = frame_number(start, where), frame_number(end, where)
        if start_i < 0 or end_i <= start_i:
            raise DatasetError(f"{where}: invalid range [{start_i}, {end_i}) for {preview(video)} "
                               f"(0-based, end exclusive; expected 0 <= start < end)")
        ranges.append((start_i, end_i))
    return out


def load_json(path: str | Path, what: str):
    """A JSON file, its size bounded by ``MAX_JSON_BYTES`` and its nesting by the interpreter's recursion limit.

    Raises:
        DatasetError: missing, unreadable, not UTF-8, not valid JSON, nested too deeply, or a number too long.
    """
    path = Path(path)
    text = read_text_file(path, what, max_bytes=MAX_JSON_BYTES)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON: {err}") from None
    except RecursionError:
        raise DatasetError(f"{path}: not valid {what}: JSON nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise DatasetError(f"{path}: not valid JSON: {first_line(err)}") from None


def _csv_rows(path: Path):
    """``(video, start, end, where)`` per row, read one row at a time (a header row ``video,start,end`` is
    skipped)."""
    text = read_text_file(path, "label file")

    def lines():
        for number, line in enumerate(iter_lines(text, keepends=True), 1):
            if line.count(",") > MAX_FIELDS:
                raise DatasetError(f"{path} line {number}: more than {MAX_FIELDS} fields on one line")
            yield line

    reader = csv.reader(lines())
    number, first = 0, True
    while True:
        try:
            row = next(reader, None)
        except csv.Error as err:  # a field over csv.field_size_limit(), a NUL byte, ...
            raise DatasetError(f"{path} line {reader.line_num}: not valid CSV: {first_line(err)}") from None
        if row is None:
            return
        if not row or not any(cell.strip() for cell in row):
            continue
        if first and [c.strip().lower() for c in row[:3]] == ["video", "start", "end"]:
            first = False
            continue
        first = False
        number += 1
        cells = [c.strip() for c in row]
        if len(cells) == 1:
            yield cells[0], None, None, f"{path} row {number}"
        elif len(cells) >= 3:
            start, end = (cells[1] or None), (cells[2] or None)
            yield cells[0], start, end, f"{path} row {number}"
        else:
            raise DatasetError(f"{path} row {number}: expected video,start,end, found {preview(','.join(row))}")


def _json_rows(data, path: Path):
    if isinstance(data, dict):
        for video, events in data.items():
            if not isinstance(events, list):
                raise DatasetError(f"{path}: {preview(video)}: expected a list of [start, end] pairs, "
                                   f"found {preview(events)}")
            if not events:
                yield video, None, None, str(path)
            for event in events:
                if not (isinstance(event, (list, tuple)) and len(event) == 2):
                    raise DatasetError(f"{path}: {preview(video)}: expected [start, end] pairs, found {preview(event)}")
                if event[0] is None or event[1] is None:
                    raise DatasetError(f"{path}: {preview(video)}: start and end must be integers, "
                                       f"found {preview(event)}")
                yield video, event[0], event[1], str(path)
    elif isinstance(data, list):
        for number, row in enumerate(data):
            if not isinstance(row, dict) or "video" not in row:
                raise DatasetError(f"{path}: item {number}: expected {{'video', 'start', 'end'}}, found {preview(row)}")
            video = row["video"]
            if isinstance(video, bool) or not isinstance(video, (str, int)):
                raise DatasetError(f"{path}: item {number}: 'video' must be a name, found {preview(video)}")
            yield str(video), row.get("start"), row.get("end"), f"{path} item {number}"
    else:
        raise DatasetError(f"{path}: expected a JSON object or list, found {type(data).__name__}")


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
            from vadkit.datasets.images import read_mask

            self._array = np.array([int(np.any(read_mask(file))) for file in self.files], dtype=np.uint8)
        return self._array

    def labels(self, num_frames: int) -> np.ndarray:
        if self.length != num_frames:
            raise GroundTruthError(f"ground truth {self.source} has {self.length} frames, the video has {num_frames}")
        return self.array.copy()

