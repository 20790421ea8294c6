"""What a user points vadkit at: video files, frame folders, or folders of them, and names for each video."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Sequence

from vadkit.io.video import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, is_video_file, natural_key

__all__ = ["common_root", "find_videos", "is_frame_folder", "printable", "unique_names", "video_name"]


def is_frame_folder(path: Path) -> bool:
    """A folder of frames: it holds images and no video file (a folder of videos with a stray image, a thumbnail
    or a cover picture is a folder of videos)."""
    if not path.is_dir():
        return False
    files = [p for p in path.iterdir() if not p.name.startswith(".") and _is_regular(p)]
    return any(p.suffix.lower() in FRAME_EXTENSIONS for p in files) and not any(is_video_file(p) for p in files)


def find_videos(inputs: Iterable[str | os.PathLike], skipped: list | None = None) -> list[Path]:
    """Expand the command line's inputs into videos: a video file, a frame folder (a folder holding images and no
    video file), or a folder whose video files and frame folders (one level down) are taken in natural order.

    What a folder is is decided by what its files are: a folder holding a video file is a folder of videos, and
    its other entries (images, text, FIFOs, devices, folders without frames) are skipped, each recorded in
    ``skipped`` as ``(path, reason)`` when a list is given.

    Raises:
        FileNotFoundError: an input does not exist, or a folder holds no video.
        ValueError: an input is neither a regular file nor a folder (a FIFO, a device, a socket).
    """
    videos: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no video or folder at {path}")
        if not path.is_dir() and not _is_regular(path):
            raise ValueError(f"{path}: expected a video file or a folder, found {_special_kind(path)}")
        if path.is_file() or is_frame_folder(path):
            videos.append(path)
            continue
        found = []
        for entry in sorted(path.iterdir(), key=lambda p: natural_key(p.name)):
            if entry.name.startswith("."):
                continue
            reason = _skip_reason(entry)
            if reason is None:
                found.append(entry)
            elif skipped is not None:
                skipped.append((entry, reason))
        if not found:
            raise FileNotFoundError(f"{path} holds no video files (.mp4, .avi, ...) and no frame folders")
        videos.extend(found)
    return videos


def _skip_reason(entry: Path) -> str | None:
    """Why an entry of a folder of videos is not a video (``None``: it is one)."""
    if entry.is_dir():
        return None if is_frame_folder(entry) else "a folder holding no frame images (or holding videos)"
    if not _is_regular(entry):
        return f"{_special_kind(entry)}, not a video file"
    if is_video_file(entry):
        return None
    if entry.suffix.lower() in FRAME_EXTENSIONS:
        return "an image beside videos (a frame folder holds only images)"
    return f"not a video file (expected {', '.join(VIDEO_EXTENSIONS[:4])}, ...)"


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:  # a dangling link, a file gone meanwhile
        return False


def _special_kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link"
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def video_name(path: Path) -> str:
    """The file stem or folder name, printable: bytes that are not UTF-8 become U+FFFD (reports, plots and JSON
    need text; the name still tells the videos apart)."""
    return printable(path.stem if path.is_file() else path.name)


def printable(text: str) -> str:
    """``text`` (e.g. a path from the file system) with bytes that are not UTF-8 replaced by U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Names for the videos: the file stem or folder name, ``-2``, ``-3`` … where names repeat."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for p in paths:
        base = video_name(Path(p)) or "video"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        while name in names:
            seen[base] += 1
            name = f"{base}-{seen[base]}"
        names.append(name)
    return names


def common_root(paths: Sequence[str | os.PathLike]) -> Path:
    """The deepest folder holding every path's parent (``.`` for none)."""
    parents = [str(Path(p).resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path(".")
