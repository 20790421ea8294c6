"""Benchmark datasets: layouts, ground truth and splits, behind one registry.

>>> from vadkit.datasets import get_dataset, summarize
>>> ped2 = get_dataset("ucsd_ped2", "../shared/data/ucsd_ped2")       # doctest: +SKIP
>>> [v.id for v in ped2.videos("test")][:2], ped2.check()             # doctest: +SKIP
(['Test001', 'Test002'], [])

Every dataset yields :class:`VideoRecord` objects (id, split, path, frame count, fps, video label, class, per-frame
labels). Frame labels always have exactly as many entries as the video has frames; a ground truth of another
length is a :class:`DatasetError` naming the video and both counts.

Datasets: ``ucsd_ped1``, ``ucsd_ped2``, ``avenue``, ``shanghaitech``, ``ucf_crime``, ``xd_violence``, ``lad2000``,
``folder`` (a user's own ``train/normal``, ``test/{normal,abnormal}`` videos). Splits: :mod:`vadkit.datasets.splits`.
"""

from __future__ import annotations

from pathlib import Path

from vadkit.datasets.base import (
    DatasetError,
    VideoDataset,
    VideoEntry,
    VideoRecord,
    accepted_options,
    summarize,
)
from vadkit.datasets.splits import Split, apply_split, lad2000_resplit, list_split, resplit_file
from vadkit.registry import Registry

DATASETS: Registry = Registry("dataset")


def register_dataset(name: str):
    """Class decorator: make a :class:`VideoDataset` subclass available to :func:`get_dataset` as ``name``."""
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    """The registered dataset names."""
    return DATASETS.list()


DESCRIPTIONS = {
    "ucsd_ped1": "UCSD Ped1: walkway towards the camera, 34 train / 36 test frame folders at 10 fps "
                 "(UCSDped1/Train/Train001/*.tif, or ped1/training/frames/01/)",
    "ucsd_ped2": "UCSD Ped2: walkway across the view, 16 train / 12 test frame folders at 10 fps "
                 "(UCSDped2/Train/Train001/*.tif, or ped2/training/frames/01/ + ped2.mat)",
    "avenue": "CUHK Avenue: campus avenue, 16 train / 21 test videos at 25 fps (training_videos/01.avi + "
              "ground_truth_demo/, or training/frames/01/)",
    "shanghaitech": "ShanghaiTech Campus: 13 scenes, 330 train videos / 107 test frame folders (24 fps); "
                    "protocol=weak for the 238/199 re-split",
    "ucf_crime": "UCF-Crime: 1900 untrimmed surveillance videos (30 fps), 13 crime classes; weak training labels, "
                 "frame annotations for the 290 test videos",
    "xd_violence": "XD-Violence: 4754 film and web videos with six violence classes in the file names; frame "
                   "annotations for the test videos",
    "lad2000": "LAD2000: 2000 videos in 14 category folders, frame labels in gt_*.mat, train/test split lists",
    "folder": "your own videos: train/normal/*, test/{normal,abnormal}/*, optional labels.csv "
              "(video,start,end)",
}


def describe_dataset(name: str) -> str:
    """One line on what layout ``name`` reads (for `vadkit datasets list`)."""
    return DESCRIPTIONS.get(name, "")


def get_dataset(name: str, root: str | Path, **options) -> VideoDataset:
    """Open dataset ``name`` stored under ``root``.

    Options are the keyword arguments of the dataset's class (e.g. ``ground_truth="m"`` for UCSD,
    ``protocol="weak"`` for ShanghaiTech).

    Raises:
        DatasetError: unknown name or option, missing root, or a layout that does not match.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; expected one of: {', '.join(list_datasets())}")
    cls = DATASETS.get(name)
    valid = accepted_options(cls)
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise DatasetError(f"{name}: unknown option {', '.join(map(repr, unknown))}; "
                           f"expected one of: {', '.join(valid) or '(none)'}")
    return cls(root, **options)


def _register_builtin() -> None:
    from vadkit.datasets.avenue import Avenue
    from vadkit.datasets.folder import FolderDataset
    from vadkit.datasets.lad2000 import LAD2000
    from vadkit.datasets.shanghaitech import ShanghaiTech
    from vadkit.datasets.ucf_crime import UCFCrime
    from vadkit.datasets.ucsd import UCSDPed1, UCSDPed2
    from vadkit.datasets.xd_violence import XDViolence

    for cls in (UCSDPed1, UCSDPed2, Avenue, ShanghaiTech, UCFCrime, XDViolence, LAD2000, FolderDataset):
        register_dataset(cls.name)(cls)


_register_builtin()

__all__ = [
    "DATASETS", "DatasetError", "Split", "VideoDataset", "VideoEntry", "VideoRecord", "apply_split", "get_dataset",
    "lad2000_resplit", "list_datasets", "list_split", "register_dataset", "resplit_file", "summarize",
]
