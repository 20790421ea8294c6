"""LAD2000 (Wan et al. 2021): 2000 videos in 14 category folders, frame labels in ``gt_*.mat`` files.

Layout (videos as files or frame folders; the level above the category folders may be ``videos/`` or
``denseflow_img/``, and a frame folder may hold its images in an ``img/`` subfolder)::

    <Category>/<video>.mp4   or   <Category>/<video>/img/00001.jpg ...
    GT_mat/.../gt_<video name without its 'v_' prefix>.mat      (variable gt, 1 x F)
    train_split.txt, test_split.txt                             (one video name per line)

The 14 categories, in the index order of the AED seed: ``Crash 0, Crowd 1, Destroy 2, Drop 3, FallIntoWater 4,
Falling 5, Fighting 6, Fire 7, Hurt 8, Loitering 9, Panic 10, Thiefing 11, Trampled 12, Violence 13``.
The class of a video is its category folder, for normal and abnormal videos alike (there is no "normal" class).
A video is normal when the third-from-last ``_`` token of its name is ``n``; normal videos without a ``gt`` file
are all zeros. Without split lists every video is in split ``"all"``.
"""

from __future__ import annotations

from pathlib import Path

from vadkit.datasets.base import (
    AllNormal,
    DatasetError,
    DirGuard,
    FrameArray,
    VideoDataset,
    VideoEntry,
    find_child,
    subdirs,
)
from vadkit.datasets.groundtruth import read_gt_vector
from vadkit.datasets.splits import split_by_lists
from vadkit.datasets.ucf_crime import find_file
from vadkit.io import VideoReadError, is_video_file, list_frame_files, natural_key, open_video

LAD2000_CLASSES = ("Crash", "Crowd", "Destroy", "Drop", "FallIntoWater", "Falling", "Fighting", "Fire", "Hurt",
                   "Loitering", "Panic", "Thiefing", "Trampled", "Violence")


def is_lad2000_normal(name: str) -> bool:
    """The naming rule of normal LAD2000 videos: the third-from-last ``_`` token is ``n``."""
    tokens = name.split("_")
    return len(tokens) >= 3 and tokens[-3] == "n"


class LAD2000(VideoDataset):
    """LAD2000 (``lad2000``).

    Args:
        root: the folder holding the category folders (or ``videos/`` / ``denseflow_img/`` above them).
        train_list, test_list: split lists; default ``train_split.txt`` / ``test_split.txt`` under the root.
    """

    name = "lad2000"
    folder_fps = 25.0
    class_names = LAD2000_CLASSES

    def __init__(self, root: str | Path, *, train_list: str | Path | None = None,
                 test_list: str | Path | None = None) -> None:
        super().__init__(root)
        if (train_list is None) != (test_list is None):
            raise DatasetError(f"{self.name}: give both train_list and test_list, or neither")
        if train_list is None:
            train_list = find_file(self.root, ("train_split.txt",), depth=2)
            test_list = find_file(self.root, ("test_split.txt",), depth=2)
            if (train_list is None) != (test_list is None):
                raise DatasetError(f"{self.name}: found {train_list or test_list} but not its partner "
                                   f"({'test' if train_list else 'train'}_split.txt) under {self.root}")
        self.lists = (Path(train_list), Path(test_list)) if train_list else None
        self.video_root = self._find_video_root()
        self.entries  # noqa: B018

    def _find_video_root(self) -> Path:
        candidates = [self.root] + subdirs(self.root) + [d for s in subdirs(self.root) for d in subdirs(s)]
        for folder in candidates:
            if any((found := find_child(folder, c)) is not None and found.is_dir() for c in LAD2000_CLASSES):
                if folder.name not in ("GT_mat", "GT") and not folder.name.startswith("GT"):
                    return folder
        raise DatasetError(f"{self.name}: no category folders ({', '.join(LAD2000_CLASSES[:3])}, ...) under "
                           f"{self.root} (expected <Category>/<video>.mp4 or <Category>/<video>/ frame folders)")

    def _videos(self) -> list[tuple[str, Path, str]]:
        """``(name, path, category)`` of every video."""
        out = []
        folders = [find_child(self.video_root, category) for category in LAD2000_CLASSES]
        # a frame folder reached twice (through a link) is one video; links out of the root or back up are ignored
        guard = DirGuard(self.root, [f for f in folders if f is not None and f.is_dir()])
        for category, folder in zip(LAD2000_CLASSES, folders):
            if folder is None or not folder.is_dir() or not guard.enter(folder):
                continue
            for item in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
                if item.name.startswith("."):
                    continue
                if item.is_file() and is_video_file(item):
                    out.append((item.stem, item, category))
                elif item.is_dir() and guard.enter(item):
                    img = find_child(item, "img")
                    frames = img if img is not None and img.is_dir() else item
                    if list_frame_files(frames):
                        out.append((item.name, frames, category))
        return out

    def _gt_files(self) -> dict[str, Path]:
        """``{video key: gt file}``, the key being the name after ``gt_``. Searched in ``GT*`` folders within two
        levels of the root (not in the frame folders, which may hold millions of files), then beside the videos."""
        near = [self.root] + subdirs(self.root) + [d for s in subdirs(self.root) for d in subdirs(s)]
        gt_folders = [d for d in near if d != self.root and d.name.lower().startswith("gt")]
        files = [f for folder in gt_folders for f in folder.rglob("gt_*.mat")]
        categories = [self.video_root / c for c in LAD2000_CLASSES if (self.video_root / c).is_dir()]
        files += [f for category in categories for f in category.glob("gt_*.mat")]
        files += list(self.root.glob("gt_*.mat"))
        return {f.stem[3:]: f for f in sorted(set(files))}

    def _scan(self) -> list[VideoEntry]:
        videos = self._videos()
        if not videos:
            raise DatasetError(f"{self.name}: the category folders under {self.video_root} hold no videos")
        gt_files = self._gt_files()
        entries = []
        for name, path, category in videos:
            key = name[2:] if name.startswith("v_") else name
            normal = is_lad2000_normal(name)
            gt_file = gt_files.get(key) or gt_files.get(name)
            if gt_file is not None:
                truth = FrameArray(lambda f=gt_file, v=path: read_gt_vector(f, frames=_frame_count(v)), gt_file.name,
                                   kind="gt_*.mat")
            elif normal:
                truth = AllNormal()
            else:
                truth = None
            entries.append(VideoEntry(id=name, split="all", path=path, label=0 if normal else 1, class_name=category,
                                      ground_truth=truth))
        if self.lists is not None:
            entries = self._apply_lists(entries)
        return entries

    def _apply_lists(self, entries: list[VideoEntry]) -> list[VideoEntry]:
        return split_by_lists(entries, self.lists[0], self.lists[1], self.name)

    def _extra_problems(self, records) -> list[str]:
        problems = []
        for record in records:
            if record.split == "test":
                continue  # the shared checks cover test videos
            if record.frame_labels is None:
                problems.append(f"{self.name}: {record.split} video {record.id}: abnormal but no gt_*.mat file")
            elif record.label == 1 and not record.frame_labels.any():
                problems.append(f"{self.name}: {record.split} video {record.id}: abnormal by name but its gt marks "
                                f"no frame")
        return problems


def _frame_count(video: Path) -> int | None:
    """The frames of ``video``: what its ``gt_*.mat`` may label (``None``: unreadable, reported where it is read)."""
    try:
        with open_video(video) as source:
            return source.num_frames
    except (VideoReadError, OSError):
        return None
