"""Reading ground-truth mask images (UCSD ``TestNNN_gt/*.bmp``) with their headers checked before decoding.

OpenCV allocates what an image header announces before it reads the pixels: a 172-byte PNG whose IDAT chunk claims
2 GB made ``cv2.imread`` take 2 GB (found by ``bench/fuzz.py``), and a BMP, TIFF or JPEG header may announce a
billion pixels. :func:`read_mask` reads the file (at most ``MAX_MASK_BYTES``), checks the header of the formats
masks come in (BMP, PNG, TIFF, JPEG): the size (at most ``MAX_IMAGE_PIXELS`` pixels, :mod:`vadkit.io.images`), PNG chunk lengths, the pixel
data an uncompressed BMP needs; then decodes it from memory. Every refusal is a :class:`GroundTruthError` naming
the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vadkit.datasets.base import GroundTruthError, first_line
from vadkit.io.images import header_problem

MAX_MASK_BYTES = 256 << 20


def read_mask(file: str | Path) -> np.ndarray:
    """The pixels of one mask image, as OpenCV reads it (``IMREAD_UNCHANGED``).

    Raises:
        GroundTruthError: unreadable, malformed, too large, or not an image; the message names the file.
    """
    import cv2

    file = Path(file)
    try:
        size = file.stat().st_size
        if size > MAX_MASK_BYTES:
            raise GroundTruthError(f"mask {file}: {size} bytes, more than the limit of {MAX_MASK_BYTES}")
        data = file.read_bytes()
    except OSError as err:
        raise GroundTruthError(f"cannot read mask {file}: {err.strerror or err}") from None
    problem = header_problem(data)
    if problem:
        raise GroundTruthError(f"cannot read mask {file}: {problem}")
    try:
        mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, MemoryError) as err:
        raise GroundTruthError(f"cannot read mask {file}: {first_line(err)}") from None
    if mask is None:
        raise GroundTruthError(f"cannot read mask {file} (not an image OpenCV can decode)")
    return mask
