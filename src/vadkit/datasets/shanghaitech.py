"""ShanghaiTech Campus: the official one-class split and the weakly supervised re-split of Zhong et al.

Official layout (``shanghaitech/``)::

    training/videos/01_001.avi ...            (or frames extracted to training/frames/01_001/000.jpg ...)
    testing/frames/01_0014/000.jpg ...
    testing/test_frame_mask/01_0014.npy ...   (one 0/1 per frame)

Ids are the video names (``01_001`` training, ``01_0014`` test). With ``protocol="weak"`` the 437 videos are
re-split by two list files (Zhong et al. 2019: 238 training videos, 175 normal + 63 abnormal; 199 test). Each
video keeps what is known about it: an official training video is normal (all-zero frame labels), an official
test video has its frame mask and is abnormal when any frame is. Frame folders get a nominal 24 fps
(frame folders carry no rate; training videos report their own).
"""

from __future__ import annotations

from pathlib import Path

from vadkit.datasets.base import (
    AllNormal,
    DatasetError,
    FrameArray,
    VideoDataset,
    VideoEntry,
    find_child,
    load_npy,
    subdirs,
)
from vadkit.datasets.splits import split_by_lists
from vadkit.io import is_video_file, natural_key

LIST_NAMES = (("train_split.txt", "test_split.txt"), ("SH_Train_new.txt", "SH_Test_NEW.txt"),
              ("shanghaitech_train.txt", "shanghaitech_test.txt"))


class ShanghaiTech(VideoDataset):
    """ShanghaiTech Campus (``shanghaitech``).

    Args:
        root: the folder holding ``training/`` and ``testing/`` (or the one above, holding ``shanghaitech/``).
        protocol: ``"oneclass"`` (official: training videos normal, test videos with frame masks) or ``"weak"``
            (the re-split of ``train_list`` / ``test_list``).
        train_list, test_list: list files of the weak split (one video name or feature path per line); by default
            ``train_split.txt`` / ``test_split.txt`` or ``SH_Train_new.txt`` / ``SH_Test_NEW.txt`` in the root.
    """

    name = "shanghaitech"
    folder_fps = 24.0

    def __init__(self, root: str | Path, *, protocol: str = "oneclass", train_list: str | Path | None = None,
                 test_list: str | Path | None = None) -> None:
        super().__init__(root)
        if protocol not in ("oneclass", "weak"):
            raise DatasetError(f"{self.name}: protocol must be 'oneclass' or 'weak', got {protocol!r}")
        if (train_list is None) != (test_list is None):
            raise DatasetError(f"{self.name}: give both train_list and test_list, or neither")
        self.protocol = protocol
        self.folder = self._find_folder()
        self.train_list, self.test_list = (Path(train_list), Path(test_list)) if train_list else (None, None)
        if protocol == "weak" and self.train_list is None:
            self.train_list, self.test_list = self._find_lists()
        self.entries  # noqa: B018

    def _find_folder(self) -> Path:
        for folder in (self.root, self.root / "shanghaitech", self.root / "ShanghaiTech"):
            if find_child(folder, "training") or find_child(folder, "testing"):
                return folder
        raise DatasetError(f"{self.name}: no training/ or testing/ folder under {self.root} (expected "
                           f"training/videos/01_001.avi and testing/frames/01_0014/000.jpg)")

    def _find_lists(self) -> tuple[Path, Path]:
        for train_name, test_name in LIST_NAMES:
            for place in (self.root, self.folder):
                train, test = find_child(place, train_name), find_child(place, test_name)
                if train is not None and test is not None:
                    return train, test
        names = " or ".join(f"{a} + {b}" for a, b in LIST_NAMES)
        raise DatasetError(f"{self.name}: protocol='weak' needs the split lists: none of {names} under {self.root}; "
                           f"pass train_list and test_list")

    def _training_videos(self) -> list[Path]:
        training = find_child(self.folder, "training")
        if training is None:
            return []
        for name in ("frames", "videosFrame"):
            frames = find_child(training, name)
            if frames is not None and frames.is_dir() and subdirs(frames):
                return subdirs(frames)
        videos = find_child(training, "videos")
        if videos is not None and videos.is_dir():
            return sorted((p for p in videos.iterdir() if is_video_file(p) and not p.name.startswith(".")),
                          key=lambda p: natural_key(p.name))
        raise DatasetError(f"{self.name}: no training videos in {training} (expected training/videos/01_001.avi "
                           f"or training/frames/01_001/)")

    def _test_videos(self) -> tuple[list[Path], Path | None]:
        testing = find_child(self.folder, "testing")
        if testing is None:
            return [], None
        folders: list[Path] = []
        for name in ("frames", "frames_part1", "frames_part2"):
            frames = find_child(testing, name)
            if frames is not None and frames.is_dir():
                folders += subdirs(frames)
        if not folders:
            raise DatasetError(f"{self.name}: no test frame folders in {testing} (expected testing/frames/01_0014/)")
        masks = find_child(testing, "test_frame_mask")
        if masks is None:
            raise DatasetError(f"{self.name}: no testing/test_frame_mask/ folder in {testing} "
                               f"(expected test_frame_mask/01_0014.npy)")
        return sorted(folders, key=lambda p: natural_key(p.name)), masks

    def _scan(self) -> list[VideoEntry]:
        entries = [VideoEntry(id=p.stem if p.is_file() else p.name, split="train", path=p, label=0,
                              class_name="normal", ground_truth=AllNormal())
                   for p in self._training_videos()]
        folders, masks = self._test_videos()
        for folder in folders:
            mask = masks / f"{folder.name}.npy"
            if not mask.is_file():
                raise DatasetError(f"{self.name}: no frame mask for test video {folder.name}: expected {mask}")
            entries.append(VideoEntry(id=folder.name, split="test", path=folder,
                                      ground_truth=FrameArray(lambda m=mask: load_npy(m, "per-frame labels"),
                                                              f"test_frame_mask/{mask.name}",
                                                              kind="test_frame_mask")))
        if not entries:
            raise DatasetError(f"{self.name}: no videos under {self.folder}")
        if self.protocol == "weak":
            entries = self._resplit(entries)
        return entries

    def _resplit(self, entries: list[VideoEntry]) -> list[VideoEntry]:
        return split_by_lists(entries, self.train_list, self.test_list, self.name)
