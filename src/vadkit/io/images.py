"""Image files read with their headers checked before decoding.

OpenCV allocates what an image header announces before it reads the pixels: a 172-byte PNG whose IDAT chunk claims
2 GB made ``cv2.imread`` take 2 GB (found by ``bench/fuzz.py``), and a BMP, TIFF or JPEG header may announce a
billion pixels. :func:`header_problem` checks the header of the formats frames and masks come in (BMP, PNG, TIFF,
JPEG): the size (at most ``MAX_IMAGE_PIXELS`` pixels), PNG chunk lengths, the pixel data an uncompressed BMP needs.
"""

from __future__ import annotations

import struct

MAX_IMAGE_PIXELS = 1 << 25   # 33.5 million (e.g. 8192 x 4096): far above any camera frame or benchmark mask


def header_problem(data: bytes) -> str | None:
    """Why the image ``data`` must not be decoded (a malformed header or too many pixels), or ``None``."""
    try:
        if data[:2] == b"BM":
            return _bmp(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
    except struct.error:
        return "a truncated image header"
    return None


def _too_many(width: int, height: int) -> str | None:
    pixels = abs(width) * abs(height)
    if pixels > MAX_IMAGE_PIXELS:
        return f"the header announces {abs(width)} x {abs(height)} pixels, more than the limit of {MAX_IMAGE_PIXELS}"
    return None


def _bmp(data: bytes) -> str | None:
    offset, header_size = struct.unpack_from("<I", data, 10)[0], struct.unpack_from("<I", data, 14)[0]
    if header_size == 12:  # BITMAPCOREHEADER
        width, height, _, bits = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        width, height, _, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    problem = _too_many(width, height)
    if problem:
        return problem
    if compression in (0, 3) and bits:  # uncompressed: the rows must be in the file
        needed = ((bits * abs(width) + 31) // 32) * 4 * abs(height)
        if offset > len(data) or needed > len(data) - offset:
            return f"a BMP of {abs(width)} x {abs(height)} pixels needs {needed} bytes of pixel data, " \
                   f"the file has {max(0, len(data) - offset)}"
    return None


def _png(data: bytes) -> str | None:
    pos = 8
    width = height = None
    while pos < len(data):
        if len(data) - pos < 12:
            return "a truncated PNG chunk"
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > len(data) - pos - 12:
            return f"a PNG {kind!r} chunk of {length} bytes where {len(data) - pos - 12} remain"
        if kind == b"IHDR" and length >= 8:
            width, height = struct.unpack_from(">II", data, pos + 8)
        pos += 12 + length
        if kind == b"IEND":
            break
    if width is None:
        return "a PNG without an IHDR chunk"
    return _too_many(width, height)


def _tiff(data: bytes) -> str | None:
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    if ifd + 2 > len(data):
        return "a TIFF directory beyond the end of the file"
    count = struct.unpack_from(order + "H", data, ifd)[0]
    if ifd + 2 + 12 * count > len(data):
        return "a TIFF directory beyond the end of the file"
    size = {}
    for i in range(count):
        tag, kind, _, value = struct.unpack_from(order + "HHI4s", data, ifd + 2 + 12 * i)
        if tag in (256, 257):
            size[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
    if 256 not in size or 257 not in size:
        return "a TIFF without width and height"
    return _too_many(size[256], size[257])


def _jpeg(data: bytes) -> str | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not a marker where one is expected: leave it to the decoder, which refuses it
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return _too_many(width, height)
        if marker == 0xDA:  # start of scan before any frame header
            return "a JPEG without a frame header"
        pos += 2 + length
    return None
