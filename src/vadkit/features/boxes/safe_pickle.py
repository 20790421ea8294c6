"""A safe reader of ``.npy`` object arrays (VEC's box files are pickles): :func:`load_object_array` admits numpy
arrays and dtypes only and raises :class:`UnsafePickleError` on anything else, before it is built."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from vadkit.features.boxes.core import MAX_BOX_FRAMES

class UnsafePickleError(pickle.UnpicklingError):
    """A pickled file asks for something other than numpy arrays; it was not loaded."""


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickled numpy array needs, under the module names numpy 1.x and 2.x write."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtype classes such as numpy.dtypes.Float64DType
    for name in dir(dtypes) if dtypes is not None else ():
        value = getattr(dtypes, name)
        if isinstance(value, type) and issubclass(value, np.dtype):
            allowed[("numpy.dtypes", name)] = value
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves numpy's array-building globals and refuses every other one."""

    allowed = _numpy_globals()

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self.source}: the pickle asks for {module}.{name}; only numpy arrays and dtypes "
                                    f"are admitted, so the file was not loaded") from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: the pickle holds a persistent reference; refused")


def load_object_array(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` file, including an object array (a pickle), admitting numpy arrays and dtypes only.

    Plain numeric files are read as ``np.load(allow_pickle=False)`` would. For ``dtype=object`` the pickle is
    unpickled with an allow-list of numpy's own array and dtype constructors; any other global (a class, a function
    such as ``os.system``) raises :class:`UnsafePickleError` before anything is built, and so does any element of the
    object array that is not a numeric numpy array (lists, dicts, strings, nested object arrays).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"{path}: unsupported .npy format version {version}")
        shape, fortran_order, dtype = read_header[version](handle)
        if not dtype.hasobject:
            claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if claimed > path.stat().st_size:  # before any allocation: a tiny file may claim gigabytes
                raise ValueError(f"{path}: the header announces {claimed} bytes of data, the file has "
                                 f"{path.stat().st_size}")
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
        if len(shape) != 1 or shape[0] > MAX_BOX_FRAMES:
            raise ValueError(f"{path}: expected a 1-d object array of at most {MAX_BOX_FRAMES} frames, the header "
                             f"announces shape {shape}")
        array = _ArrayUnpickler(handle, str(path)).load()
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        found = type(array).__name__ if not isinstance(array, np.ndarray) else f"array of shape {array.shape}"
        raise UnsafePickleError(f"{path}: the header announces an array of shape {shape}, the pickle holds {found}")
    for index, item in enumerate(array.reshape(-1)):
        if not isinstance(item, np.ndarray) or item.dtype.hasobject or item.dtype.kind not in "biuf":
            what = f"a {item.dtype} array" if isinstance(item, np.ndarray) else f"a {type(item).__name__}"
            raise UnsafePickleError(f"{path}: element {index} is {what}; only numeric numpy arrays are admitted")
    return array
