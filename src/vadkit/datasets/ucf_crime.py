"""UCF-Crime (Sultani et al. 2018): weakly labelled training videos, temporally annotated test videos.

Layout (the official archive; only the file names matter, videos are found anywhere under the root)::

    Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4 ...   Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4 ...
    Anomaly_Train.txt            (Abuse/Abuse001_x264.mp4, one training video per line; 1610 lines)
    Temporal_Anomaly_Annotation_for_Testing_Videos.txt   (or Temporal_Anomaly_Annotation.txt; 290 test videos)
    Anomaly_Test.txt             (optional: the test list; else the annotation's videos are the test set)

Annotation lines are ``name.mp4  Class  s1  e1  s2  e2`` with ``-1`` where there is no event; frames ``s <= i < e``
(0-based, end exclusive) are anomalous. That convention is the one of the per-frame arrays distributed with the
weakly supervised codebases (``Abuse028_x264__9_gt.npy`` is 1 exactly on 165..239 for ``165 240``); such arrays,
cut to whole 16-frame snippets, can be compared with ``gt_arrays=<folder>``.

Ids are the video stems (``Abuse028_x264``). Classes: the 13 anomaly classes in sorted order, then ``normal``
(the label set of the AED seed). Abnormal training videos have no frame labels (weak supervision); normal ones
are all zeros.
"""

from __future__ import annotations

import re
from pathlib import Path

from vadkit.datasets.base import (
    AllNormal,
    DatasetError,
    DirGuard,
    FrameArray,
    FrameRanges,
    VideoDataset,
    VideoEntry,
    clip,
    load_npy,
    preview,
)
from vadkit.datasets.groundtruth import read_ucf_annotation, snippet_array_key
from vadkit.datasets.splits import read_list
from vadkit.io import VIDEO_EXTENSIONS

UCF_CLASSES = ("Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents",
               "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism", "normal")
ANNOTATION_NAMES = ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "Temporal_Anomaly_Annotation.txt")


def find_file(root: Path, names: tuple[str, ...], depth: int = 3) -> Path | None:
    """The first file named one of ``names`` (case-insensitive) within ``depth`` levels of ``root``."""
    wanted = [n.lower() for n in names]
    guard = DirGuard(root, [root])  # each real folder once; links are not followed (the real paths are walked)
    level = [root] if guard.enter(root) else []
    for _ in range(depth + 1):
        found = {}
        for folder in level:
            try:
                children = list(folder.iterdir())
            except OSError:
                continue
            for child in children:
                if child.is_file() and child.name.lower() in wanted:
                    found.setdefault(child.name.lower(), child)
        for name in wanted:
            if name in found:
                return found[name]
        level = [c for folder in level for c in _safe_dirs(folder) if guard.enter(c)]
    return None


def _safe_dirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def index_videos(root: Path) -> dict[str, list[Path]]:
    """``{stem: [paths]}`` of every video file under ``root``."""
    index: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file() and not path.name.startswith("."):
            index.setdefault(path.stem, []).append(path)
    return index


def locate(index: dict[str, list[Path]], line: str) -> Path | None:
    """The video a list line names (``Abuse/Abuse001_x264.mp4``), preferring a path that ends like the line."""
    relative = Path(line.strip().replace("\\", "/"))
    candidates = index.get(relative.stem, [])
    for path in candidates:
        if path.parts[-len(relative.parts):] == relative.parts:
            return path
    return candidates[0] if candidates else None


class UCFCrime(VideoDataset):
    """UCF-Crime (``ucf_crime``).

    Args:
        root: the folder holding the videos and the split / annotation files.
        train_list: default ``Anomaly_Train.txt`` found under the root.
        test_list: default ``Anomaly_Test.txt`` when present, else the annotated videos.
        annotation: default ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (or ``..._Annotation.txt``).
        gt_arrays: optional folder of per-video frame arrays (``<video>__N_gt.npy`` / ``<video>.npy``), compared
            with the annotation by ``check()`` on their own length.
    """

    name = "ucf_crime"
    folder_fps = 30.0
    class_names = UCF_CLASSES

    def __init__(self, root: str | Path, *, train_list: str | Path | None = None, test_list: str | Path | None = None,
                 annotation: str | Path | None = None, gt_arrays: str | Path | None = None) -> None:
        super().__init__(root)
        self.train_list = Path(train_list) if train_list else find_file(self.root, ("Anomaly_Train.txt",))
        self.test_list = Path(test_list) if test_list else find_file(self.root, ("Anomaly_Test.txt",))
        self.annotation = Path(annotation) if annotation else find_file(self.root, ANNOTATION_NAMES)
        self.gt_arrays = Path(gt_arrays) if gt_arrays else None
        if self.train_list is None and self.annotation is None:
            raise DatasetError(f"{self.name}: neither Anomaly_Train.txt nor {ANNOTATION_NAMES[0]} (or "
                               f"{ANNOTATION_NAMES[1]}) under {self.root}")
        if self.gt_arrays is not None and not self.gt_arrays.is_dir():
            raise DatasetError(f"{self.name}: gt_arrays folder {self.gt_arrays} does not exist")
        self.entries  # noqa: B018

    def _scan(self) -> list[VideoEntry]:
        index = index_videos(self.root)
        entries = []
        if self.train_list is not None:
            listed: dict[str, VideoEntry] = {}
            for line in read_list(self.train_list):
                entry = self._train_entry(line, index)
                if entry.id in listed:
                    if listed[entry.id].path == entry.path:
                        continue  # the same video named twice (Abuse/Abuse001_x264.mp4 and Abuse001_x264.mp4)
                    raise DatasetError(f"{self.name}: {self.train_list} names two videos called {preview(entry.id)}: "
                                       f"{listed[entry.id].path} and {entry.path}")
                listed[entry.id] = entry
                entries.append(entry)
        if self.annotation is not None:
            tests = self._test_entries(index)
            both = sorted({e.id for e in entries} & {e.id for e in tests})
            if both:
                raise DatasetError(f"{self.name}: {len(both)} videos are both in {self.train_list} (training) and in "
                                   f"{self.test_list or self.annotation} (test): "
                                   f"{', '.join(clip(b) for b in both[:5])}")
            entries += tests
        elif self.test_list is not None:
            raise DatasetError(f"{self.name}: {self.test_list.name} found but no temporal annotation "
                               f"({ANNOTATION_NAMES[0]}) under {self.root}")
        return entries

    def _train_entry(self, line: str, index: dict[str, list[Path]]) -> VideoEntry:
        path = locate(index, line)
        stem = Path(line.replace("\\", "/")).stem
        if path is None:
            raise DatasetError(f"{self.name}: training video {preview(line)} of {self.train_list} not found under "
                               f"{self.root}")
        class_name = _class_of(line)
        normal = class_name == "normal"
        return VideoEntry(id=stem, split="train", path=path, label=0 if normal else 1, class_name=class_name,
                          ground_truth=AllNormal() if normal else None)

    def _test_entries(self, index: dict[str, list[Path]]) -> list[VideoEntry]:
        annotation = read_ucf_annotation(self.annotation)
        if self.test_list is not None:
            lines = list({Path(line.replace("\\", "/")).stem: line for line in read_list(self.test_list)}.values())
            names = [Path(line.replace("\\", "/")).stem for line in lines]
            missing = [n for n in names if n not in annotation]
            if missing:
                raise DatasetError(f"{self.name}: {len(missing)} test videos of {self.test_list.name} have no line in "
                                   f"{self.annotation.name}: {', '.join(clip(m) for m in missing[:5])}")
        else:
            lines = names = list(annotation)
        arrays = self._arrays()
        entries = []
        for line, name in zip(lines, names):
            path = locate(index, line if line != name else f"{name}.mp4")
            if path is None:
                raise DatasetError(f"{self.name}: test video {clip(name)}.mp4 (in {self.annotation.name}) not "
                                   f"found under {self.root}")
            class_name, ranges = annotation[name]
            normal = class_name.lower().startswith("normal")
            alternatives = [arrays[name]] if name in arrays else []
            entries.append(VideoEntry(
                id=name, split="test", path=path, label=0 if normal else 1,
                class_name="normal" if normal else class_name,
                ground_truth=FrameRanges(ranges, f"{self.annotation.name} ({name})", kind=self.annotation.name),
                alternatives=alternatives))
        return entries

    def _arrays(self) -> dict[str, FrameArray]:
        if self.gt_arrays is None:
            return {}
        return {snippet_array_key(f.name): FrameArray(lambda f=f: load_npy(f, "per-frame labels"), f.name,
                                                      kind="per-video gt arrays")
                for f in sorted(self.gt_arrays.glob("*.npy"))}


def _class_of(line: str) -> str:
    """The class of a list line: its folder (``Abuse/...``) or the letters its file name starts with."""
    parts = Path(line.strip().replace("\\", "/")).parts
    name = parts[-1]
    if name.lower().startswith("normal") or (len(parts) > 1 and "normal" in parts[-2].lower()):
        return "normal"
    if len(parts) > 1 and parts[-2] in UCF_CLASSES:
        return parts[-2]
    match = re.match(r"[A-Za-z]+", name)
    return match.group(0) if match else "unknown"
