"""Which benchmark layout a single video or frame folder belongs to, and what follows from it.

A user who points ``vadkit score`` at ``ucsd_ped2/testing/frames/02`` gives a frame folder, which has no frame rate
of its own; the layout it sits in has one (UCSD: 10 fps). :func:`find_layout` looks a few folders up for a
benchmark root that lists the path among its videos, and :func:`frame_rate` turns that into the rate to decode with
and a few words saying where it came from (printed, and written to ``result.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vadkit.datasets.base import VideoEntry

# layouts that hold frame folders or files a user may point at one by one; ``folder`` (a user's own videos) is
# left out: it says nothing a file does not.
LAYOUT_DATASETS = ("ucsd_ped2", "ucsd_ped1", "shanghaitech", "avenue")
LEVELS_UP = 4  # ucsd_ped2/testing/frames/02: the root is three folders up; UCSDped2/Test/Test002: two
_CACHE: dict[Path, "LayoutMatch | None"] = {}
_ROOTS: dict[tuple[str, Path], list] = {}  # (dataset, root) -> its entries ([] when it is not that layout)


@dataclass(frozen=True)
class LayoutMatch:
    """A video found in a benchmark layout: the dataset's registry name, its root, the entry (id, split) and the
    layout's nominal rate for frame folders."""

    dataset: str
    root: Path
    entry: VideoEntry
    folder_fps: float

    @property
    def key(self) -> str:
        """The video's key in feature stores and run folders (``train/Train001``), as ``vadkit train`` uses."""
        return f"{self.entry.split}/{self.entry.id}"


def find_layout(path: str | Path) -> LayoutMatch | None:
    """The benchmark layout holding ``path`` (a frame folder or video file), or ``None``. Memoised per path."""
    target = Path(path).expanduser().resolve()
    if target in _CACHE:
        return _CACHE[target]
    _CACHE[target] = match = _search(target)
    return match


def _search(target: Path) -> LayoutMatch | None:
    from vadkit.datasets import DATASETS

    # a UCSD root reads as Ped1 and as Ped2 alike: the one the path names comes first
    path = str(target).lower()
    names = sorted(LAYOUT_DATASETS, key=lambda n: n.replace("ucsd_", "") not in path)
    for root in list(target.parents)[:LEVELS_UP]:
        for name in names:
            cls = DATASETS.get(name)
            for entry in _entries(name, root):
                if Path(entry.path).resolve() == target:
                    return LayoutMatch(dataset=name, root=root, entry=entry, folder_fps=float(cls.folder_fps))
    return None


def _entries(name: str, root: Path) -> list[VideoEntry]:
    """The entries of dataset ``name`` at ``root`` (memoised), or none when ``root`` is not that layout."""
    from vadkit.datasets import DATASETS

    if (name, root) not in _ROOTS:
        try:
            _ROOTS[name, root] = list(DATASETS.get(name)(root).entries)
        except Exception:  # noqa: BLE001 - not this layout (any failure to read it as one means no)
            _ROOTS[name, root] = []
    return _ROOTS[name, root]


def frame_rate(path: str | Path, fps: float | None = None) -> tuple[float | None, str]:
    """The rate to decode ``path`` with (``None``: the file's own) and where it comes from, in words.

    A video file keeps its own rate; a frame folder takes ``fps`` when given, else its layout's nominal rate
    (UCSD 10 fps, ShanghaiTech 24, Avenue 25), else the default for frame folders, which the words say.

    Raises:
        ValueError: ``fps`` is not positive.
    """
    from vadkit.io import DEFAULT_FOLDER_FPS

    if fps is not None and not fps > 0:
        raise ValueError(f"--fps must be a positive number of frames per second, got {fps}")
    if not Path(path).is_dir():
        return None, "the video file's own rate"
    if fps is not None:
        return float(fps), "given with --fps"
    match = find_layout(path)
    if match is not None:
        return match.folder_fps, f"the {match.dataset} layout's rate"
    return DEFAULT_FOLDER_FPS, "a frame folder has no rate of its own: the default, set another with --fps"
