"""The fuzz harness (run by ``bench/fuzz.py`` and ``tests/test_fuzz.py``): mutated copies of every format vadkit reads.

    python bench/fuzz.py [--n 10000] [--seed 0] [--targets a,b] [--timeout 10] [--save-failures DIR]
                         [--no-real-data] [--only I]

Every input is a mutated copy of a seed file of one format (bit flips, truncation, spliced chunks, overwritten
integers, interesting numbers such as ``inf`` / ``1e400`` / ``-1`` / 5000 digits, non-UTF-8 bytes, NUL bytes,
deeply nested JSON, 140 KB CSV fields, forged ``.npy`` headers, MATLAB structs / strings / NaN / sparse cells,
HDF5 cells that loop or claim huge shapes, symlink loops in a folder tree, ...), written into a small dataset tree
built once per format, and run through the public API: ``get_dataset(...).videos()`` and ``check()``, the parser
functions of ``vadkit.datasets.groundtruth`` / ``splits``, and ``vadkit.features.boxes.files.load_boxes``.

The formats: UCSD ``UCSDpedN.m``, ``pedN.mat`` / ``avenue.mat`` (v5 and v7.3), UCSD ``TestNNN_gt`` mask images,
Avenue ``volLabel`` (v5 and v7.3), LAD2000 ``gt_*.mat``, ShanghaiTech ``test_frame_mask/*.npy`` and split lists,
UCF-Crime annotation, lists and gt arrays, XD-Violence ``annotations.txt`` and gt arrays, folder-dataset
``labels.csv`` / ``labels.json`` (``read_range_table``), split JSON (``Split.load``), VEC box files (``.npz``, and
``.npy`` object arrays read by the safe unpickler), video files (mp4, MJPG avi) and frame folders decoded to the end
by ``vadkit.io.open_video``. The real samples of ``$VADKIT_DATA`` (or ``../shared/data``) are
added as seeds when present (they are only read).

Also: compressed MAT v5 bombs for ``pedN.mat`` / ``avenue.mat`` / ``volLabel`` / LAD2000 ``gt`` (a few hundred
kilobytes of zlib claiming up to 900 MB), model files loaded by ``load_detector`` (``model_file``: valid ones
mutated, or rebuilt with keys dropped, values of other types, another detector's name, pickled objects;
documented: ``ModelFileError`` / ``FileNotFoundError``) and the viewer's ``result.json`` (``result_json``: the list
must always answer, listing every folder, in JSON the server can send; documented for a video's page:
``BrokenFileError`` / ``FileNotFoundError``). Each input's own peak resident size is measured (the kernel's
``VmHWM``, reset before each input); an input under 1 MB that takes the worker past 500 MB counts under ``other``
(``MemoryBound``).

Documented failures: ``DatasetError`` (and ``VideoReadError``, ``FileNotFoundError``) for the dataset side,
``BoxFileError`` (a ``ValueError``) / ``FileNotFoundError`` for box files, ``VideoReadError`` /
``FileNotFoundError`` for videos and frame folders. Anything else, a crash of the interpreter, a hang past the
per-input timeout, a ``MemoryError`` (the worker runs under a data-size limit) or a wrong video count after
symlink loops are added to a folder tree, counts under ``other`` / ``hangs``. A documented error whose message
does not name the file counts under ``unnamed`` (reported, not a failure).

The inputs run in a worker process (restarted after a crash or a hang, so one bad input cannot end the run).
Prints one JSON line: ``inputs, clean_errors, accepted, other, other_examples, hangs, hang_examples, unnamed,
unnamed_examples, peak_memory_mb`` (the worker's maximum resident size), ``peaks_measured`` (inputs whose own
peak was measured), ``memory_examples`` (inputs that grew it by 64 MB or more), ``seconds, seed, targets,
per_target`` (outcomes and the largest input peak per target); the exit status is 1 when ``other`` or ``hangs`` is
not 0. ``--only I`` re-runs input ``I`` alone and prints its traceback (each example carries that command).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import resource
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------------------
# interesting values
# ---------------------------------------------------------------------------------------------------------------
NUMBERS = ["0", "-1", "1", "-0", "2", "inf", "-inf", "nan", "NaN", "Infinity", "-Infinity", "1e400", "-1e400",
           "1e308", "1.5", "0.5", "-1.5", "1e-400", "0x10", "1_000", "+5", "9" * 30, "9" * 5000, "10000000",
           "10000001", "1000000000", "2147483648", "4294967296", "-2147483649", "18446744073709551616", "",
           " ", "1,2", "true", "null", "\u0663", "1e3", "12.0", "007"]
TOKENS = ["[", "]", "{", "}", "(", ")", ":", ",", ";", "%", '"', "'", "\n", "\r\n", "\t", " ", "\x00", "\\",
          "end+1", "...", "TestVideoFile{end+1}.gt_frame = [", "TestVideoFile{10000000}.gt_frame = [1:2];",
          "TestVideoFile{0}.gt_frame = [1];", "1:1:10000000", "1:2:10000000", "1:0:5", "5:-1:1", "\ufeff",
          "\u2028", "\u00e9", "\U0001f600", "Abuse/", "../", "/", "-1 -1", ".mp4", "_label_", "_label_B1-0-0",
          "Normal", "video,start,end\n", '{"a": [[1, 2]]}', "[[0, 1]]", "__0.npy"]
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00",
             b"\xef\xbb\xbf"]
INTS = [0, 1, -1, 2, 7, 8, 255, 256, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        10_000_000, 1 << 40, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
NPY_SHAPES = ["()", "(0,)", "(1,)", "(3, 4)", "(1, 5, 2)", "(-1,)", "(10000000000,)", "(4611686018427387904,)",
              "(100000000,)", "(10000001,)", "(2, 2, 2, 2, 2, 2, 2, 2)", "('a',)", "(1.5,)", "(", "(5,) ,",
              "(99999999999999999999999999,)"]
NPY_DESCRS = ["'|O'", "'<U4'", "'|S3'", "'<c16'", "'|V4'", "'<M8[s]'", "'>f8'", "'|b1'", "'<f2'", "'<i8'",
              "[('a', '<i4')]", "'x'", "'<f16'", "'|u1'", "None", "'<m8'"]


class Mutator:
    """Mutations of the bytes (and, for text formats, of the text) of a seed."""

    def __init__(self, rng: random.Random, text: bool, seeds: list[bytes], npy: bool = False) -> None:
        self.rng, self.text, self.seeds, self.npy = rng, text, seeds, npy

    def __call__(self, data: bytes) -> bytes:
        rng = self.rng
        if rng.random() < 0.08:
            return data  # the seed itself: most should be accepted
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
            try:
                if self.npy and rng.random() < 0.35:
                    data = self.npy_header(data)
                elif self.text and rng.random() < 0.6:
                    data = self.text_mutation(data)
                else:
                    data = self.byte_mutation(data)
            except (ValueError, OverflowError, MemoryError):  # a mutation that does not apply to these bytes
                data = self.byte_mutation(data)
            if len(data) > 4 << 20:
                data = data[: 4 << 20]
        return data

    # -- text ---------------------------------------------------------------------------------------------------
    def text_mutation(self, data: bytes) -> bytes:
        rng = self.rng
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        kind = rng.randrange(13)
        if kind == 0:  # a number replaced by an interesting one (or all of them)
            numbers = list(re.finditer(r"-?\d+(\.\d+)?", text))
            if numbers:
                if rng.random() < 0.2:
                    value = rng.choice(NUMBERS)
                    text = re.sub(r"-?\d+(\.\d+)?", lambda _: value, text)
                else:
                    m = rng.choice(numbers)
                    text = text[: m.start()] + rng.choice(NUMBERS) + text[m.end():]
        elif kind == 1 and lines:  # a line repeated
            i = rng.randrange(len(lines))
            count = min(rng.choice((2, 3, 10, 100, 1000, 30000)), max(1, (4 << 20) // (len(lines[i]) + 1)))
            lines[i: i + 1] = [lines[i]] * count
            text = "\n".join(lines)
        elif kind == 2 and lines:
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        elif kind == 3 and len(lines) > 1:
            rng.shuffle(lines)
            text = "\n".join(lines)
        elif kind == 4:  # a token inserted
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif kind == 5:  # deep nesting
            depth = rng.choice((100, 1000, 5000, 100000))
            opener = rng.choice(("[", "{\"a\":", "[[", "{\"v\": ["))
            closer = {"[": "]", "{\"a\":": "}", "[[": "]]", "{\"v\": [": "]}"}[opener]
            text = opener * depth + text + closer * (depth if rng.random() < 0.5 else 0)
        elif kind == 6:  # a huge field
            at = rng.randrange(len(text) + 1)
            filler = rng.choice(("a", "1", "9", " ", ",", "[", "x\""))
            text = text[:at] + filler * rng.choice((5000, 140000)) + text[at:]
        elif kind == 7:  # many unclosed MATLAB brackets (quadratic regex scans)
            text += "TestVideoFile{end+1}.gt_frame = [1 " * rng.choice((100, 5000, 30000))
        elif kind == 8 and lines:  # a field of a line replaced
            i = rng.randrange(len(lines))
            fields = re.split(r"(\s+|,)", lines[i])
            if fields:
                j = rng.randrange(len(fields))
                fields[j] = rng.choice(NUMBERS + TOKENS)
                lines[i] = "".join(fields)
            text = "\n".join(lines)
        elif kind == 9:  # separators changed
            text = text.replace(rng.choice((" ", ",", "\n", ":", "\t")), rng.choice(("  ", ";", "\r\n", "\t", "", ",")))
        elif kind == 10:  # case changed
            text = text.upper() if rng.random() < 0.5 else text.lower()
        elif kind == 11:  # a line from the token list appended
            text += "\n" + " ".join(rng.choice(NUMBERS + TOKENS) for _ in range(rng.randrange(1, 8)))
        else:  # json-ish values replaced
            text = re.sub(r"\[\s*-?\d+\s*,\s*-?\d+\s*\]", lambda _: rng.choice(
                ("[1e400, 2]", "[1, Infinity]", "[NaN, 3]", "[true, false]", "[null, null]", "[\"a\", \"b\"]",
                 "[1.5, 2]", "[[1], 2]", "[1, 2, 3]", "[]", "{}", "[-5, 3]", "[" + "9" * 5000 + ", 1]")), text,
                          count=rng.choice((1, 0)))
        data = text.encode("utf-8", errors="surrogatepass")
        if rng.random() < 0.1:
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.choice(BAD_BYTES) + data[at:]
        return data

    # -- bytes --------------------------------------------------------------------------------------------------
    def byte_mutation(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        kind = rng.randrange(11)
        if kind == 0 and buf:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:  # bytes set to interesting values
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(len(buf))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A))
        elif kind == 2 and len(buf) >= 4:  # an integer field overwritten
            width = rng.choice((1, 2, 4, 8))
            i = rng.randrange(max(1, len(buf) - width + 1))
            if rng.random() < 0.7:
                i -= i % width
            value = rng.choice(INTS) % (1 << (8 * width))
            buf[i: i + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif kind == 3:  # truncated
            buf = buf[: rng.randrange(len(buf) + 1)] if rng.random() < 0.8 else bytearray()
        elif kind == 4 and buf:  # a chunk deleted
            i = rng.randrange(len(buf))
            del buf[i: i + rng.randint(1, max(1, len(buf) // 4))]
        elif kind == 5 and buf:  # a chunk duplicated
            i = rng.randrange(len(buf))
            chunk = buf[i: i + rng.randint(1, 256)]
            j = rng.randrange(len(buf) + 1)
            buf[j:j] = chunk * rng.choice((1, 2, 16))
        elif kind == 6:  # random bytes inserted
            j = rng.randrange(len(buf) + 1)
            buf[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        elif kind == 7:  # garbage appended
            buf += bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
        elif kind == 8 and self.seeds:  # spliced with another seed
            other = rng.choice(self.seeds)
            i, j = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
            buf = buf[:i] + bytearray(other[j:])
        elif kind == 9:  # non-UTF-8 bytes
            j = rng.randrange(len(buf) + 1)
            buf[j:j] = rng.choice(BAD_BYTES)
        elif buf:  # a run overwritten with one value
            i = rng.randrange(len(buf))
            n = rng.randint(1, 64)
            buf[i: i + n] = bytes([rng.choice((0, 0xFF, 0x41))]) * len(buf[i: i + n])
        return bytes(buf)

    def npy_header(self, data: bytes) -> bytes:
        rng = self.rng
        if not data.startswith(b"\x93NUMPY") or len(data) < 10:
            return self.byte_mutation(data)
        head_len = int.from_bytes(data[8:10], "little") if data[6] == 1 else int.from_bytes(data[8:12], "little")
        start = 10 if data[6] == 1 else 12
        header = data[start: start + head_len].decode("latin1")
        body = data[start + head_len:]
        kind = rng.randrange(5)
        if kind == 0:
            header = re.sub(r"'shape': \([^)]*\)", "'shape': " + rng.choice(NPY_SHAPES), header)
        elif kind == 1:
            header = re.sub(r"'descr': ('[^']*'|\[.*?\])", "'descr': " + rng.choice(NPY_DESCRS), header)
        elif kind == 2:
            header = header.replace("False", "True") if "False" in header else header.replace("True", "False")
        elif kind == 3:  # the header length field
            value = rng.choice(INTS) % (1 << (8 * (start - 8)))
            return data[:8] + value.to_bytes(start - 8, "little") + data[start:]
        else:  # the version
            return data[:6] + bytes([rng.choice((0, 1, 2, 3, 4, 255)), 0]) + data[8:]
        raw = header.encode("latin1")
        return data[:8] + len(raw).to_bytes(start - 8, "little") + raw + body


# ---------------------------------------------------------------------------------------------------------------
# writers for the trees and seeds (self-contained: the bench does not import the tests)
# ---------------------------------------------------------------------------------------------------------------
def write_frames(folder: Path, n: int, ext: str = ".jpg") -> Path:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}{ext}"), np.full((8, 8, 3), (i * 7) % 256, np.uint8))
    return folder


def write_mp4(path: Path, n: int) -> Path:
    import numpy as np

    from vadkit.io import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, [np.full((8, 8, 3), (i * 3) % 256, np.uint8) for i in range(n)], fps=30.0)


def cell(items: list):
    import numpy as np

    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def savemat(variables: dict, **kwargs) -> bytes:
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, **kwargs)
    return buffer.getvalue()


def mat73(name: str, items: list | None = None, array=None, kind: str = "cell") -> bytes:
    """A MATLAB v7.3 file (HDF5 with a 512-byte header) holding ``name``: a cell of ``items``, a plain ``array``,
    a group (``kind="struct"``), a cell whose element refers to the cell itself (``"loop"``), or a chunked dataset
    that claims a huge shape (``"huge"``)."""
    import h5py
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.mat"
        with h5py.File(path, "w", userblock_size=512) as handle:
            if kind == "struct":
                group = handle.create_group(name)
                group.create_dataset("a", data=np.zeros((3, 1)))
            elif kind == "huge":
                handle.create_dataset(name, shape=(1 << 20, 1 << 20), dtype="f8", chunks=(16, 16))
            elif kind == "loop":
                data = handle.create_dataset(name, shape=(1, 1), dtype=h5py.ref_dtype)
                data[0, 0] = data.ref
            elif items is not None:
                refs = handle.create_group("#refs#")
                data = np.empty((len(items), 1), dtype=h5py.ref_dtype)
                for i, item in enumerate(items):
                    data[i, 0] = refs.create_dataset(f"r{i}", data=np.asarray(item).T).ref
                handle.create_dataset(name, data=data)
            else:
                handle.create_dataset(name, data=np.asarray(array).T)
        with open(path, "r+b") as raw:
            raw.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8)
                      + b"\x00\x02IM")
        return path.read_bytes()


# -- compressed MAT v5 bombs: a few hundred kilobytes of zlib claiming up to a gigabyte, built in pieces (the
#    inflated content is never held) after the MAT-file format's element layout
MAT_TYPES = {"int8": (1, 8, 1), "uint8": (2, 9, 1), "int16": (3, 10, 2), "uint16": (4, 11, 2), "int32": (5, 12, 4),
             "uint32": (6, 13, 4), "single": (7, 7, 4), "double": (9, 6, 8)}  # (data type, class, item size)


def _mat_tag(mdtype: int, nbytes: int) -> bytes:
    return struct.pack("<II", mdtype, nbytes)


def _mat_padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def _mat_head(mclass: int, dims: tuple, name: bytes) -> bytes:
    """Array flags, dimensions and name of an miMATRIX element."""
    flags = _mat_tag(6, 8) + struct.pack("<II", mclass, 0)
    shape = _mat_tag(5, 4 * len(dims)) + _mat_padded(struct.pack(f"<{len(dims)}i", *dims))
    return flags + shape + _mat_tag(1, len(name)) + _mat_padded(name)


def _mat_numeric(dims: tuple, kind: str, fill: int, name: bytes = b"") -> list:
    """Pieces of a numeric miMATRIX element: bytes, or ``(byte, count)`` runs of one byte."""
    mdtype, mclass, size = MAT_TYPES[kind]
    nbytes = math.prod(dims) * size
    body = [_mat_head(mclass, dims, name), _mat_tag(mdtype, nbytes), (fill, nbytes), bytes(-nbytes % 8)]
    return [_mat_tag(14, _pieces_size(body))] + body


def _mat_cell(children: list[list], dims: tuple | None = None, name: bytes = b"") -> list:
    body = [_mat_head(1, dims or (1, len(children)), name)] + [piece for child in children for piece in child]
    return [_mat_tag(14, _pieces_size(body))] + body


def _pieces_size(pieces: list) -> int:
    return sum(p[1] if isinstance(p, tuple) else len(p) for p in pieces)


def _mat_compressed(pieces: list) -> bytes:
    """The miCOMPRESSED element of ``pieces``, deflated chunk by chunk."""
    deflate, out = zlib.compressobj(6), []
    for piece in pieces:
        if isinstance(piece, tuple):
            value, count = piece
            block = bytes([value]) * min(count, 1 << 20)
            while count > 0:
                out.append(deflate.compress(block[:count]))
                count -= len(block)
        else:
            out.append(deflate.compress(piece))
    data = b"".join(out) + deflate.flush()
    return _mat_tag(15, len(data)) + data


def mat_bomb(name: str, kind: str, inflated: int, rng: random.Random) -> bytes:
    """A MAT v5 file whose variable ``name`` inflates to about ``inflated`` bytes: ``ranges`` (a cell holding
    one 2 x N array), ``videos`` (a cell of many 2 x M arrays), ``masks`` (a cell of large masks), ``vector`` (one
    1 x N array), ``many`` (several compressed variables)."""
    header = b"MATLAB 5.0 MAT-file, fuzz bomb".ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    dtype = rng.choice(("uint8", "uint8", "double", "int32", "single"))
    size = MAT_TYPES[dtype][2]
    fill = rng.choice((0, 1, 1))
    if kind == "ranges":
        variable = _mat_cell([_mat_numeric((2, max(1, inflated // (2 * size))), dtype, fill)], name=name.encode())
    elif kind == "videos":
        count = rng.choice((16, 1000, 100_000))
        each = max(1, inflated // (count * 2 * size))
        variable = _mat_cell([_mat_numeric((2, each), dtype, fill) for _ in range(count)], name=name.encode())
    elif kind == "masks":
        side = rng.choice((64, 640, 4096))
        count = max(1, inflated // (side * side * size))
        variable = _mat_cell([_mat_numeric((side, side), dtype, fill) for _ in range(count)], name=name.encode())
    elif kind == "vector":
        variable = _mat_numeric((1, max(1, inflated // size)), dtype, fill, name.encode())
    else:
        parts = rng.randint(2, 6)
        return header + b"".join(_mat_compressed(_mat_numeric((1, max(1, inflated // (parts * size))), dtype, fill,
                                                               f"{name}{i or ''}".encode())) for i in range(parts))
    return header + _mat_compressed(variable)


def gen_mat_bomb(name: str, kinds: tuple[str, ...]):
    """Small compressed bombs (up to 64 MB inflated; the setups add a few up to 900 MB as seeds)."""
    def generate(rng: random.Random) -> bytes:
        return mat_bomb(name, rng.choice(kinds), rng.choice((1 << 20, 16 << 20, 64 << 20)), rng)
    return generate


def bomb_seeds(name: str, kinds: tuple[str, ...]) -> list[bytes]:
    rng = random.Random(name + ",".join(kinds))
    return [mat_bomb(name, kind, size, rng) for kind in kinds for size in (200 << 20, 900 << 20)]


def either(first, second, share: float):
    """A generator that calls ``second`` for about ``share`` of the inputs and ``first`` for the others."""
    def generate(rng: random.Random) -> bytes:
        return second(rng) if rng.random() < share else first(rng)
    return generate


def npy(array, allow_pickle: bool = False) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def image(array, ext: str) -> bytes:
    import cv2

    ok, data = cv2.imencode(ext, array)
    assert ok
    return data.tobytes()


def shared_data() -> Path | None:
    for candidate in (os.environ.get("VADKIT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def real(relative: str, data: Path | None) -> list[bytes]:
    if data is None:
        return []
    path = data / relative
    return [path.read_bytes()] if path.is_file() else []


# ---------------------------------------------------------------------------------------------------------------
# generators: fresh structured seeds (random MATLAB values, arrays, JSON, text in each format's grammar)
# ---------------------------------------------------------------------------------------------------------------
def _number(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(NUMBERS)
    return str(rng.choice((rng.randint(-2, 20), rng.randint(0, 10 ** 7))))


def _name(rng: random.Random, names: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(names)
    if roll < 0.8:
        return rng.choice(names) + rng.choice((".mp4", ".avi", "__0.npy", "_i3d.npy", "/", "\u00e9", " x"))
    return "".join(rng.choice("abcAB_-./\\0123456789 \u00e9") for _ in range(rng.randint(0, 12)))


def _random_array(rng: random.Random, kinds: str = "numeric"):
    import numpy as np

    shape = tuple(rng.choice((0, 1, 1, 2, 3, 5)) for _ in range(rng.choice((1, 1, 2, 2, 3))))
    dtype = rng.choice(("float64", "float32", "uint8", "int8", "uint16", "int32", "int64", "uint64", "bool")
                       + (("complex128", "<U3", "S2") if kinds == "any" else ()))
    values = [rng.choice((0, 1, 1, 2, 3, 5, 12, -1, 255, 10 ** 7, 2 ** 40, float("nan"), float("inf"), 0.5))
              for _ in range(int(np.prod(shape)))]
    try:
        return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)
    except (ValueError, OverflowError):
        return np.zeros(shape, dtype=dtype)


def _random_mat_value(rng: random.Random, depth: int = 0):
    import numpy as np
    from scipy import sparse

    kind = rng.choice(("array", "array", "ranges", "mask", "cell", "cell", "struct", "text", "sparse", "empty",
                       "logical", "complex", "scalar"))
    if kind == "ranges":
        pairs = []
        for _ in range(rng.randint(0, 3)):
            a = rng.randint(-1, 14)
            pairs.append((a, a + rng.randint(-1, 6)))
        dtype = rng.choice(("uint16", "float64", "int32")) if min(min(pairs or [(1, 1)])) >= 0 else "int32"
        return np.array(pairs or [(1, 1)], dtype=dtype).T
    if kind == "mask":
        return (_random_array(rng) != 0).astype(rng.choice(("uint8", "bool", "float64")))
    if kind == "cell" and depth < 3:
        return cell([_random_mat_value(rng, depth + 1) for _ in range(rng.randint(0, 6))])
    if kind == "struct" and depth < 3:
        return {rng.choice(("a", "b", "gt", "volLabel", "x")): _random_mat_value(rng, depth + 1)
                for _ in range(rng.randint(1, 3))}
    if kind == "text":
        return rng.choice(("abc", "", "\u00e9t\u00e9", "01 1 0"))
    if kind == "sparse":
        return sparse.csr_matrix(_random_array(rng).reshape(-1, 1) if rng.random() < 0.5 else np.eye(2))
    if kind == "empty":
        return np.zeros((0, rng.choice((0, 1, 2))))
    if kind == "logical":
        return _random_array(rng).astype(bool)
    if kind == "complex":
        return _random_array(rng).astype(np.complex128) * 1j
    if kind == "scalar":
        return rng.choice((0, 1, -1, 3.5, float("nan"), 2 ** 62))
    return _random_array(rng)


def _random_h5(rng: random.Random, name: str) -> bytes:
    """A v7.3-like HDF5 file with a random layout under ``name``."""
    import h5py
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.mat"
        with h5py.File(path, "w", userblock_size=512) as handle:
            refs = handle.create_group("#refs#")
            kind = rng.choice(("cell", "cell", "array", "strings", "compound", "vlen", "empty", "group", "soft",
                               "external", "nullref", "groupref", "scalar", "huge"))
            if kind in ("cell", "nullref", "groupref"):
                data = np.empty((rng.randint(0, 5), 1), dtype=h5py.ref_dtype)
                for i in range(data.shape[0]):
                    if kind == "groupref" and i == 0:
                        data[i, 0] = refs.create_group(f"g{i}").ref
                    elif kind == "nullref" and i == 0:
                        data[i, 0] = h5py.Reference()
                    else:
                        item = _random_array(rng)
                        data[i, 0] = refs.create_dataset(f"r{i}", data=item).ref
                handle.create_dataset(name, data=data)
            elif kind == "array":
                handle.create_dataset(name, data=_random_array(rng))
            elif kind == "strings":
                handle.create_dataset(name, data=np.array([b"ab", b"c"], dtype=h5py.string_dtype()))
            elif kind == "compound":
                handle.create_dataset(name, data=np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))
            elif kind == "vlen":
                data = handle.create_dataset(name, (2,), dtype=h5py.vlen_dtype(np.dtype("int32")))
                data[0], data[1] = [1, 2, 3], [4]
            elif kind == "empty":
                handle.create_dataset(name, data=h5py.Empty("f8"))
            elif kind == "group":
                handle.create_group(name).create_dataset("a", data=np.zeros(2))
            elif kind == "soft":
                handle[name] = h5py.SoftLink("/" + name)
            elif kind == "external":
                handle[name] = h5py.ExternalLink("/etc/hostname", "/x")
            elif kind == "scalar":
                handle.create_dataset(name, data=np.float64(rng.choice((1.0, float("nan")))))
            else:
                handle.create_dataset(name, shape=(rng.choice((1 << 16, 1 << 31)), 1 << 16), dtype="u1",
                                      chunks=(1, 1 << 10))
        with open(path, "r+b") as raw:
            raw.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8)
                      + b"\x00\x02IM")
        return path.read_bytes()


def gen_mat(name: str):
    def generate(rng: random.Random) -> bytes:
        if rng.random() < 0.25:
            return _random_h5(rng, name)
        variables = {name if rng.random() < 0.9 else "other": _random_mat_value(rng)}
        try:
            return savemat(variables, do_compression=rng.random() < 0.3)
        except Exception:  # noqa: BLE001  (a value savemat cannot write: use a plain one)
            return savemat({name: _random_array(rng)})
    return generate


def gen_npy(rng: random.Random) -> bytes:
    import numpy as np

    roll = rng.random()
    if roll < 0.1:
        objects = np.empty(rng.randint(0, 3), dtype=object)
        for i in range(len(objects)):
            objects[i] = rng.choice((np.zeros((1, 4)), "a", None, [1, 2], np.zeros(2, dtype=object)))
        return npy(objects, allow_pickle=True)
    array = _random_array(rng, "any")
    if roll < 0.3:
        array = (array != 0).astype(rng.choice(("uint8", "float32", "bool")))
    if rng.random() < 0.2:
        array = np.asfortranarray(array)
    return npy(array)


def gen_text(kind: str):
    def generate(rng: random.Random) -> bytes:
        lines = []
        for _ in range(rng.randint(0, 6)):
            numbers = [_number(rng) for _ in range(rng.choice((0, 1, 2, 2, 4, 4, 5, 6)))]
            if kind == "m":
                body = rng.choice((", ", " ", ";")).join(
                    rng.choice((f"{a}:{b}", f"{a}", f"{a}:{b}:{c}")) for a, b, c in
                    zip(numbers, numbers[1:] + ["1"], numbers[2:] + ["9", "9"]))
                index = rng.choice(("end+1", "end + 1", "1", "2", "3", _number(rng)))
                lines.append(f"TestVideoFile{{{index}}}.gt_frame = [{body}];")
            elif kind == "ucf":
                name = _name(rng, ("Abuse028_x264.mp4", "Normal_Videos_003_x264.mp4", "Arson011_x264.mp4"))
                lines.append("  ".join([name, rng.choice(("Abuse", "Normal", "normal", "X"))] + numbers))
            elif kind == "xd":
                lines.append(" ".join([_name(rng, ("v1_label_B1-0-0", "v2_label_G-B2-B6", "v3_label_A",
                                                   "v9_label_Q"))] + numbers))
            elif kind == "list":
                lines.append(_name(rng, ("01_001", "01_002", "01_0014", "Abuse/Abuse001_x264.mp4",
                                         "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4", "Abuse001")))
            elif kind == "csv":
                cells = [_name(rng, ("fall", "punch", "calm", "walk", "video"))] + numbers[:rng.choice((0, 1, 2, 2, 3))]
                lines.append(rng.choice((",", ", ", ";")).join(cells))
        return "\n".join(lines).encode("utf-8", errors="surrogatepass")
    return generate


def _random_json(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 4 and roll < 0.45:
        return {rng.choice(("fall", "punch", "video", "start", "end", "train", "test", "val", "seed", "rule",
                            "dataset")): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.choice((0, 1, -1, 5, 2.5, 10 ** 30, float("inf"), float("nan"), True, None, "fall", "a", "", [0, 6],
                       [[2, 5]], ["a", "b"]))


def gen_json(kind: str):
    def generate(rng: random.Random) -> bytes:
        if rng.random() < 0.4:
            data = _random_json(rng)
        elif kind == "ranges":
            data = {_name(rng, ("fall", "punch", "calm", "walk")): [[_random_json(rng, 4), _random_json(rng, 4)]
                                                                   for _ in range(rng.randint(0, 2))]
                    for _ in range(rng.randint(0, 3))}
        else:
            data = {key: rng.choice((["a", "b"], ["c"], [], "abc", [1], None, 3, "r"))
                    for key in ("train", "test", "val", "seed", "rule", "dataset") if rng.random() < 0.8}
        return json.dumps(data).encode()
    return generate


def gen_npz(rng: random.Random) -> bytes:
    import numpy as np

    arrays = {}
    for key in ("frame", "xyxy", "num_frames"):
        if rng.random() < 0.9:
            arrays[key] = _random_array(rng, "any") if rng.random() < 0.5 else {
                "frame": np.array([0, 1, 1]), "xyxy": np.ones((3, 4), np.float32),
                "num_frames": np.int64(rng.choice((2, 3, 0, -1)))}[key]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# targets: a tree built once, seeds, the file each input replaces, and what is run
# ---------------------------------------------------------------------------------------------------------------
class Target:
    """One format. ``setup(work)`` builds the tree; each input writes its bytes to ``self.file`` and calls
    ``self.run()``."""

    name = "target"
    text = False
    npy = False
    boxes = False  # documented errors are ValueError / FileNotFoundError (load_boxes) instead of DatasetError
    video = False  # documented errors are VideoReadError / FileNotFoundError (decoding)
    documented: tuple = ()  # the documented errors, where they are none of the above
    generate = None  # a function rng -> bytes making fresh structured seeds, or None

    def __init__(self, work: Path, data: Path | None) -> None:
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        self.data = data
        self.file: Path = self.work / "input"
        self.seeds: list[bytes] = []
        self.setup()

    def setup(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        self.file.write_bytes(data)

    def run(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Undo what an input changed besides ``self.file`` (the symlink target)."""


def _dataset(name: str, root: Path, **options):
    from vadkit.datasets import get_dataset

    dataset = get_dataset(name, root, **options)
    dataset.videos()
    dataset.check()
    return dataset


def _ranges_text_seeds(rng: random.Random, count: int, frames: int) -> list[str]:
    out = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(0, 3)):
            a = rng.randint(1, frames)
            b = rng.randint(a, frames)
            pieces.append(rng.choice((f"{a}:{b}", f"{a}", f"{a}:1:{b}", f"{a}:2:{b}", f"{a} : {b}")))
        out.append(rng.choice((", ", " ", "; ")).join(pieces))
    return out


class UCSDm(Target):
    name, text = "ucsd_m", True

    generate = staticmethod(gen_text("m"))

    def setup(self) -> None:
        root = self.work / "UCSDped2"
        write_frames(root / "Train" / "Train001", 4, ".tif")
        for i in (1, 2):
            write_frames(root / "Test" / f"Test{i:03d}", 12, ".tif")
        self.root = root
        self.file = root / "Test" / "UCSDped2.m"
        rng = random.Random(1)
        for _ in range(6):
            bodies = _ranges_text_seeds(rng, 2, 12)
            lines = ["TestVideoFile = {};", "% the official file"]
            lines += [f"TestVideoFile{{end+1}}.gt_frame = [{b}];" for b in bodies]
            self.seeds.append(("\n".join(lines) + "\n").encode())
        self.seeds.append(b"TestVideoFile{2}.gt_frame = [1:2:7];\nTestVideoFile{1}.gt_frame = [3:4];\n")
        self.seeds += real("ucsd_ped2/UCSDped2.m", self.data)

    def run(self) -> None:
        _dataset("ucsd_ped2", self.root, ground_truth="m")


def _ranges_mat_seeds(name: str) -> list[bytes]:
    import numpy as np
    from scipy import sparse

    ranges = lambda rs: np.array(rs, dtype=np.uint16).T.reshape(2, -1)  # noqa: E731
    good = cell([ranges([(3, 8)]), ranges([(1, 2), (5, 12)])])
    seeds = [savemat({name: good}), savemat({name: good}, do_compression=True),
             savemat({name: ranges([(1, 5)]).astype(float)}, format="4")]
    seeds.append(savemat({name: cell([np.array([[3.0], [8.0]]), np.array([[np.nan], [np.inf]])])}))
    seeds.append(savemat({name: cell([np.array([[3.5], [8.0]]), np.zeros((0, 0))])}))
    seeds.append(savemat({name: cell(["abc", "de"])}))
    seeds.append(savemat({name: {"a": 1, "b": np.zeros(3)}}))
    seeds.append(savemat({name: cell([cell([ranges([(1, 2)])]), ranges([(1, 3)])])}))
    seeds.append(savemat({name: cell([sparse.csr_matrix(np.eye(2)), ranges([(1, 3)])])}))
    seeds.append(savemat({name: cell([np.array([[1 + 2j], [3]]), np.array([[True], [True]])])}))
    seeds.append(savemat({name: cell([np.array([[2 ** 62], [2 ** 62 + 5]], dtype=np.int64), ranges([(1, 3)])])}))
    seeds.append(savemat({name: ranges([(1, 5)])}))
    seeds.append(savemat({name: cell([np.ones((3, 4)), np.ones((2, 2, 2))])}))
    seeds.append(savemat({"other": good}))
    seeds.append(mat73(name, items=[ranges([(3, 8)]).astype(float), ranges([(1, 12)]).astype(float)]))
    seeds.append(mat73(name, kind="struct"))
    seeds.append(mat73(name, kind="loop"))
    seeds.append(mat73(name, kind="huge"))
    seeds.append(mat73(name, array=np.array([[1.0, 5.0]])))
    return seeds


RANGE_BOMBS = ("ranges", "videos", "many")


class UCSDMat(Target):
    name = "ucsd_mat"

    generate = staticmethod(either(gen_mat("gt"), gen_mat_bomb("gt", RANGE_BOMBS), 0.3))

    def setup(self) -> None:
        root = self.work / "ped2"
        write_frames(root / "training" / "frames" / "01", 4)
        for i in (1, 2):
            write_frames(root / "testing" / "frames" / f"{i:02d}", 12)
        self.root = root
        self.file = root / "ped2.mat"
        self.seeds = _ranges_mat_seeds("gt") + real("ucsd_ped2/ped2.mat", self.data) + bomb_seeds("gt", ("ranges",))

    def run(self) -> None:
        _dataset("ucsd_ped2", self.root)


class UCSDMasks(Target):
    name = "ucsd_masks"

    def setup(self) -> None:
        import numpy as np

        root = self.work / "UCSDped2"
        write_frames(root / "Train" / "Train001", 3, ".tif")
        write_frames(root / "Test" / "Test001", 4, ".tif")
        masks = root / "Test" / "Test001_gt"
        masks.mkdir(parents=True)
        mask = np.zeros((8, 8), np.uint8)
        for i in range(1, 4):
            (masks / f"{i:03d}.bmp").write_bytes(image(mask, ".bmp"))
        self.root = root
        self.file = masks / "004.bmp"
        mask[3, 4] = 255
        self.seeds = [image(mask, ".bmp"), image(np.zeros((8, 8, 3), np.uint8), ".bmp"), image(mask, ".png"),
                      image(mask, ".tif")]

    def run(self) -> None:
        _dataset("ucsd_ped2", self.root, ground_truth="masks")


def _vol_label_seeds() -> list[bytes]:
    import numpy as np

    def masks(flags, dtype=np.uint8):
        out = []
        for flag in flags:
            m = np.zeros((6, 10), dtype)
            if flag:
                m[2:4, 5:7] = 1
            out.append(m)
        return out

    seeds = [savemat({"volLabel": cell(masks([0, 1, 1, 0, 1, 0]))}),
             savemat({"volLabel": cell(masks([0, 1, 1, 0, 1, 0], bool))}, do_compression=True),
             savemat({"volLabel": cell(masks([0, 1, 0, 0, 0, 1], float))}),
             savemat({"volLabel": np.stack(masks([1, 0, 1, 0, 0, 0]), axis=2)}),
             savemat({"volLabel": {"a": 1, "b": np.zeros(3)}}),
             savemat({"volLabel": cell(["ab", "c", "d", "e", "f", "g"])}),
             savemat({"volLabel": cell([cell(masks([1])), *masks([0] * 5)])}),
             savemat({"volLabel": cell([np.full((2, 2), np.nan), *masks([0] * 5)])}),
             savemat({"volLabel": cell([])}),
             savemat({"volLabel": "text"}),
             mat73("volLabel", items=masks([0, 1, 1, 0, 1, 0])),
             mat73("volLabel", kind="struct"),
             mat73("volLabel", kind="loop"),
             mat73("volLabel", kind="huge")]
    return seeds


class AvenueVolLabel(Target):
    name = "avenue_vollabel"

    generate = staticmethod(either(gen_mat("volLabel"), gen_mat_bomb("volLabel", ("masks", "many")), 0.3))

    def setup(self) -> None:
        root = self.work / "avenue"
        write_frames(root / "training" / "frames" / "01", 3)
        write_frames(root / "testing" / "frames" / "01", 6)
        folder = root / "ground_truth_demo" / "testing_label_mask"
        folder.mkdir(parents=True)
        self.root = root
        self.file = folder / "1_label.mat"
        self.seeds = _vol_label_seeds() + bomb_seeds("volLabel", ("masks",))
        # the real 76-frame sample (17 MB of masks once read) is a seed one time in ten
        self.heavy = real("avenue_sample/ground_truth_demo/testing_label_mask/21_label.mat", self.data)

    def run(self) -> None:
        _dataset("avenue", self.root)


class AvenueMat(Target):
    name = "avenue_mat"

    generate = staticmethod(either(gen_mat("gt"), gen_mat_bomb("gt", RANGE_BOMBS), 0.3))

    def setup(self) -> None:
        root = self.work / "avenue"
        write_frames(root / "testing" / "frames" / "01", 12)
        write_frames(root / "testing" / "frames" / "02", 12)
        self.root = root
        self.file = root / "avenue.mat"
        self.seeds = _ranges_mat_seeds("gt")

    def run(self) -> None:
        _dataset("avenue", self.root)


class LAD2000Gt(Target):
    name = "lad2000_gt"

    generate = staticmethod(either(gen_mat("gt"), gen_mat_bomb("gt", ("vector", "many")), 0.3))

    def setup(self) -> None:
        import numpy as np

        root = self.work / "lad"
        write_frames(root / "Crash" / "v_Crash_a_1_1" / "img", 5)
        write_frames(root / "Fire" / "v_Fire_n_2_1", 3)
        (root / "GT_mat").mkdir()
        self.root = root
        self.file = root / "GT_mat" / "gt_Crash_a_1_1.mat"
        self.seeds = [savemat({"gt": np.array([[0, 1, 1, 0, 0]], dtype=float)}),
                      savemat({"gt": np.array([[0], [1], [1], [0], [1]], dtype=np.uint8)}),
                      savemat({"gt": np.array([[0, np.nan, 1, 0, 0]])}),
                      savemat({"gt": np.ones((3, 4))}),
                      savemat({"gt": "01100"}),
                      savemat({"gt": cell([1, 2])}),
                      savemat({"gt": {"x": 1}}),
                      savemat({"label": np.zeros((1, 5))}),
                      mat73("gt", array=np.array([[0.0, 1, 1, 0, 0]])),
                      mat73("gt", kind="huge"),
                      mat73("gt", kind="struct")] + bomb_seeds("gt", ("vector",))

    def run(self) -> None:
        _dataset("lad2000", self.root)


def _label_npy_seeds(n: int) -> list[bytes]:
    import numpy as np

    flags = np.resize(np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0]), n)
    return [npy(flags.astype(np.uint8)), npy(flags.astype(np.float32)), npy(flags.astype(np.int64)),
            npy(flags.astype(bool)), npy(flags.astype(">f8")), npy(flags.reshape(1, -1).astype(np.uint8)),
            npy(np.asfortranarray(np.stack([flags, flags]).astype(np.float64))),
            npy(np.array([1, "a", None], dtype=object), allow_pickle=True),
            npy(np.array(["0", "1"] * (n // 2))), npy(np.zeros(n, dtype=[("a", "<i4")])),
            npy(np.full(n, np.nan)), npy(np.zeros(n, np.complex64)), npy(np.float64(1.0)),
            npy(np.zeros((0,), np.uint8)),
            __import__("pickle").dumps([0, 1, 1, 0]), b"0 1 1 0\n", b""]


class ShanghaiTechMask(Target):
    name, npy = "shanghaitech_mask", True

    generate = staticmethod(gen_npy)

    def setup(self) -> None:
        root = self.work / "shanghaitech"
        write_frames(root / "training" / "frames" / "01_001", 3)
        write_frames(root / "testing" / "frames" / "01_0014", 12)
        (root / "testing" / "test_frame_mask").mkdir(parents=True)
        self.root = root
        self.file = root / "testing" / "test_frame_mask" / "01_0014.npy"
        self.seeds = _label_npy_seeds(12)
        for name in ("01_0014", "05_0018", "12_0142"):
            self.seeds += real(f"gt_samples/shanghaitech/{name}.npy", self.data)

    def run(self) -> None:
        _dataset("shanghaitech", self.root)


class ShanghaiTechLists(Target):
    name, text = "shanghaitech_lists", True

    generate = staticmethod(gen_text("list"))

    def setup(self) -> None:
        import numpy as np

        root = self.work / "shanghaitech"
        for name in ("01_001", "01_002"):
            write_frames(root / "training" / "frames" / name, 3)
        for name in ("01_0014", "01_0015"):
            write_frames(root / "testing" / "frames" / name, 4)
            (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
            np.save(root / "testing" / "test_frame_mask" / f"{name}.npy", np.array([0, 1, 1, 0], np.uint8))
        (root / "test_split.txt").write_text("01_0015\n")
        self.root = root
        self.file = root / "train_split.txt"
        self.seeds = [b"01_001\n01_002\n01_0014\n", b"/feat/01_001_i3d.npy\n01_002.avi\n01_0014__0.npy\n",
                      b"01_0015\n", b"\n\n01_001\r\n", b"Ped01_001\n"]

    def run(self) -> None:
        _dataset("shanghaitech", self.root, protocol="weak")


UCF_ANNOTATION = (b"Abuse028_x264.mp4  Abuse  3  9  -1  -1\n"
                  b"Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n")


class UCFAnnotation(Target):
    name, text = "ucf_annotation", True

    generate = staticmethod(gen_text("ucf"))

    def setup(self) -> None:
        root = self.work / "ucf"
        write_mp4(root / "Abuse" / "Abuse028_x264.mp4", 12)
        write_mp4(root / "Abuse" / "Abuse001_x264.mp4", 4)
        write_mp4(root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4", 6)
        write_mp4(root / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", 4)
        (root / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.mp4\n"
                                               "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")
        self.root = root
        self.file = root / "Temporal_Anomaly_Annotation.txt"
        self.seeds = [UCF_ANNOTATION, b"Abuse028_x264.mp4  Abuse  1  3  5  9\n",
                      b"Abuse028_x264.mp4 Abuse 3 9 -1 -1 \r\nNormal_Videos_003_x264.mp4 Normal -1 -1 -1 -1\r\n"]
        self.seeds += real("gt_samples/ucf_crime/Temporal_Anomaly_Annotation.txt", self.data)

    def run(self) -> None:
        from vadkit.datasets.groundtruth import read_ucf_annotation

        try:
            read_ucf_annotation(self.file)
        finally:
            _dataset("ucf_crime", self.root)


class UCFLists(Target):
    name, text = "ucf_lists", True

    generate = staticmethod(gen_text("list"))

    def setup(self) -> None:
        root = self.work / "ucf"
        write_mp4(root / "Abuse" / "Abuse028_x264.mp4", 12)
        write_mp4(root / "Abuse" / "Abuse001_x264.mp4", 4)
        write_mp4(root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4", 6)
        write_mp4(root / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", 4)
        (root / "Temporal_Anomaly_Annotation.txt").write_bytes(UCF_ANNOTATION)
        (root / "Anomaly_Test.txt").write_text("Abuse/Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/"
                                              "Normal_Videos_003_x264.mp4\n")
        self.root = root
        self.file = root / "Anomaly_Train.txt"
        self.seeds = [b"Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n",
                      b"Abuse\\Abuse001_x264.mp4\r\nNormal_Videos001_x264.mp4\r\n", b"Abuse001_x264\n"]

    def run(self) -> None:
        _dataset("ucf_crime", self.root)


class UCFArrays(Target):
    name, npy = "ucf_gt_arrays", True

    generate = staticmethod(gen_npy)

    def setup(self) -> None:
        root = self.work / "ucf"
        write_mp4(root / "Abuse" / "Abuse028_x264.mp4", 12)
        (root / "Temporal_Anomaly_Annotation.txt").write_bytes(b"Abuse028_x264.mp4  Abuse  3  9  -1  -1\n")
        arrays = self.work / "arrays"
        arrays.mkdir()
        self.root, self.arrays = root, arrays
        self.file = arrays / "Abuse028_x264__9_gt.npy"
        self.seeds = _label_npy_seeds(12)
        for name in ("Abuse028_x264__9_gt", "Arrest001_x264__9_gt"):
            self.seeds += real(f"gt_samples/ucf_crime/{name}.npy", self.data)

    def run(self) -> None:
        _dataset("ucf_crime", self.root, gt_arrays=self.arrays)


XD_ANNOTATIONS = b"v1_label_B1-0-0 2 5 7 9\nv2_label_G-B2-B6.mp4 0 3\n"


class XDAnnotations(Target):
    name, text = "xd_annotations", True

    generate = staticmethod(gen_text("xd"))

    def setup(self) -> None:
        root = self.work / "xd"
        write_mp4(root / "Train" / "t1_label_A.mp4", 4)
        write_mp4(root / "Test" / "v1_label_B1-0-0.mp4", 12)
        write_mp4(root / "Test" / "v2_label_G-B2-B6.mp4", 6)
        write_mp4(root / "Test" / "v3_label_A.mp4", 4)
        self.root = root
        self.file = root / "annotations.txt"
        self.seeds = [XD_ANNOTATIONS, b"v1_label_B1-0-0.mp4 2 5\nv1_label_B1-0-0.mp4 7 9\nv2_label_G-B2-B6 1 2\n"]

    def run(self) -> None:
        from vadkit.datasets.groundtruth import read_xd_annotations

        try:
            read_xd_annotations(self.file)
        finally:
            _dataset("xd_violence", self.root)


class XDArrays(Target):
    name, npy = "xd_gt_arrays", True

    generate = staticmethod(gen_npy)

    def setup(self) -> None:
        root = self.work / "xd"
        write_mp4(root / "Test" / "v1_label_B1-0-0.mp4", 16)
        arrays = self.work / "arrays"
        arrays.mkdir()
        self.root, self.arrays = root, arrays
        self.file = arrays / "v1_label_B1-0-0__0.npy"
        self.seeds = _label_npy_seeds(16) + _label_npy_seeds(12)[:2]
        for path in sorted((self.data / "gt_samples" / "xd_violence").glob("*.npy")) if self.data else []:
            self.seeds.append(path.read_bytes())

    def run(self) -> None:
        _dataset("xd_violence", self.root, gt_arrays=self.arrays, gt_tail="extend")


class FolderLabels(Target):
    text = True

    def setup(self) -> None:
        root = self.work / "mine"
        write_frames(root / "train" / "normal" / "walk", 3)
        write_frames(root / "test" / "normal" / "calm", 4)
        write_frames(root / "test" / "abnormal" / "fall", 10)
        write_frames(root / "test" / "abnormal" / "fighting" / "punch", 6)
        self.root = root
        self.file = root / self.label_name

    def run(self) -> None:
        from vadkit.datasets.groundtruth import read_range_table

        try:
            read_range_table(self.file)
        finally:
            _dataset("folder", self.root)


class FolderCSV(FolderLabels):
    name, label_name = "range_csv", "labels.csv"

    generate = staticmethod(gen_text("csv"))

    def setup(self) -> None:
        super().setup()
        self.seeds = [b"video,start,end\nfall,2,5\nfall,7,9\npunch,0,6\n", b"fall.mp4,2,5\ncalm,,\n",
                      b"fall, 2 , 5\r\npunch,1,2\r\n", b'"fall","2","5"\n"punch","0","1"\n', b"fall\n"]


class FolderJSON(FolderLabels):
    name, label_name = "range_json", "labels.json"

    generate = staticmethod(gen_json("ranges"))

    def setup(self) -> None:
        super().setup()
        self.seeds = [b'{"fall": [[2, 5], [7, 9]], "punch": [[0, 6]], "calm": []}',
                      b'[{"video": "fall", "start": 2, "end": 5}, {"video": "punch", "start": 0, "end": 6}]',
                      b'{"fall": [[2.0, 5.0]]}', b'[{"video": "calm"}]']


class SplitJSON(Target):
    name, text = "split_json", True

    generate = staticmethod(gen_json("split"))

    def setup(self) -> None:
        root = self.work / "mine"
        for split, state, name in (("train", "normal", "a"), ("test", "normal", "b"), ("test", "abnormal", "c")):
            write_frames(root / split / state / name, 3)
        self.root = root
        self.file = self.work / "split.json"
        self.seeds = [json.dumps({"format": "vadkit-split/1", "dataset": "folder", "seed": 3, "rule": "r",
                                  "train": ["a", "b"], "test": ["c"]}).encode(),
                      b'{"train": ["a"], "test": ["b", "c"], "val": []}', b'{"train": "abc", "test": ["c"]}',
                      b'{"train": [["a"]], "test": [1]}']

    def run(self) -> None:
        from vadkit.datasets import apply_split, get_dataset
        from vadkit.datasets.splits import Split

        split = Split.load(self.file)
        apply_split(get_dataset("folder", self.root), split).videos()


class Boxes(Target):
    boxes = True

    def run(self) -> None:
        from vadkit.features.boxes.files import load_boxes

        load_boxes(self.file)


class BoxesNPZ(Boxes):
    name = "boxes_npz"

    generate = staticmethod(gen_npz)

    def setup(self) -> None:
        import numpy as np

        self.file = self.work / "boxes.npz"

        def npz(**arrays) -> bytes:
            buffer = io.BytesIO()
            (np.savez_compressed if arrays.pop("_compressed", False) else np.savez)(buffer, **arrays)
            return buffer.getvalue()

        xyxy = np.array([[1, 2, 5, 6], [0, 0, 3, 3], [2, 2, 4, 7]], np.float32)
        frame = np.array([0, 0, 2], np.int32)
        self.seeds = [npz(frame=frame, xyxy=xyxy, num_frames=np.int64(3)),
                      npz(frame=frame, xyxy=xyxy, num_frames=np.int64(3), _compressed=True),
                      npz(frame=frame, xyxy=xyxy, num_frames=np.int64(10 ** 9)),
                      npz(frame=frame, xyxy=xyxy, num_frames=np.int64(-5)),
                      npz(frame=frame, xyxy=xyxy[:, :2], num_frames=np.int64(3)),
                      npz(frame=np.array([0.5, 1, 2]), xyxy=xyxy, num_frames=np.float64(np.nan)),
                      npz(frame=frame, xyxy=np.array(["a", "b", "c"]), num_frames=np.int64(3)),
                      npz(frame=frame, xyxy=xyxy, num_frames=np.array([3, 4])),
                      npz(frame=frame, xyxy=xyxy)]
        self.seeds += real("ucsd_ped2_boxes/ped2_test_boxes.npz", self.data)


class BoxesNPY(Boxes):
    name, npy = "boxes_npy", True

    generate = staticmethod(gen_npy)

    def setup(self) -> None:
        import numpy as np

        self.file = self.work / "boxes.npy"
        per_frame = np.empty(3, dtype=object)
        per_frame[0], per_frame[1], per_frame[2] = (np.zeros((0, 4)), np.array([[1.0, 2, 3, 4]]),
                                                     np.array([[0, 0, 5, 5], [1, 1, 2, 2]], np.float32))
        strings = np.empty(2, dtype=object)
        strings[0], strings[1] = "a", np.zeros((1, 4))
        self.seeds = [npy(per_frame, allow_pickle=True), npy(strings, allow_pickle=True), npy(np.zeros((3, 4))),
                      __import__("pickle").dumps(per_frame)]
        self.seeds += real("ucsd_ped2_boxes/bboxes_train_obj_det_with_motion.npy", self.data)


class FolderLinks(Target):
    """Symlinks (loops, links up, out of the root, dangling, self-referencing) added to a folder-dataset tree:
    the videos found must be the real ones, exactly."""

    name = "folder_links"

    def setup(self) -> None:
        root = self.work / "mine"
        write_frames(root / "train" / "normal" / "walk", 3)
        write_frames(root / "test" / "normal" / "calm", 3)
        write_mp4(root / "test" / "normal" / "quiet.mp4", 3)
        write_frames(root / "test" / "abnormal" / "fall", 3)
        write_frames(root / "test" / "abnormal" / "fighting" / "punch", 3)
        self.root = root
        self.folders = [root / "train" / "normal", root / "test" / "normal", root / "test" / "abnormal",
                        root / "test" / "abnormal" / "fighting", root / "test", root]
        self.expected = sorted(["walk", "calm", "quiet", "fall", "punch"])
        self.seeds = [b""]
        self.links: list[Path] = []

    def write(self, data: bytes) -> None:
        rng = random.Random(data)
        for i in range(rng.randint(1, 4)):
            where = rng.choice(self.folders)
            target = rng.choice([".", "..", "../..", "../../..", "/", str(self.root), str(self.root / "test"),
                                 "calm", "../normal", "../abnormal/fall", "fighting", "nowhere", f"loop{i}",
                                 str(self.root.parent), "/proc/self/cwd", "../../train/normal/walk"])
            link = where / f"loop{i}"
            if not link.exists() and not link.is_symlink():
                os.symlink(target, link)
                self.links.append(link)

    def cleanup(self) -> None:
        for link in self.links:
            link.unlink()
        self.links = []

    def run(self) -> None:
        dataset = _dataset("folder", self.root)
        found = sorted(dataset.ids())
        if found != self.expected:
            links = [f"{p.relative_to(self.root)} -> {os.readlink(p)}" for p in self.links]
            raise WrongCount(f"folder tree with links {links}: "
                             f"found {len(found)} videos {found[:8]}, expected {self.expected}")


class Video(Target):
    """A video file or a frame folder, opened and decoded to the end through ``vadkit.io.open_video`` (what every
    command and the viewer's uploads read). Documented: ``VideoReadError`` / ``FileNotFoundError``."""

    video = True
    MAX_FRAMES = 400  # a mutated header may claim millions of frames; reading a prefix is enough to exercise it

    def run(self) -> None:
        from vadkit.io import open_video

        with open_video(self.path()) as source:
            for index, _ in enumerate(source.frames()):
                if index >= self.MAX_FRAMES:
                    break

    def path(self) -> Path:
        return self.file


class VideoFile(Video):
    name = "video_file"

    def setup(self) -> None:
        import cv2
        import numpy as np

        self.file = self.work / "clip.mp4"
        self.seeds = [write_mp4(self.work / "seed.mp4", 12).read_bytes()]
        avi = self.work / "seed.avi"
        writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (16, 16))
        for i in range(6):
            writer.write(np.full((16, 16, 3), 20 * i, np.uint8))
        writer.release()
        self.seeds.append(avi.read_bytes())
        self.seeds += real("avenue_sample/testing_videos/01.avi", self.data)[:1]


class FrameFolderTarget(Video):
    """A folder of frames, one of which is the mutated file."""

    name = "frame_folder"

    def setup(self) -> None:
        self.folder = write_frames(self.work / "frames", 4, ".png")
        self.file = self.folder / "001.png"
        self.seeds = [self.file.read_bytes(), (self.folder / "000.png").read_bytes()]
        jpeg = write_frames(self.work / "jpeg", 1, ".jpg")
        self.seeds.append((jpeg / "000.jpg").read_bytes())

    def path(self) -> Path:
        return self.folder


def _tiny_model() -> dict:
    """The content of a small, valid knn model file (what ``Detector.save`` writes)."""
    import torch

    return {"format": "vadkit-detector", "version": 2, "detector": "knn",
            "args": {"k": 1, "metric": "cosine", "center": False, "holdout": 0.2, "false_alarm_rate": 0.01,
                     "refit_all": True, "max_bank": 100000, "chunk": 4096, "tail": "extend", "seed": 0},
            "state": {"bank": torch.ones(4, 8), "mean": None, "calibration": {}}, "threshold": 0.5,
            "threshold_rule": "fixed", "extraction": None, "crops": "mean", "protocol": {}, "trained_on": "fuzz",
            "history": []}


def _torch_bytes(content) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


def _random_model_value(rng: random.Random):
    import torch

    roll = rng.random()
    if roll < 0.3:
        shape = tuple(rng.choice((0, 1, 2, 8, 16)) for _ in range(rng.choice((0, 1, 2, 3))))
        return torch.zeros(shape, dtype=rng.choice((torch.float32, torch.float16, torch.int64, torch.bool)))
    if roll < 0.4:
        return {rng.choice(("bank", "mean", "model", "stats", "gmm", "x", 1)): _random_model_value(rng)
                for _ in range(rng.randint(0, 3))}
    return _random_json(rng)


def gen_model(rng: random.Random) -> bytes:
    """A model file that is safe to load but malformed: keys dropped or given values of other types, another
    detector's name, arguments of the wrong types; or one holding a pickled Python object (to be refused)."""
    import collections
    import fractions

    content = _tiny_model()
    roll = rng.random()
    if roll < 0.1:  # objects torch's safe loader refuses (their classes are harmless here; the refusal is tested)
        content["state"]["calibration"] = rng.choice((fractions.Fraction(1, 3), collections.Counter("ab"),
                                                      collections.deque([1]), range(3)))
        return _torch_bytes(content)
    if roll < 0.3:
        from vadkit.detectors import list_detectors

        content["detector"] = rng.choice(list_detectors() + ["", "nope", "knn "])
        if rng.random() < 0.5:
            content["args"] = {}
            content["state"] = {}
    for _ in range(rng.randint(1, 3)):
        where = content if rng.random() < 0.5 else rng.choice((content["args"], content["state"]))
        key = rng.choice(list(where) + ["extra"]) if where else "extra"
        if rng.random() < 0.3:
            where.pop(key, None)
        else:
            where[key] = _random_model_value(rng)
    return _torch_bytes(content)


class ModelFile(Target):
    """A model file loaded by ``load_detector`` (what ``score``, ``evaluate`` and ``export`` do first): the seeds
    are valid files (a tiny knn model, the bundled ped2-knn), mutated or rebuilt malformed but safe. Documented:
    ``ModelFileError`` (a ``ValueError``) naming the file, or ``FileNotFoundError``."""

    name = "model_file"
    documented = (ValueError, FileNotFoundError)
    generate = staticmethod(gen_model)

    def setup(self) -> None:
        self.file = self.work / "model.pt"
        bundled = REPO / "src" / "vadkit" / "assets" / "models" / "ped2-knn.pt"
        self.seeds = [_torch_bytes(_tiny_model())] + ([bundled.read_bytes()] if bundled.is_file() else [])

    def run(self) -> None:
        from vadkit.detectors import load_detector

        load_detector(self.file)


def _result_json() -> dict:
    """A result.json as ``vadkit score`` writes it (shortened)."""
    return {"name": "clip", "video": "/videos/clip.mp4", "num_frames": 6, "fps": 25.0, "duration_s": 0.24,
            "threshold": 0.5, "model": {"name": "ped2-knn", "detector": "knn"},
            "scores": [0.1, 0.2, 0.9, 0.8, None, 0.1], "smoothed": [0.1, 0.3, 0.7, 0.7, 0.4, 0.1],
            "events": [{"start_frame": 2, "end_frame": 3, "start_s": 0.08, "end_s": 0.12, "peak_score": 0.9,
                        "thumbnail": "thumbs/event-0.jpg"}],
            "files": {"scores": "scores.csv", "plot": "plot.png", "annotated": "annotated.mp4",
                      "report": "report.html"}, "warnings": []}


def gen_result(rng: random.Random) -> bytes:
    """A result.json with fields replaced by values of other types, nested, huge or not finite."""
    data = _result_json()
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(list(data) + ["extra"])
        roll = rng.random()
        if roll < 0.15:
            data.pop(key, None)
        elif roll < 0.25:
            value = rng.choice(([], {}, 0))
            for _ in range(rng.choice((10, 200, 5000))):
                value = [value] if rng.random() < 0.5 else {"a": value}
            data[key] = value
        else:
            data[key] = _random_json(rng)
    if rng.random() < 0.1:
        data = _random_json(rng)
    return json.dumps(data, allow_nan=True).encode()


class ResultJSON(Target):
    """A scored video's ``result.json`` read by the viewer: the list (``Catalog.videos``) must always answer, with
    every folder listed (a broken one with why), in JSON the server can send; the video's page answers or says
    why (``BrokenFileError``) or that it is gone (``FileNotFoundError``)."""

    name = "result_json"
    text = True
    generate = staticmethod(gen_result)

    def setup(self) -> None:
        from vadkit.viewer.catalog import BrokenFileError

        self.documented = (BrokenFileError, FileNotFoundError)
        root = self.work / "scores"
        for name in ("other", "this"):
            (root / name).mkdir(parents=True)
            (root / name / "result.json").write_text(json.dumps(_result_json()))
        self.root = root
        self.file = root / "this" / "result.json"
        self.seeds = [json.dumps(_result_json()).encode(), json.dumps(_result_json(), indent=1).encode(),
                      json.dumps({**_result_json(), "events": 7}).encode(),
                      json.dumps({**_result_json(), "files": "x"}).encode()]

    def run(self) -> None:
        from vadkit.viewer.catalog import Catalog

        catalog = Catalog({"scores": self.root})
        listed = catalog.videos()
        json.dumps(listed, allow_nan=False)  # what the server sends: NaN or infinity would fail there
        ids = sorted(item["id"] for item in listed)
        if ids != ["scores/other", "scores/this"]:
            raise WrongCount(f"the list shows {ids}, expected both folders")
        detail = catalog.video("scores/this")
        json.dumps(detail, allow_nan=False)


class WrongCount(Exception):
    """A layout scan found other videos than the tree holds."""


TARGETS = [UCSDm, UCSDMat, UCSDMasks, AvenueVolLabel, AvenueMat, LAD2000Gt, ShanghaiTechMask, ShanghaiTechLists,
           UCFAnnotation, UCFLists, UCFArrays, XDAnnotations, XDArrays, FolderCSV, FolderJSON, SplitJSON, BoxesNPZ,
           BoxesNPY, FolderLinks, VideoFile, FrameFolderTarget, ModelFile, ResultJSON]


# ---------------------------------------------------------------------------------------------------------------
# the worker: runs inputs start..n-1, one JSON line per input on stdout
# ---------------------------------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm when one input runs past the timeout."""


def _on_alarm(signum, frame):  # noqa: ARG001
    raise Hang()


def make_input(targets: list[Target], seed: int, index: int) -> tuple[Target, bytes]:
    target = targets[index % len(targets)]
    rng = random.Random(f"{seed}:{index}")
    mutate = Mutator(rng, target.text, target.seeds, target.npy)
    if target.generate is not None and rng.random() < 0.35:
        try:
            data = target.generate(rng)
        except Exception as err:  # noqa: BLE001  (a bug of the generator, not of vadkit: say so, use a seed)
            print(f"fuzz: generator of {target.name} failed on input {index}: {err!r}", file=sys.__stderr__)
            data = rng.choice(target.seeds)
        return target, (mutate(data) if rng.random() < 0.5 else data)
    seeds = target.seeds + (getattr(target, "heavy", []) if rng.random() < 0.1 else [])
    return target, mutate(rng.choice(seeds))


def classify(target: Target, err: BaseException) -> str:
    from vadkit.datasets import DatasetError
    from vadkit.io import VideoReadError

    if isinstance(err, WrongCount):
        return "other"
    if target.documented:
        documented = target.documented
    elif target.boxes:
        documented = (ValueError, FileNotFoundError)
    elif target.video:
        documented = (VideoReadError, FileNotFoundError)
    else:
        documented = (DatasetError, VideoReadError, FileNotFoundError)
    return "clean" if isinstance(err, documented) else "other"


def where_raised(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    for frame in reversed(frames):
        if "/vadkit/" in frame.filename or "numpy" in frame.filename or "scipy" in frame.filename:
            return f"{frame.filename.split('/site-packages/')[-1].split('/src/')[-1]}:{frame.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def worker(args) -> None:
    work = Path(args.workdir)
    if args.mem_limit_mb:
        limit = args.mem_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    data = None if args.no_real_data else shared_data()
    import warnings

    warnings.simplefilter("ignore")  # libraries' warnings are not results
    targets = [cls(work / "trees", data) for cls in selected(args.targets)]
    real_stderr = sys.stderr
    sys.stderr = io.StringIO()  # nor what they print
    try:
        _run_inputs(args, targets, real_stderr)
    finally:
        sys.stderr = real_stderr


SMALL_INPUT = 1 << 20  # an input under this size ...
SMALL_INPUT_PEAK_MB = 500  # ... may make the worker peak at this many MB at most (the process itself included)


def reset_peak() -> None:
    """Start the kernel's peak resident size (VmHWM) afresh, so that each input's own peak is measured."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def input_peak_mb() -> float | None:
    """The peak resident size since :func:`reset_peak`, in MB (``None`` where /proc does not say)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return round(int(found.group(1)) / 1024, 1) if found else None


def _run_inputs(args, targets: list[Target], real_stderr) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    out = sys.stdout
    indices = [args.only] if args.only is not None else range(args.start, args.n)
    for index in indices:
        target, payload = make_input(targets, args.seed, index)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reset_peak()
        record = {"i": index, "target": target.name, "bytes": len(payload)}
        started = time.perf_counter()
        try:
            target.write(payload)
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            try:
                target.run()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            record["outcome"] = "accepted"
        except Hang:
            record["outcome"] = "hang"
        except BaseException as err:  # noqa: BLE001  (everything is a result here)
            if isinstance(err, KeyboardInterrupt):
                raise
            record["outcome"] = classify(target, err)
            message = str(err)
            record["error"] = type(err).__name__
            record["message"] = message[:300]
            record["message_length"] = len(message)
            record["where"] = where_raised(err)
            if record["outcome"] == "clean" and target.file.name not in message and not isinstance(target,
                                                                                                  FolderLinks):
                record["unnamed"] = True
            if args.only is not None:
                traceback.print_exception(err, file=real_stderr)
        finally:
            target.cleanup()
        record["seconds"] = round(time.perf_counter() - started, 3)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        record["rss_mb"] = round(after / 1024, 1)
        record["rss_jump_mb"] = round((after - before) / 1024, 1)
        peak = input_peak_mb()
        if peak is not None:
            record["peak_mb"] = peak
            if len(payload) < SMALL_INPUT and peak > SMALL_INPUT_PEAK_MB and record["outcome"] != "hang":
                record.update(outcome="other", error="MemoryBound", where=record.get("where", "?"),
                              message=f"peak of {peak} MB (process included) for an input of {len(payload)} bytes: "
                                      f"more than {SMALL_INPUT_PEAK_MB} MB for an input under 1 MB "
                                      f"({record.get('error', 'accepted')}: {record.get('message', '')[:120]})")
        if record["outcome"] in ("other", "hang") and args.save_failures:
            folder = Path(args.save_failures)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:06d}_{target.name}_{target.file.name}").write_bytes(payload)
        out.write(json.dumps(record) + "\n")
        out.flush()
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()


# ---------------------------------------------------------------------------------------------------------------
# the supervisor: restarts the worker after a crash or a stall, aggregates
# ---------------------------------------------------------------------------------------------------------------
def supervise(args) -> dict:
    started = time.perf_counter()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vadkit-fuzz-"))
    summary = {"seed": args.seed, "targets": args.targets or "all", "inputs": 0, "clean_errors": 0, "accepted": 0,
               "other": 0, "hangs": 0,
               "unnamed": 0, "peak_memory_mb": 0.0, "peaks_measured": 0, "other_examples": [], "hang_examples": [],
               "unnamed_examples": [],
               "memory_examples": [],
               "per_target": {}}
    seen_kinds: set[tuple] = set()
    next_index = 0
    try:
        while next_index < args.n:
            command = [sys.executable, __file__, "--worker", "--n", str(args.n), "--start", str(next_index),
                       "--seed", str(args.seed), "--timeout", str(args.timeout), "--workdir",
                       str(workdir / f"w{next_index}"), "--mem-limit-mb", str(args.mem_limit_mb)]
            if args.no_real_data:
                command.append("--no-real-data")
            if args.targets:
                command += ["--targets", args.targets]
            if args.save_failures:
                command += ["--save-failures", args.save_failures]
            stderr_file = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True)
            done = stalled = False
            last = time.monotonic()
            selector = selectors.DefaultSelector()
            selector.register(proc.stdout, selectors.EVENT_READ)
            # a worker silent that long is stuck in code the alarm cannot reach (its first input waits for the trees)
            stall = args.timeout * 3 + 60
            first = True
            while True:
                if not selector.select(timeout=2):
                    if proc.poll() is not None:
                        break
                    if time.monotonic() - last > stall + (600 if first else 0):
                        proc.kill()
                        stalled = True
                        _add(summary, {"i": next_index, "outcome": "hang", "target": _target_name(args, next_index),
                                       "message": "the worker stalled (no answer to the alarm)"}, seen_kinds)
                        next_index += 1
                        break
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                first = False
                last = time.monotonic()
                record = json.loads(line)
                if record.get("done"):
                    done = True
                    break
                _add(summary, record, seen_kinds)
                next_index = record["i"] + 1
            proc.wait()
            selector.close()
            if done:
                break
            if not stalled and next_index < args.n:
                stderr_file.seek(0)
                tail = stderr_file.read()[-300:].strip()
                if first:  # died before its first input: the trees could not be built
                    raise RuntimeError(f"the fuzz worker failed to start (exit status {proc.returncode}): {tail}")
                _add(summary, {"i": next_index, "outcome": "other", "target": _target_name(args, next_index),
                               "error": f"crash (exit status {proc.returncode})", "message": tail}, seen_kinds)
                next_index += 1
            stderr_file.close()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    order = ["inputs", "clean_errors", "accepted", "other", "other_examples", "hangs", "hang_examples", "unnamed",
             "unnamed_examples", "peak_memory_mb", "peaks_measured", "memory_examples", "seconds", "seed", "targets",
             "per_target"]
    return {key: summary[key] for key in order}


def selected(names: str | None) -> list[type]:
    """The target classes named (comma-separated; ``None``: all). Input ``i`` goes to target ``i % len``."""
    if not names:
        return TARGETS
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = {cls.name: cls for cls in TARGETS}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; expected some of {', '.join(known)}")
    return [known[name] for name in wanted]


def _target_name(args, index: int) -> str:
    targets = selected(args.targets)
    return targets[index % len(targets)].name


def _add(summary: dict, record: dict, seen_kinds: set) -> None:
    summary["inputs"] += 1
    outcome = record["outcome"]
    key = {"accepted": "accepted", "clean": "clean_errors", "other": "other", "hang": "hangs"}[outcome]
    summary[key] += 1
    counts = summary["per_target"].setdefault(record["target"], {"accepted": 0, "clean": 0, "other": 0, "hang": 0})
    counts[outcome] += 1
    counts["peak_mb"] = max(counts.get("peak_mb", 0.0), record.get("peak_mb", 0.0))
    summary["peak_memory_mb"] = max(summary["peak_memory_mb"], record.get("rss_mb", 0.0), record.get("peak_mb", 0.0))
    summary["peaks_measured"] += "peak_mb" in record
    if record.get("rss_jump_mb", 0) >= 64:  # an input that grew the process by that much: worth a look
        jumps = summary["memory_examples"]
        jumps.append({k: record[k] for k in ("i", "target", "rss_jump_mb", "error", "message") if k in record})
        jumps.sort(key=lambda e: -e["rss_jump_mb"])
        del jumps[5:]
    example = {k: record[k] for k in ("i", "target", "error", "message", "where", "rss_jump_mb", "seconds")
               if k in record}
    kind = (outcome, record["target"], record.get("error"), record.get("where"))
    same_target = sum(e["target"] == record["target"] for e in summary["other_examples"])
    if outcome == "other" and kind not in seen_kinds and same_target < 4 and len(summary["other_examples"]) < 24:
        targets = "" if summary["targets"] == "all" else f" --targets {summary['targets']}"
        example["reproduce"] = f"python bench/fuzz.py --only {record['i']} --seed {summary['seed']}{targets}"
        summary["other_examples"].append(example)
    elif outcome == "hang" and len(summary["hang_examples"]) < 5:
        summary["hang_examples"].append(example)
    if record.get("unnamed"):
        summary["unnamed"] += 1
        unnamed_kind = ("unnamed", record["target"], record.get("where"))
        if unnamed_kind not in seen_kinds and len(summary["unnamed_examples"]) < 8:
            summary["unnamed_examples"].append(example)
            seen_kinds.add(unnamed_kind)
    seen_kinds.add(kind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="number of inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it counts as a hang")
    parser.add_argument("--mem-limit-mb", type=int, default=4096,
                        help="data-size limit of the worker (a larger allocation becomes a MemoryError: 'other')")
    parser.add_argument("--save-failures", help="write the inputs counted as other or hang into this folder")
    parser.add_argument("--no-real-data", action="store_true", help="do not add the real samples as seeds")
    parser.add_argument("--targets", help="comma-separated formats to fuzz (default: all): "
                        + ", ".join(cls.name for cls in TARGETS))
    parser.add_argument("--workdir", help="where the trees are built (default: a temporary folder, removed)")
    parser.add_argument("--only", type=int, help="run input I alone in this process and print its traceback")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only is not None:
        keep = args.workdir
        args.workdir = args.workdir or tempfile.mkdtemp(prefix="vadkit-fuzz-")
        try:
            worker(args)
        finally:
            if not keep:
                shutil.rmtree(args.workdir, ignore_errors=True)
        return 0
    if args.worker:
        worker(args)
        return 0
    summary = supervise(args)
    print(json.dumps(summary))
    return 0 if summary["other"] == 0 and summary["hangs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
