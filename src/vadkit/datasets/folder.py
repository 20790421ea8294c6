"""A user's own videos in a plain layout::

    train/normal/*                       (video files or frame folders)
    test/normal/*   test/abnormal/*      (abnormal/ may hold class folders: test/abnormal/fighting/*)
    labels.csv or labels.json            (optional, in the root or in test/: anomalous frame ranges)

Other split folders (``val/``) work the same way. Labels: CSV rows ``video,start,end`` (header optional, one row
per event) or JSON ``{"video": [[start, end], ...]}``; ``video`` is the file name or its stem; frames are 0-based,
``start`` inclusive, ``end`` exclusive (``labels[start:end] = 1``). Normal videos are all zeros; an abnormal test
video without rows has only its video label (``check()`` reports it).

Ids are the file stems (frame folder names); where a stem repeats, the path relative to the root without the
extension (``test/abnormal/cam1``).
"""

from __future__ import annotations

from pathlib import Path

from vadkit.datasets.base import (
    SPLIT_ORDER,
    AllNormal,
    DatasetError,
    DirGuard,
    FrameRanges,
    VideoDataset,
    VideoEntry,
    clip,
    find_child,
    subdirs,
)
from vadkit.datasets.groundtruth import read_range_table
from vadkit.io import is_video_file, list_frame_files, natural_key

LABEL_FILES = ("labels.csv", "labels.json")
STATES = ("normal", "abnormal")


class FolderDataset(VideoDataset):
    """A folder of normal / abnormal videos (``folder``).

    Args:
        root: the folder holding ``train/`` and ``test/``.
        labels: the frame-label file; default ``labels.csv`` / ``labels.json`` in the root or in ``test/``.
        fps: frame rate given to frame folders (video files report their own).
    """

    name = "folder"

    def __init__(self, root: str | Path, *, labels: str | Path | None = None, fps: float | None = None) -> None:
        super().__init__(root)
        if fps is not None:
            if fps <= 0:
                raise DatasetError(f"{self.name}: fps must be positive, got {fps}")
            self.folder_fps = float(fps)  # type: ignore[misc]
        self.labels_file = Path(labels) if labels else self._find_labels()
        if self.labels_file is not None and not self.labels_file.is_file():
            raise DatasetError(f"{self.name}: label file {self.labels_file} does not exist")
        self.entries  # noqa: B018

    def _find_labels(self) -> Path | None:
        for place in (self.root, self.root / "test"):
            for name in LABEL_FILES:
                found = find_child(place, name)
                if found is not None and found.is_file():
                    return found
        return None

    def _split_folders(self) -> list[Path]:
        folders = [d for d in subdirs(self.root) if any((d / s).is_dir() for s in STATES)]
        if not folders:
            raise DatasetError(f"{self.name}: no train/normal/ or test/{{normal,abnormal}}/ folder under {self.root}")
        order = {name: i for i, name in enumerate(SPLIT_ORDER)}
        return sorted(folders, key=lambda d: (order.get(_split_name(d), len(order)), d.name))

    def _items(self, folder: Path, guard: DirGuard) -> list[tuple[Path, str | None]]:
        """``(video, class folder or None)`` under a ``normal/`` or ``abnormal/`` folder (already entered).

        Each real folder is visited once; a link to a folder outside the root or back up (``loop -> .``) is
        ignored, so a link loop neither repeats videos nor walks forever. Links to video files are kept."""
        out = []
        for item in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
            if item.name.startswith("."):
                continue
            if item.is_file() and is_video_file(item):
                out.append((item, None))
            elif item.is_dir() and guard.enter(item):
                if list_frame_files(item):
                    out.append((item, None))
                else:
                    out += [(video, item.name) for video, _ in self._items(item, guard)]
        return out

    def _scan(self) -> list[VideoEntry]:
        tops = []  # (split, state, folder)
        for split_folder in self._split_folders():
            for state in STATES:
                state_folder = find_child(split_folder, state)
                if state_folder is not None and state_folder.is_dir():
                    tops.append((_split_name(split_folder), state, state_folder))
        # one walk over all of them: each real folder once, links out of the root or back into the walk ignored
        guard = DirGuard(self.root, [folder for _, _, folder in tops])
        found = []  # (split, state, class folder, path)
        for split, state, state_folder in tops:
            if guard.enter(state_folder):
                found += [(split, state, cls, path) for path, cls in self._items(state_folder, guard)]
            else:
                raise DatasetError(self._not_walked(state_folder, tops))
        if not found:
            raise DatasetError(f"{self.name}: no videos under {self.root} (expected video files or frame folders in "
                               f"train/normal/, test/normal/, test/abnormal/)")
        stems = [path.stem if path.is_file() else path.name for _, _, _, path in found]
        repeated = {s for s in stems if stems.count(s) > 1}
        ranges = read_range_table(self.labels_file) if self.labels_file is not None else {}
        used: set[str] = set()
        entries = []
        for (split, state, cls, path), stem in zip(found, stems):
            relative = path.relative_to(self.root)
            if stem in repeated:  # the path below the root, without the extension: test/abnormal/cam1
                video_id = (relative.with_suffix("") if path.is_file() else relative).as_posix()
            else:
                video_id = stem
            if stem in repeated and (stem in ranges or path.name in ranges):
                raise DatasetError(f"{self.name}: {self.labels_file.name} names {stem!r}, which is ambiguous: several "
                                   f"videos have that name; use the id {video_id!r}")
            candidates = (video_id,) if stem in repeated else (video_id, path.name)
            key = next((k for k in candidates if k in ranges), None)
            abnormal = state == "abnormal"
            truth = None
            if key is not None:
                used.add(key)
                truth = FrameRanges(ranges[key], f"{self.labels_file.name} ({key})", kind=self.labels_file.name)
            elif not abnormal:
                truth = AllNormal()
            entries.append(VideoEntry(id=video_id, split=split, path=path, label=int(abnormal),
                                      class_name=(cls or "anomaly") if abnormal else "normal", ground_truth=truth))
        unknown = sorted(set(ranges) - used)
        if unknown:
            raise DatasetError(f"{self.name}: {self.labels_file} names videos not found under {self.root}: "
                               f"{', '.join(clip(u) for u in unknown[:5])}")
        return entries


    def _not_walked(self, folder: Path, tops: list[tuple[str, str, Path]]) -> str:
        """Why a ``normal/`` or ``abnormal/`` folder could not be walked (a link to another one, ...)."""
        real = folder.resolve()
        for _, _, other in tops:
            if other != folder and (real == other.resolve() or real.is_relative_to(other.resolve())):
                return (f"{self.name}: {folder.relative_to(self.root)} is a link to "
                        f"{other.relative_to(self.root)}, whose videos are already read there; expected a folder of "
                        f"its own (a video cannot be both {folder.name} and {other.name})")
        return (f"{self.name}: {folder} cannot be read (expected a folder of videos inside {self.root}, found a link "
                f"to {real})")


def _split_name(folder: Path) -> str:
    name = folder.name.lower()
    return {"training": "train", "testing": "test", "validation": "val"}.get(name, name)
