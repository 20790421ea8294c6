"""XD-Violence (Wu et al. 2020): classes in the file names, frame ground truth for the test videos.

Layout: video files anywhere under the root, in folders whose names say ``train`` or ``test`` (``Train/``,
``TestClips/Videos/``, ...) unless ``train_list`` / ``test_list`` name them. The label code after ``_label_`` in a
name gives its classes: ``A`` normal, ``B1`` fighting, ``B2`` shooting, ``B4`` riot, ``B5`` abuse, ``B6`` car
accident, ``G`` explosion; ``G-B2-B6`` has three (``0`` placeholders are ignored).

Test ground truth, in order of preference:
- ``annotations.txt`` (``name s1 e1 s2 e2 ...``; frames ``s <= i < e``, 0-based, as the official ``make_gt.py`` reads
  them);
- a folder of per-video frame arrays (``gt_arrays=``, files ``<video>__0.npy`` or ``<video>.npy``, as distributed
  with the weakly supervised codebases). These are often cut to whole 16-frame snippets: ``gt_tail="extend"``
  repeats the last value over the missing tail frames (at most 16), the default ``"strict"`` refuses them.

Ids are the video names without extension. ``class_name`` is ``"normal"`` or the codes joined by ``-``
(``"G-B2-B6"``); :func:`xd_class_names` gives the words. Abnormal training videos have no frame labels.
"""

from __future__ import annotations

from pathlib import Path

from vadkit.datasets.base import AllNormal, DatasetError, FrameArray, FrameRanges, VideoDataset, VideoEntry, load_npy
from vadkit.datasets.groundtruth import XD_CODES, read_xd_annotations, snippet_array_key, xd_codes
from vadkit.datasets.splits import match_list, read_list
from vadkit.datasets.ucf_crime import find_file, index_videos

XD_CLASSES = ("normal", "B1", "B2", "B4", "B5", "B6", "G")


def xd_class_names(class_name: str) -> list[str]:
    """Words for a record's ``class_name``: ``"G-B2-B6"`` -> ``["explosion", "shooting", "car accident"]``."""
    if class_name == "normal":
        return ["normal"]
    return [XD_CODES[code] for code in class_name.split("-")]


class XDViolence(VideoDataset):
    """XD-Violence (``xd_violence``).

    Args:
        root: the folder holding the videos (and usually ``annotations.txt``).
        annotations: the test annotation file; default ``annotations.txt`` under the root.
        gt_arrays: a folder of per-video frame arrays (used when there is no annotation file, else compared).
        gt_tail: ``"strict"`` or ``"extend"`` for arrays cut to whole 16-frame snippets.
        train_list, test_list: optional list files naming the videos of each split.
    """

    name = "xd_violence"
    folder_fps = 24.0
    class_names = XD_CLASSES

    def __init__(self, root: str | Path, *, annotations: str | Path | None = None, gt_arrays: str | Path | None = None,
                 gt_tail: str = "strict", train_list: str | Path | None = None,
                 test_list: str | Path | None = None) -> None:
        super().__init__(root)
        if gt_tail not in ("strict", "extend"):
            raise DatasetError(f"{self.name}: gt_tail must be 'strict' or 'extend', got {gt_tail!r}")
        if (train_list is None) != (test_list is None):
            raise DatasetError(f"{self.name}: give both train_list and test_list, or neither")
        self.annotations = Path(annotations) if annotations else find_file(self.root, ("annotations.txt",))
        self.gt_arrays = Path(gt_arrays) if gt_arrays else None
        if self.gt_arrays is not None and not self.gt_arrays.is_dir():
            raise DatasetError(f"{self.name}: gt_arrays folder {self.gt_arrays} does not exist")
        self.gt_tail = gt_tail
        self.lists = (Path(train_list), Path(test_list)) if train_list else None
        self.entries  # noqa: B018

    def _splits_of(self, index: dict[str, list[Path]]) -> dict[str, tuple[str, Path]]:
        """``{id: (split, path)}``."""
        if self.lists is not None:
            ids = list(index)
            out = {}
            for split, list_file in zip(("train", "test"), self.lists):
                for video in match_list(read_list(list_file), ids, str(list_file)):
                    out[video] = (split, index[video][0])
            return out
        out, unplaced = {}, []
        for video, paths in index.items():
            path = paths[0]
            split = _split_from_path(path.relative_to(self.root))
            if split is None:
                unplaced.append(path)
            else:
                out[video] = (split, path)
        if unplaced:
            raise DatasetError(f"{self.name}: cannot tell the split of {len(unplaced)} videos (expected them in a "
                               f"folder named like train*/test*, or pass train_list and test_list): {unplaced[0]}")
        return out

    def _scan(self) -> list[VideoEntry]:
        index = index_videos(self.root)
        if not index:
            raise DatasetError(f"{self.name}: no video files under {self.root} (expected e.g. "
                               f"Test/<name>_label_B1-0-0.mp4)")
        ranges = read_xd_annotations(self.annotations) if self.annotations is not None else None
        arrays = self._arrays()
        entries = []
        for video, (split, path) in self._splits_of(index).items():
            codes = xd_codes(video)
            normal = codes == ("A",)
            class_name = "normal" if normal else "-".join(codes)
            entry = VideoEntry(id=video, split=split, path=path, label=0 if normal else 1, class_name=class_name,
                               ground_truth=AllNormal() if normal else None)
            if split == "test" and not normal:
                sources = []
                if ranges is not None and video in ranges:
                    sources.append(FrameRanges(ranges[video], f"{self.annotations.name} ({video})",
                                               kind=self.annotations.name))
                if video in arrays:
                    sources.append(arrays[video])
                if sources:
                    entry.ground_truth, entry.alternatives = sources[0], sources[1:]
            elif split == "test" and video in arrays:
                entry.alternatives = [arrays[video]]
            entries.append(entry)
        return sorted(entries, key=lambda e: (e.split != "train", e.id))

    def _arrays(self) -> dict[str, FrameArray]:
        if self.gt_arrays is None:
            return {}
        return {snippet_array_key(f.name): FrameArray(lambda f=f: load_npy(f, "per-frame labels"), f.name,
                                                      tail=self.gt_tail, kind="per-video gt arrays")
                for f in sorted(self.gt_arrays.glob("*.npy"))}


def _split_from_path(relative: Path) -> str | None:
    for part in relative.parts[:-1]:
        lowered = part.lower()
        if "train" in lowered:
            return "train"
        if "test" in lowered:
            return "test"
    return None
