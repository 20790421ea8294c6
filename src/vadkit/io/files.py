"""Files written so that an interrupted run never leaves one that looks finished, and the small helpers every
layer shares: strict JSON, sha256 of a file, file names for video ids.

Every writer goes to a temporary name beside the target (``.<name>.XXXX``), then renames it over the target
(``os.replace`` is atomic on one file system); the temporary file is removed when the write fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_path", "atomic_save_npy", "atomic_write_bytes", "atomic_write_json", "content_stamp", "json_default",
           "json_safe", "remove_stale_temporaries", "safe_name", "sha256_file"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block ends without error.

    An interrupted write leaves no file under the final name (the temporary one is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are meant to be read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[a-z0-9]{2,4})?$")  # what atomic_path names its temporary files


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = 3600.0) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left in ``folder`` (not its subfolders) that are older
    than ``older_than_s`` (younger ones may belong to a write still in progress). Returns what was deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for path in folder.iterdir():
        try:
            if TEMPORARY.match(path.name) and path.is_file() and now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and paths."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, default=json_default, allow_nan=False)
    atomic_write_bytes(Path(path), (text + "\n").encode())


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def content_stamp(path: str | os.PathLike) -> str:
    """A short identity of what a file or a folder of frames holds now, for cache keys beside its path: the size,
    modification time (ns) and inode of the file, or of every file in the folder. A video rewritten at the same path
    (an upload saved under the same name, a live stream's segment folder reused) gets another stamp, so a cache
    keyed by path and stamp never serves another video's data. ``""`` for a path that does not exist."""
    path = Path(path)
    if not path.exists():
        return ""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        info = file.stat()
        digest.update(f"{file.name}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}\n".encode())
    return digest.hexdigest()[:16]


def safe_name(video_id: str) -> str:
    """A file name for a video id (ids such as ``Fighting/Fighting003`` hold slashes)."""
    return video_id.replace("/", "__").replace("\\", "__")
