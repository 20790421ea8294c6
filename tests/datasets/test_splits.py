"""Seeded LAD2000 re-splits of Ped2 / Avenue, split files, list-file splits and split views."""

from __future__ import annotations

import json

import pytest
import scipy.io
from builders import ranges_cell, write_frames

from vadkit.datasets import DatasetError, get_dataset
from vadkit.datasets.splits import (
    Split,
    apply_split,
    lad2000_resplit,
    list_split,
    match_list,
    resplit_file,
)


def build_frames_dataset(root, name, n_train, n_test):
    """A frames-layout dataset (ped2 or avenue) with 2-frame videos; test video k anomalous on its frame 2."""
    for k in range(1, n_train + 1):
        write_frames(root / "training" / "frames" / f"{k:02d}", 2, size=2)
    for k in range(1, n_test + 1):
        write_frames(root / "testing" / "frames" / f"{k:02d}", 2, size=2)
    scipy.io.savemat(str(root / f"{name}.mat"), {"gt": ranges_cell([[(2, 2)]] * n_test)})
    return root


@pytest.fixture(scope="module")
def ped2(tmp_path_factory):
    return get_dataset("ucsd_ped2", build_frames_dataset(tmp_path_factory.mktemp("ped2"), "ped2", 16, 12))


def test_ped2_resplit_counts_and_determinism(ped2):
    split = lad2000_resplit(ped2, seed=7)
    abnormal = set(ped2.ids("test"))
    assert sum(v in abnormal for v in split.train) == 6 and sum(v not in abnormal for v in split.train) == 8
    assert sum(v in abnormal for v in split.test) == 6 and sum(v not in abnormal for v in split.test) == 8
    assert set(split.train) | set(split.test) == set(ped2.ids()) and not set(split.train) & set(split.test)
    assert lad2000_resplit(ped2, seed=7) == split
    assert lad2000_resplit(ped2, seed=8).train != split.train
    assert split.seed == 7 and split.dataset == "ucsd_ped2" and "random.Random(7)" in split.rule


def test_resplit_view_keeps_frame_labels(ped2):
    view = apply_split(ped2, lad2000_resplit(ped2, seed=1))
    train = view.videos("train")
    assert len(train) == 14 and sum(r.label for r in train) == 6
    assert all(r.frame_labels is not None for r in train)  # fully labelled training (AED)
    abnormal = [r for r in train if r.label == 1]
    assert all(r.frame_labels.tolist() == [0, 1] for r in abnormal)
    assert view.name == "ucsd_ped2" and view.check() == []
    assert len(view.videos("test")) == 14


def test_split_file_roundtrip_and_reuse(ped2, tmp_path):
    path = tmp_path / "splits" / "ped2_seed3.json"
    made = resplit_file(ped2, path, seed=3)
    data = json.loads(path.read_text())
    assert data["seed"] == 3 and data["dataset"] == "ucsd_ped2" and data["train"] == list(made.train)
    assert data["rule"].startswith("lad2000:") and len(data["test"]) == 14
    assert Split.load(path) == made
    assert resplit_file(ped2, path, seed=3) == made  # read back, not regenerated
    with pytest.raises(DatasetError, match="seed 3, not 'ucsd_ped2' with seed 4"):
        resplit_file(ped2, path, seed=4)


def test_avenue_resplit_counts(tmp_path):
    avenue = get_dataset("avenue", build_frames_dataset(tmp_path / "avenue", "avenue", 16, 21))
    split = lad2000_resplit(avenue, seed=0)
    abnormal = set(avenue.ids("test"))
    assert (sum(v in abnormal for v in split.train), sum(v not in abnormal for v in split.train)) == (11, 8)
    assert (sum(v in abnormal for v in split.test), sum(v not in abnormal for v in split.test)) == (10, 8)


def test_resplit_needs_complete_dataset(tmp_path):
    small = get_dataset("ucsd_ped2", build_frames_dataset(tmp_path / "p", "ped2", 3, 2))
    with pytest.raises(DatasetError, match="expected 12 test and 16 training videos .*found 2 and 3"):
        lad2000_resplit(small, seed=0)
    custom = lad2000_resplit(small, seed=0, train_abnormal=1, train_normal=2)
    assert len(custom.train) == 3 and len(custom.test) == 2
    with pytest.raises(DatasetError, match="integer"):
        lad2000_resplit(small, seed=1.5)


def test_split_validation_and_apply_errors(ped2, tmp_path):
    with pytest.raises(DatasetError, match="in both train and test"):
        Split(train=["a"], test=["a"])
    with pytest.raises(DatasetError, match="names 1 videos not found .*Test099"):
        apply_split(ped2, Split(train=["Test099"], test=["Test001"]))
    with pytest.raises(DatasetError, match="made for dataset 'avenue'"):
        apply_split(ped2, Split(train=[], test=["Test001"], dataset="avenue"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="'train' and 'test'"):
        Split.load(bad)


def test_match_list_forms():
    ids = ["01_001", "01_0014", "Abuse001_x264", "Normal_Videos001_x264", "v_Crash_a_1_1"]
    lines = ["/feat/SH_Train/01_0014_i3d.npy 1", "01_001 0", "Abuse/Abuse001_x264.mp4",
             "Normal_Videos001_x264__5.npy", "Crash_a_1_1", "01_001"]  # a trailing label column is ignored
    assert match_list(lines, ids) == ["01_0014", "01_001", "Abuse001_x264", "Normal_Videos001_x264", "v_Crash_a_1_1"]
    with pytest.raises(DatasetError, match="2 entries match no video.*'01_00'"):
        match_list(["01_00", "01_0015"], ids, "list.txt")


def test_list_split_on_a_dataset(ped2, tmp_path):
    (tmp_path / "train.txt").write_text("Train001\nTest003\n")
    (tmp_path / "test.txt").write_text("Test001\n")
    split = list_split(ped2, tmp_path / "train.txt", tmp_path / "test.txt")
    assert split.train == ("Train001", "Test003") and split.seed is None and "train.txt" in split.rule
    view = apply_split(ped2, split)
    assert view.ids() == ["Train001", "Test001", "Test003"] and view.video("Test003").split == "train"


def test_real_ped2_resplit(shared_data):
    ped2 = get_dataset("ucsd_ped2", shared_data / "ucsd_ped2")
    view = apply_split(ped2, lad2000_resplit(ped2, seed=0))
    train, test = view.videos("train"), view.videos("test")
    assert (len(train), sum(r.label for r in train), len(test), sum(r.label for r in test)) == (14, 6, 14, 6)
    assert sum(r.num_frames for r in train + test) == 2550 + 2010
    assert sum(r.num_anomalous for r in train + test) == 1648
