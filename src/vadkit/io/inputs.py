"""What a user points vadkit at: video files, frame folders, or folders of them, and names for each video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from vadkit.io.video import FRAME_EXTENSIONS, is_video_file, natural_key

__all__ = ["common_root", "find_videos", "is_frame_folder", "printable", "unique_names", "video_name"]


def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in FRAME_EXTENSIONS for p in path.iterdir() if p.is_file())


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand the command line's inputs into videos: a video file, a frame folder (a folder holding images), or a
    folder whose video files and frame folders (one level down) are taken in natural order.

    Raises:
        FileNotFoundError: an input does not exist, or a folder holds no video.
    """
    videos: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no video or folder at {path}")
        if path.is_file() or is_frame_folder(path):
            videos.append(path)
            continue
        found = [p for p in sorted(path.iterdir(), key=lambda p: natural_key(p.name))
                 if not p.name.startswith(".") and ((p.is_file() and is_video_file(p)) or is_frame_folder(p))]
        if not found:
            raise FileNotFoundError(f"{path} holds no video files (.mp4, .avi, ...) and no frame folders")
        videos.extend(found)
    return videos


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
