"""XD-Violence: class codes in names, annotations.txt, per-video arrays cut to snippets, the real arrays."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import labels_from_ranges, write_mp4

from vadkit.datasets import DatasetError, get_dataset
from vadkit.datasets.xd_violence import xd_class_names

FIGHT = "Fight.Club.1999__#00-01-00_00-01-10_label_B1-0-0"
MULTI = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6"
CALM = "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"
TRAIN_FIGHT = "Rush.Hour.1998__#00-10-00_00-10-30_label_B1-B2-0"


def build(root, annotations=True):
    write_mp4(root / "Train" / f"{TRAIN_FIGHT}.mp4", 20, fps=24)
    write_mp4(root / "Train" / f"{CALM.replace('2001', '2002')}.mp4", 18, fps=24)
    write_mp4(root / "TestClips" / "Videos" / f"{FIGHT}.mp4", 40, fps=24)
    write_mp4(root / "TestClips" / "Videos" / f"{MULTI}.mp4", 37, fps=24)
    write_mp4(root / "TestClips" / "Videos" / f"{CALM}.mp4", 16, fps=24)
    if annotations:
        (root / "annotations.txt").write_text(f"{FIGHT}.mp4 3 10\n{MULTI} 0 4 20 33\n")
    return root


def test_layout_classes_and_annotations(tmp_path):
    xd = get_dataset("xd_violence", build(tmp_path))
    assert xd.splits() == ["train", "test"]
    train = {r.id: r for r in xd.videos("train")}
    assert train[TRAIN_FIGHT].class_name == "B1-B2" and train[TRAIN_FIGHT].frame_labels is None
    tests = {r.id: r for r in xd.videos("test")}
    assert tests[FIGHT].frame_labels.tolist() == labels_from_ranges(40, [(3, 10)]).tolist()
    assert tests[MULTI].frame_labels.tolist() == labels_from_ranges(37, [(0, 4), (20, 33)]).tolist()
    assert tests[CALM].label == 0 and tests[CALM].class_name == "normal" and tests[CALM].num_anomalous == 0
    assert tests[MULTI].class_name == "G-B2-B6"
    assert xd_class_names(tests[MULTI].class_name) == ["explosion", "shooting", "car accident"]
    assert xd.class_names == ("normal", "B1", "B2", "B4", "B5", "B6", "G")
    assert all(r.fps == pytest.approx(24) for r in tests.values())
    assert xd.check() == []


def test_gt_arrays_cut_to_snippets(tmp_path):
    build(tmp_path, annotations=False)
    arrays = tmp_path / "gt"
    arrays.mkdir()
    np.save(arrays / f"{FIGHT}__0.npy", labels_from_ranges(32, [(3, 10)]).astype(np.float32))  # 40 frames -> 32
    np.save(arrays / f"{MULTI}__0.npy", labels_from_ranges(32, [(0, 4), (20, 32)]).astype(np.float32))  # 37 -> 32
    strict = get_dataset("xd_violence", tmp_path, gt_arrays=arrays)
    with pytest.raises(DatasetError, match=r"Bad.Boys.*has 32 frames, the video has 37 .*gt_tail='extend'"):
        strict.videos("test")
    assert any("Fight.Club" in p and "has 32 frames, the video has 40" in p for p in strict.check())
    extended = get_dataset("xd_violence", tmp_path, gt_arrays=arrays, gt_tail="extend")
    tests = {r.id: r for r in extended.videos("test")}
    assert tests[FIGHT].frame_labels.tolist() == labels_from_ranges(40, [(3, 10)]).tolist()
    assert tests[MULTI].frame_labels.tolist() == labels_from_ranges(37, [(0, 4), (20, 37)]).tolist()  # last value on
    assert extended.check() == []


def test_annotations_checked_against_arrays(tmp_path):
    build(tmp_path)
    arrays = tmp_path / "gt"
    arrays.mkdir()
    np.save(arrays / f"{FIGHT}__0.npy", labels_from_ranges(32, [(3, 10)]).astype(np.float32))
    np.save(arrays / f"{MULTI}__0.npy", labels_from_ranges(32, [(0, 5), (20, 32)]).astype(np.float32))
    problems = get_dataset("xd_violence", tmp_path, gt_arrays=arrays).check()
    assert len(problems) == 1 and MULTI in problems[0] and "disagree on 1 of 32 frames (first at frame 4" in problems[0]


def test_missing_annotation_and_unplaced_videos(tmp_path):
    build(tmp_path, annotations=False)
    xd = get_dataset("xd_violence", tmp_path)
    assert xd.video(FIGHT).frame_labels is None
    assert {p.split(":")[1].strip() for p in xd.check()} == {f"test video {FIGHT}", f"test video {MULTI}"}
    write_mp4(tmp_path / "misc" / f"{CALM.replace('2001', '2003')}.mp4", 4)
    with pytest.raises(DatasetError, match="cannot tell the split of 1 videos"):
        get_dataset("xd_violence", tmp_path)
    shutil.rmtree(tmp_path / "misc")
    write_mp4(tmp_path / "Train" / "untitled.mp4", 4)
    with pytest.raises(DatasetError, match="no '_label_<codes>' part"):
        get_dataset("xd_violence", tmp_path)


def test_split_lists(tmp_path):
    build(tmp_path)
    (tmp_path / "rgb.list").write_text(f"/feat/{TRAIN_FIGHT}__0.npy\n/feat/{FIGHT}__0.npy\n")
    (tmp_path / "rgb_test.list").write_text(f"/feat/{MULTI}__0.npy\n")
    xd = get_dataset("xd_violence", tmp_path, train_list=tmp_path / "rgb.list", test_list=tmp_path / "rgb_test.list")
    assert xd.ids("train") == sorted([TRAIN_FIGHT, FIGHT]) and xd.ids("test") == [MULTI]
    assert xd.video(FIGHT).frame_labels is None  # a training video here: weak


def test_real_arrays_as_ground_truth(tmp_path, shared_data):
    folder = shared_data / "gt_samples" / "xd_violence"
    for file in folder.glob("*.npy"):
        name = file.name[: -len("__0.npy")]
        write_mp4(tmp_path / "test" / f"{name}.mp4", len(np.load(file)) + 8, fps=24)  # cut arrays: 8 frames short
    xd = get_dataset("xd_violence", tmp_path, gt_arrays=folder, gt_tail="extend")
    counts = {r.class_name: (r.num_frames, r.num_anomalous) for r in xd.videos("test")}
    assert counts == {"G-B2-B6": (1080, 420), "normal": (5768, 0)}
    assert xd.check() == []
