"""UCSD Ped1 and Ped2, in the official release layout and in the frames layout most VAD code uses.

Official (``UCSD_Anomaly_Dataset.v1p2/UCSDped2/``)::

    Train/Train001/001.tif ...        Test/Test001/001.tif ...
    Test/Test001_gt/001.bmp ...       Test/UCSDped2.m   (TestVideoFile{end+1}.gt_frame = [61:180];)

Frames layout (``ped2/``)::

    training/frames/01/000.jpg ...    testing/frames/01/000.jpg ...    ped2.mat (beside or inside ped2/)

Ids are the official names in both layouts (``Train001``, ``Test001``), so a result is comparable across them.
Ground truth: the frames layout reads ``pedN.mat`` (``gt``: cell of 2 x K 1-based inclusive ranges), the official
layout ``UCSDpedN.m``; pixel masks (``TestNNN_gt``) are used where no ``.m`` is given (Ped1 ships masks for a
subset of its test videos only). Every other ground-truth file found is compared frame for frame by ``check()``.
Training videos are normal: all-zero frame labels. Frame folders get the nominal 10 fps of the recordings.
"""

from __future__ import annotations

import re
from pathlib import Path

from vadkit.datasets.base import (
    AllNormal,
    DatasetError,
    FrameRanges,
    GroundTruth,
    VideoDataset,
    VideoEntry,
    VideoRecord,
    find_child,
    read_text_file,
    subdirs,
)
from vadkit.datasets.groundtruth import (RANGES_MAT_BYTES, MaskFolder, load_mat_variable, parse_ucsd_m,
                                         ranges_from_mat_cell)
from vadkit.io import list_frame_files

GROUND_TRUTH_CHOICES = ("auto", "mat", "m", "masks")


class UCSDPed(VideoDataset):
    """UCSD Ped1 / Ped2 (subclasses set ``number``).

    Args:
        root: the folder of either layout, or the folder above it (``UCSD_Anomaly_Dataset.v1p2``, or the one
            holding ``ped2/``).
        ground_truth: primary source: ``"auto"`` (``pedN.mat`` for the frames layout, ``UCSDpedN.m`` for the
            official one, masks when neither exists), ``"mat"``, ``"m"`` or ``"masks"``.
    """

    number: int = 2
    folder_fps = 10.0

    def __init__(self, root: str | Path, *, ground_truth: str = "auto") -> None:
        super().__init__(root)
        if ground_truth not in GROUND_TRUTH_CHOICES:
            raise DatasetError(f"{self.name}: ground_truth must be one of {', '.join(GROUND_TRUTH_CHOICES)}, "
                               f"got {ground_truth!r}")
        self.ground_truth = ground_truth
        self.layout, self.folder = self._find_layout()
        self._m_file = self._find_file(f"UCSDped{self.number}.m")
        self._mat_file = self._find_file(f"ped{self.number}.mat")
        self._gt_counts: dict[str, int] = {}
        self.entries  # noqa: B018  (scan now: layout errors surface at construction)

    # -- layout -------------------------------------------------------------------------------------------------
    def _find_layout(self) -> tuple[str, Path]:
        official = [self.root, self.root / f"UCSDped{self.number}",
                    self.root / "UCSD_Anomaly_Dataset.v1p2" / f"UCSDped{self.number}"]
        frames = [self.root, self.root / f"ped{self.number}", self.root / f"UCSDped{self.number}"]
        for folder in official:
            if find_child(folder, "Train") or find_child(folder, "Test"):
                return "official", folder
        for folder in frames:
            if find_child(folder, "training") or find_child(folder, "testing"):
                return "frames", folder
        raise DatasetError(
            f"{self.name}: no training/ or Train/ folder under {self.root} (expected the UCSD release "
            f"UCSDped{self.number}/Train/Train001/001.tif or the frames layout "
            f"ped{self.number}/training/frames/01/000.jpg)")

    def _find_file(self, name: str) -> Path | None:
        places = [self.folder, self.folder / "Test", self.folder / "testing", self.root, self.folder.parent]
        for place in places:
            found = find_child(place, name)
            if found is not None and found.is_file():
                return found
        return None

    def _video_folders(self, kind: str) -> list[Path]:
        """Frame folders of one split (``kind`` is ``train`` or ``test``), natural order."""
        if self.layout == "official":
            top = find_child(self.folder, "Train" if kind == "train" else "Test")
            if top is None:
                return []
            pattern = re.compile(r"(Train|Test)\d+$", re.IGNORECASE)
            return [d for d in subdirs(top) if pattern.match(d.name)]
        top = find_child(self.folder, "training" if kind == "train" else "testing")
        if top is None:
            return []
        frames = find_child(top, "frames")
        base = frames if frames is not None and frames.is_dir() else top
        return [d for d in subdirs(base) if not d.name.lower().endswith("_gt")]

    @staticmethod
    def _number(folder: Path) -> int | None:
        digits = re.findall(r"\d+", folder.name)
        return int(digits[-1]) if digits else None

    def _video_id(self, kind: str, folder: Path) -> str:
        number = self._number(folder)
        prefix = "Train" if kind == "train" else "Test"
        return f"{prefix}{number:03d}" if number is not None else folder.name

    # -- ground truth -------------------------------------------------------------------------------------------
    def _sources(self) -> dict[str, dict[int, GroundTruth]]:
        """Every ground-truth source found: ``{kind: {video number: GroundTruth}}``."""
        sources: dict[str, dict[int, GroundTruth]] = {}
        if self._mat_file is not None:
            cell = load_mat_variable(self._mat_file, "gt", max_bytes=RANGES_MAT_BYTES)
            videos = ranges_from_mat_cell(cell, self._mat_file)
            self._gt_counts["mat"] = len(videos)
            sources["mat"] = {i + 1: FrameRanges(r, f"{self._mat_file.name} (video {i + 1})", kind=self._mat_file.name)
                              for i, r in enumerate(videos)}
        if self._m_file is not None:
            text = read_text_file(self._m_file, "UCSD ground truth (.m)", errors="replace")
            videos = parse_ucsd_m(text, str(self._m_file))
            self._gt_counts["m"] = len(videos)
            sources["m"] = {i + 1: FrameRanges(r, f"{self._m_file.name} (video {i + 1})", kind=self._m_file.name)
                            for i, r in enumerate(videos)}
        masks: dict[int, GroundTruth] = {}
        for folder in self._mask_folders():
            number = self._number(folder)
            if number is not None and list_frame_files(folder):
                masks[number] = MaskFolder(folder, kind="TestNNN_gt masks")
        if masks:
            sources["masks"] = masks
        return sources

    def _mask_folders(self) -> list[Path]:
        if self.layout == "official":
            top = find_child(self.folder, "Test")
        else:
            top = find_child(self.folder, "testing")
        if top is None:
            return []
        candidates = subdirs(top) + (subdirs(top / "frames") if (top / "frames").is_dir() else [])
        return [d for d in candidates if d.name.lower().endswith("_gt")]

    def _primary_order(self) -> tuple[str, ...]:
        if self.ground_truth != "auto":
            return (self.ground_truth,)
        return ("mat", "m", "masks") if self.layout == "frames" else ("m", "masks", "mat")

    # -- scan ---------------------------------------------------------------------------------------------------
    def _scan(self) -> list[VideoEntry]:
        entries = [VideoEntry(id=self._video_id("train", folder), split="train", path=folder, label=0,
                              class_name="normal", ground_truth=AllNormal())
                   for folder in self._video_folders("train")]
        tests = self._video_folders("test")
        if not entries and not tests:
            raise DatasetError(f"{self.name}: no video folders in {self.folder} (expected "
                               + ("Train/Train001/ and Test/Test001/" if self.layout == "official" else
                                  "training/frames/01/ and testing/frames/01/") + ")")
        if tests:
            entries += self._test_entries(tests)
        return entries

    def _test_entries(self, folders: list[Path]) -> list[VideoEntry]:
        sources = self._sources()
        order = self._primary_order()
        if self.ground_truth != "auto" and self.ground_truth not in sources:
            wanted = {"mat": f"ped{self.number}.mat", "m": f"UCSDped{self.number}.m", "masks": "TestNNN_gt/ masks"}
            raise DatasetError(f"{self.name}: ground_truth={self.ground_truth!r} but no {wanted[self.ground_truth]} "
                               f"under {self.root}")
        entries = []
        for position, folder in enumerate(folders, 1):
            number = self._number(folder) or position
            available = [kind for kind in order if number in sources.get(kind, {})]
            if self.ground_truth == "auto":
                available += [k for k in sources if k not in available and number in sources[k]]
            if not available:
                raise DatasetError(
                    f"{self.name}: no ground truth for test video {folder.name} ({folder}): expected "
                    f"ped{self.number}.mat, UCSDped{self.number}.m or {folder.name}_gt/ masks under {self.root}")
            primary = sources[available[0]][number]
            others = [sources[k][number] for k in sources if k != available[0] and number in sources[k]]
            entries.append(VideoEntry(id=self._video_id("test", folder), split="test", path=folder,
                                      ground_truth=primary, alternatives=others))
        return entries

    def _extra_problems(self, records: list[VideoRecord]) -> list[str]:
        tests = len(self.ids("test")) if "test" in self.splits() else 0
        problems = []
        for kind, count in self._gt_counts.items():
            name = self._mat_file.name if kind == "mat" else self._m_file.name
            if count != tests:
                problems.append(f"{self.name}: {name} has ground truth for {count} test videos, "
                                f"{tests} test videos found")
        return problems


class UCSDPed1(UCSDPed):
    """UCSD Ped1: 34 training and 36 test videos of 200 frames (``ucsd_ped1``)."""

    name = "ucsd_ped1"
    number = 1


class UCSDPed2(UCSDPed):
    """UCSD Ped2: 16 training and 12 test videos (``ucsd_ped2``)."""

    name = "ucsd_ped2"
    number = 2
