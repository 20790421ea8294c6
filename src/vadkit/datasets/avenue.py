"""CUHK Avenue, as the official archives unpack and in the frames layout.

Official (two archives side by side; the ``Avenue Dataset/`` level is optional)::

    Avenue Dataset/training_videos/01.avi ... 16.avi
    Avenue Dataset/testing_videos/01.avi ... 21.avi
    ground_truth_demo/testing_label_mask/1_label.mat ... 21_label.mat   (volLabel: 1 x F cell of pixel masks)

Frames layout::

    avenue/training/frames/01/0000.jpg ...  avenue/testing/frames/01/0000.jpg ...
    avenue.mat (gt: cell of 2 x K 1-based inclusive ranges) and/or ground_truth_demo/testing_label_mask/

Ids: ``Train01`` ... ``Train16``, ``Test01`` ... ``Test21``. A frame is anomalous when its ``volLabel`` mask has any
nonzero pixel. The ``training_vol`` / ``testing_vol`` folders are ignored. Training videos are normal.
"""

from __future__ import annotations

import re
from pathlib import Path

from vadkit.datasets.base import (
    AllNormal,
    DatasetError,
    FrameArray,
    FrameRanges,
    GroundTruth,
    VideoDataset,
    VideoEntry,
    find_child,
    subdirs,
)
from vadkit.datasets.groundtruth import (RANGES_MAT_BYTES, load_mat_variable, ranges_from_mat_cell,
                                         read_vol_label)
from vadkit.io import VideoReadError, is_video_file, natural_key, open_video


class Avenue(VideoDataset):
    """CUHK Avenue (``avenue``).

    Args:
        root: the folder holding ``Avenue Dataset/`` and ``ground_truth_demo/`` (or ``training_videos/``
            directly), or a frames-layout folder (``training/frames``, ``testing/frames``).
        ground_truth: ``"auto"`` (masks for the official layout, ``avenue.mat`` for the frames layout when present),
            ``"masks"`` or ``"mat"``.
    """

    name = "avenue"
    folder_fps = 25.0

    def __init__(self, root: str | Path, *, ground_truth: str = "auto") -> None:
        super().__init__(root)
        if ground_truth not in ("auto", "masks", "mat"):
            raise DatasetError(f"{self.name}: ground_truth must be 'auto', 'masks' or 'mat', got {ground_truth!r}")
        self.ground_truth = ground_truth
        self.layout, self.folder = self._find_layout()
        self.mask_folder = self._find_mask_folder()
        self.mat_file = next((f for f in (find_child(p, "avenue.mat") for p in (self.folder, self.root,
                              self.folder.parent)) if f is not None and f.is_file()), None)
        self.entries  # noqa: B018  (layout errors surface at construction)

    # -- layout -------------------------------------------------------------------------------------------------
    def _find_layout(self) -> tuple[str, Path]:
        for folder in (self.root, self.root / "Avenue Dataset", self.root / "Avenue_Dataset"):
            if find_child(folder, "training_videos") or find_child(folder, "testing_videos"):
                return "official", folder
        for folder in (self.root, self.root / "avenue", self.root / "Avenue"):
            if find_child(folder, "training") or find_child(folder, "testing"):
                return "frames", folder
        raise DatasetError(
            f"{self.name}: no training_videos/ or testing_videos/ folder under {self.root} (expected "
            f"'Avenue Dataset/testing_videos/01.avi' or the frames layout avenue/testing/frames/01/0000.jpg)")

    def _find_mask_folder(self) -> Path | None:
        places = [self.root, self.folder]
        if self.root.name.lower().startswith("avenue"):  # root = 'Avenue Dataset/', the masks archive beside it
            places.append(self.root.parent)
        for base in places:
            for parts in (("ground_truth_demo", "testing_label_mask"), ("testing_label_mask",)):
                folder = base.joinpath(*parts)
                if folder.is_dir():
                    return folder
        return None

    def _videos(self, kind: str) -> list[Path]:
        if self.layout == "official":
            top = find_child(self.folder, f"{kind}_videos")
            if top is None:
                return []
            return sorted((p for p in top.iterdir() if p.is_file() and is_video_file(p) and not p.name.startswith(".")),
                          key=lambda p: natural_key(p.name))
        top = find_child(self.folder, kind)
        if top is None:
            return []
        frames = find_child(top, "frames")
        return subdirs(frames if frames is not None and frames.is_dir() else top)

    @staticmethod
    def _number(path: Path, position: int) -> int:
        digits = re.findall(r"\d+", path.stem if path.is_file() else path.name)
        return int(digits[-1]) if digits else position

    # -- ground truth -------------------------------------------------------------------------------------------
    def _sources(self) -> dict[str, dict[int, GroundTruth]]:
        sources: dict[str, dict[int, GroundTruth]] = {}
        if self.mat_file is not None:
            cell = load_mat_variable(self.mat_file, "gt", max_bytes=RANGES_MAT_BYTES)
            videos = ranges_from_mat_cell(cell, self.mat_file)
            sources["mat"] = {i + 1: FrameRanges(r, f"avenue.mat (video {i + 1})", kind="avenue.mat")
                              for i, r in enumerate(videos)}
        if self.mask_folder is not None:
            masks = {}
            for file in self.mask_folder.glob("*_label.mat"):
                match = re.match(r"(\d+)_label\.mat$", file.name)
                if match:
                    number = int(match.group(1))
                    masks[number] = FrameArray(lambda f=file, n=number: read_vol_label(f, *self._video_shape(n)),
                                               f"{file.name} volLabel", kind="testing_label_mask volLabel")
            sources["masks"] = masks
        return sources

    def _video_shape(self, number: int) -> tuple[int | None, tuple[int, int] | None]:
        """Frames and (width, height) of test video ``number``: what its mask file may hold (``None``: unknown)."""
        for position, path in enumerate(self._videos("testing"), 1):
            if self._number(path, position) == number:
                try:
                    with open_video(path) as video:
                        return video.num_frames, (video.width, video.height)
                except (VideoReadError, OSError):
                    return None, None  # the video's own error is reported where it is read
        return None, None

    def _scan(self) -> list[VideoEntry]:
        train = self._videos("training")
        test = self._videos("testing")
        if not train and not test:
            raise DatasetError(f"{self.name}: no videos under {self.folder} (expected "
                               + ("training_videos/01.avi, testing_videos/01.avi" if self.layout == "official"
                                  else "training/frames/01/, testing/frames/01/") + ")")
        entries = [VideoEntry(id=f"Train{self._number(p, i):02d}", split="train", path=p, label=0, class_name="normal",
                              ground_truth=AllNormal(), fps=None if p.is_file() else self.folder_fps)
                   for i, p in enumerate(train, 1)]
        if not test:
            return entries
        sources = self._sources()
        if not sources:
            raise DatasetError(f"{self.name}: no ground truth for the test videos under {self.root} (expected "
                               f"ground_truth_demo/testing_label_mask/N_label.mat or avenue.mat)")
        if self.ground_truth != "auto" and self.ground_truth not in sources:
            wanted = "testing_label_mask/" if self.ground_truth == "masks" else "avenue.mat"
            raise DatasetError(f"{self.name}: ground_truth={self.ground_truth!r} but no {wanted} under {self.root}")
        order = [self.ground_truth] if self.ground_truth != "auto" else (
            ["masks", "mat"] if self.layout == "official" else ["mat", "masks"])
        order += [k for k in sources if k not in order]
        for position, path in enumerate(test, 1):
            number = self._number(path, position)
            available = [k for k in order if number in sources.get(k, {})]
            if not available or (self.ground_truth != "auto" and available[0] != self.ground_truth):
                mask = f"{self.mask_folder or 'ground_truth_demo/testing_label_mask'}/{number}_label.mat"
                in_mat = (f"video {number} in {self.mat_file} (which has {len(sources['mat'])})"
                          if "mat" in sources else f"video {number} in avenue.mat")
                expected = {"masks": mask, "mat": in_mat}.get(self.ground_truth, f"{mask} or {in_mat}")
                raise DatasetError(f"{self.name}: no ground truth for test video {path.name} ({path}): "
                                   f"expected {expected}")
            primary = sources[available[0]][number]
            entries.append(VideoEntry(id=f"Test{number:02d}", split="test", path=path, ground_truth=primary,
                                      alternatives=[sources[k][number] for k in available[1:]],
                                      fps=None if path.is_file() else self.folder_fps))
        return entries
