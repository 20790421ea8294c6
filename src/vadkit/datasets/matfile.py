"""A structural check of MATLAB v5 ``.mat`` files, run before ``scipy.io.loadmat`` sees them.

scipy's MAT v5 reader is written in Cython and trusts the file: a data element whose type code is unknown (0, 8,
10, 11, 14 or 15 where numbers are expected, or anything above 18) is looked up in a C table without a bounds
check and crashes the interpreter (a segmentation fault, found by ``bench/fuzz.py``); a cell or char array whose
dimensions claim billions of elements is allocated before anything is read. This module walks the element tags of
the whole file (inflating ``miCOMPRESSED`` elements on the fly, within a limit) and refuses, with a
:class:`DatasetError` naming the file and the offset, anything scipy could not read safely:

- unknown data types, small-data elements of more than 4 bytes, elements larger than what contains them;
- array flags that are not the 8-byte ``miUINT32`` element MATLAB writes; dimensions that are negative or more than
  32; MATLAB classes other than numeric, char, logical, sparse, cell, struct and (old-style) object (function
  handles and opaque MCOS objects have no place in a ground-truth file);
- cells and structs announcing more elements than they hold; char and numeric arrays whose dimensions claim far
  more elements than their bytes can hold.

The format: MATLAB 5.0 MAT-file format (MathWorks, ``matfile_format.pdf``): a 128-byte header (text, subsystem
offset, version, endian indicator ``IM``/``MI``), then data elements of an 8-byte tag (type, byte count; or the
small-data format with the count in the upper 16 bits and up to 4 bytes of data) padded to 8 bytes.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

from vadkit.datasets.base import DatasetError

#: the data types of the format; those scipy reads as numbers (anything else in their place crashes it)
MI_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18})
MI_NUMBERS = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18})
MI_INT32S = frozenset({5, 6})       # miINT32, miUINT32
MI_TEXT = frozenset({1, 16})        # miINT8, miUTF8 (names)
MI_MATRIX, MI_COMPRESSED = 14, 15
CELL, STRUCT, OBJECT, CHAR = 1, 2, 3, 4
CLASSES = range(1, 16)              # cell .. uint64 (16 function handle, 17 opaque: refused)
MAX_DEPTH = 32                      # cells within cells
MAX_INFLATED = 1 << 30              # bytes one miCOMPRESSED element may inflate to


def is_mat5(data: bytes) -> bool:
    """Whether scipy would read ``data`` as a MAT v5 file (its own version test: no zero in the first 4 bytes,
    major version 1 at offset 124)."""
    if len(data) < 128 or 0 in data[:4]:
        return False
    major_index = int(data[126] == ord("I"))
    return data[124 + major_index] == 1


def check_mat5(data: bytes, path: Path | str, max_bytes: int = MAX_INFLATED) -> None:
    """Raise :class:`DatasetError` unless every element of the MAT v5 file ``data`` is one scipy reads safely, and
    its variables hold no more than ``max_bytes`` in all (compressed ones inflated: a few hundred kilobytes of zlib
    can claim a gigabyte; the caller bounds it by what its content may need).

    The walk follows scipy's own reading order (a nested array is read element by element, whatever its byte
    count says), so that what is checked is what scipy will read; every element must also lie inside its variable.
    """
    order = "<" if data[126:128] == b"IM" else ">"
    checker = _Checker(order, path, max_bytes)
    plain = _Plain(data)
    pos = 128
    while pos < len(data):
        mdtype, nbytes, small = checker.tag(plain, pos, len(data))
        if small or nbytes == 0:
            raise checker.error(pos, "a variable with no data")
        body = pos + 8
        if mdtype == MI_COMPRESSED:
            inflated = _Inflated(memoryview(data)[body: body + nbytes], checker, pos)
            inner_type, inner_bytes, inner_small = checker.tag(inflated, 0, None)
            if inner_small or inner_type != MI_MATRIX or inner_bytes == 0:
                raise checker.error(pos, f"a compressed element holding type {inner_type}, expected a MATLAB array")
            checker.array(inflated, 8, 8 + inner_bytes, 0)
        elif mdtype == MI_MATRIX:
            checker.count(pos, nbytes)
            checker.array(plain, body, body + nbytes, 0)
        else:
            raise checker.error(pos, f"a data element of type {mdtype} at the top level, expected a MATLAB array")
        pos = body + nbytes


class _Plain:
    """The bytes of the file."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get(self, pos: int, n: int) -> bytes | None:
        return self.data[pos: pos + n] if pos + n <= len(self.data) else None

    def need(self, end: int) -> None:
        """Nothing to do: sizes were checked against the enclosing element."""


class _Inflated:
    """The inflated content of an ``miCOMPRESSED`` element, read forward only and never held whole."""

    def __init__(self, compressed: memoryview, checker: "_Checker", offset: int) -> None:
        self.source, self.source_pos = compressed, 0
        self.inflater = zlib.decompressobj()
        self.buffer = bytearray()
        self.base = 0  # position of buffer[0] in the inflated stream
        self.done = False
        self.checker, self.offset = checker, offset

    def _fill(self, pos: int, end: int) -> None:
        """Inflate until ``end`` bytes exist, dropping what lies before ``pos``."""
        while self.base + len(self.buffer) < end and not self.done:
            drop = min(pos - self.base, len(self.buffer))
            if drop > 0:
                del self.buffer[:drop]
                self.base += drop
            if self.base + len(self.buffer) > MAX_INFLATED:
                raise self.checker.error(self.offset, f"a compressed element inflating to more than {MAX_INFLATED} "
                                                      f"bytes")
            self.checker.count(self.offset, 0)
            chunk = self.inflater.unconsumed_tail or self.source[self.source_pos: self.source_pos + (1 << 16)]
            if not self.inflater.unconsumed_tail:
                self.source_pos += len(chunk)
            try:
                out = self.inflater.decompress(chunk, 1 << 20)
            except zlib.error as err:
                raise self.checker.error(self.offset, f"corrupt compressed data ({err})") from None
            self.buffer += out
            self.checker.count(self.offset, len(out))
            if self.inflater.eof or (not out and not chunk and not self.inflater.unconsumed_tail):
                self.done = True

    def get(self, pos: int, n: int) -> bytes | None:
        self._fill(pos, pos + n)
        start = pos - self.base
        if start < 0 or self.base + len(self.buffer) < pos + n:
            return None
        return bytes(self.buffer[start: start + n])

    def need(self, end: int) -> None:
        self._fill(end, end)
        if self.base + len(self.buffer) < end:
            raise self.checker.error(self.offset, f"a compressed element announcing {end} bytes inflates to "
                                                  f"{self.base + len(self.buffer)}")


class _Checker:
    def __init__(self, order: str, path: Path | str, max_bytes: int = MAX_INFLATED) -> None:
        self.order, self.path = order, path
        self.max_bytes, self.total = max_bytes, 0  # bytes the variables may hold in all, and held so far

    def count(self, pos: int, nbytes: int) -> None:
        """Add ``nbytes`` of variable data (inflated or plain) to the total; refuse more than ``max_bytes``."""
        self.total += nbytes
        if self.total > self.max_bytes:
            raise self.error(pos, f"variables holding more than {self.max_bytes} bytes (compressed data inflating "
                                  f"past what this file's content may need)")

    def error(self, pos: int, found: str) -> DatasetError:
        return DatasetError(f"cannot read MATLAB file {self.path}: malformed v5 data at byte {pos}: {found}")

    def tag(self, src, pos: int, end: int | None) -> tuple[int, int, bool]:
        """``(type, byte count, small)`` of the element at ``pos``; its data must end by ``end``."""
        raw = src.get(pos, 8)
        if raw is None or (end is not None and pos + 8 > end):
            raise self.error(pos, "the file ends inside an element tag")
        first, second = struct.unpack(self.order + "II", raw)
        if first >> 16:  # small data element: count in the upper 16 bits, data in the second word
            mdtype, nbytes = first & 0xFFFF, first >> 16
            if nbytes > 4:
                raise self.error(pos, f"a small data element of {nbytes} bytes (at most 4)")
            small = True
        else:
            mdtype, nbytes, small = first, second, False
            if end is not None and nbytes > end - pos - 8:
                raise self.error(pos, f"an element of {nbytes} bytes where {end - pos - 8} remain")
        if mdtype not in MI_TYPES:
            raise self.error(pos, f"unknown data type {mdtype}")
        return mdtype, nbytes, small

    def element(self, src, pos: int, end: int, types: frozenset, what: str) -> tuple[int, int, int, bool]:
        """An element of one of ``types`` whose data exists: ``(next position, type, byte count, small)``."""
        mdtype, nbytes, small = self.tag(src, pos, end)
        if mdtype not in types:
            raise self.error(pos, f"{what} of type {mdtype}")
        after = pos + 8 if small else pos + 8 + nbytes + (-nbytes) % 8
        src.need(min(after, end))
        return after, mdtype, nbytes, small

    def mi_matrix(self, src, pos: int, end: int, depth: int) -> int:
        """A nested array (a cell element or a struct field): a full ``miMATRIX`` tag, then the array."""
        mdtype, nbytes, small = self.tag(src, pos, end)
        if small or mdtype != MI_MATRIX:
            raise self.error(pos, f"a cell or struct element of type {mdtype}, expected a MATLAB array")
        return pos + 8 if nbytes == 0 else self.array(src, pos + 8, end, depth + 1)

    def array(self, src, pos: int, end: int, depth: int) -> int:
        """The array whose flags start at ``pos`` (after its ``miMATRIX`` tag); returns where scipy stops reading."""
        if depth > MAX_DEPTH:
            raise self.error(pos, f"arrays nested more than {MAX_DEPTH} levels deep")
        mdtype, nbytes, small = self.tag(src, pos, end)
        raw = src.get(pos + 8, 8)
        if small or mdtype != 6 or nbytes != 8 or raw is None:
            raise self.error(pos, "array flags that are not an 8-byte miUINT32 element")
        flags = struct.unpack(self.order + "I", raw[:4])[0]
        mclass, is_complex = flags & 0xFF, flags >> 11 & 1
        if mclass not in CLASSES:
            kind = {16: "a function handle", 17: "an opaque MATLAB object"}.get(mclass, f"unknown class {mclass}")
            raise self.error(pos, f"{kind}; expected numbers, logicals, text, cells or structs")
        at = pos + 16
        pos, _, nbytes, small = self.element(src, at, end, MI_INT32S, "array dimensions")
        raw = src.get(at + 4, nbytes) if small else src.get(at + 8, nbytes)
        if nbytes % 4 or not 0 < nbytes <= 128 or raw is None:
            raise self.error(at, "array dimensions that are not 1 to 32 int32 values")
        dims = struct.unpack(f"{self.order}{nbytes // 4}i", raw)
        if min(dims) < 0:
            raise self.error(at, f"negative array dimensions {dims}")
        count = math.prod(dims)
        pos, *_ = self.element(src, pos, end, MI_TEXT, "an array name")
        if mclass == CELL:
            for _ in range(count):  # each element needs at least its 8-byte tag: count is bounded by the data
                pos = self.mi_matrix(src, pos, end, depth)
            return pos
        if mclass in (STRUCT, OBJECT):
            if mclass == OBJECT:
                pos, *_ = self.element(src, pos, end, MI_TEXT, "an object class name")
            at = pos
            pos, _, nbytes, small = self.element(src, pos, end, MI_INT32S, "a struct field-name length")
            raw = src.get(at + (4 if small else 8), 4)
            if nbytes != 4 or raw is None or struct.unpack(self.order + "i", raw)[0] <= 0:
                raise self.error(at, "a struct field-name length that is not one positive int32")
            name_length = struct.unpack(self.order + "i", raw)[0]
            pos, _, nbytes, _ = self.element(src, pos, end, MI_TEXT, "struct field names")
            fields = nbytes // name_length
            if fields == 0 and count > 1 << 16:
                raise self.error(at, f"a struct of dimensions {dims} without fields")
            for _ in range(count * fields):
                pos = self.mi_matrix(src, pos, end, depth)
            return pos
        if mclass == CHAR:
            at = pos
            mdtype, nbytes, small = self.tag(src, pos, end)
            if nbytes == 0 and count > 1 << 20:
                raise self.error(at, f"empty text of dimensions {dims}")
            if nbytes:
                pos, *_ = self.element(src, pos, end, MI_NUMBERS, "text data")
            else:
                pos = pos + 8
            return pos
        parts = 2 if mclass == 5 else 0  # sparse: row indices, column pointers, then the values
        parts += 2 if is_complex else 1
        for _ in range(parts):
            pos, *_ = self.element(src, pos, end, MI_NUMBERS, "array data")
        return pos
