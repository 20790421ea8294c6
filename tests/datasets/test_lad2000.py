"""LAD2000: category folders, '_n_' normal naming, gt_*.mat frame labels, the 14-class dictionary, split lists."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from builders import write_frames, write_mp4

from vadkit.datasets import DatasetError, get_dataset
from vadkit.datasets.lad2000 import LAD2000_CLASSES, is_lad2000_normal

SEED_DICTIONARY = {"Drop": 3, "Loitering": 9, "Crash": 0, "Violence": 13, "FallIntoWater": 4, "Fire": 7,
                   "Fighting": 6, "Crowd": 1, "Destroy": 2, "Falling": 5, "Trampled": 12, "Thiefing": 11, "Panic": 10,
                   "Hurt": 8}


def save_gt(path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"gt": np.array([labels], float)})


def build(root):
    """denseflow_img/<Class>/v_<name>/img/*.jpg, one mp4, GT/GT_mat/<Class>/gt_<name>.mat, split lists."""
    frames = root / "denseflow_img"
    write_frames(frames / "Crash" / "v_Crash_a_1_1" / "img", 6)
    write_frames(frames / "Crash" / "v_Crash_n_1_2" / "img", 5)
    write_frames(frames / "Fire" / "v_Fire_a_3_1" / "img", 4)
    write_mp4(frames / "Fire" / "v_Fire_n_2_1.mp4", 7)
    save_gt(root / "GT" / "GT_mat" / "Crash" / "gt_Crash_a_1_1.mat", [0, 0, 1, 1, 1, 0])
    save_gt(root / "GT" / "GT_mat" / "Fire" / "gt_Fire_a_3_1.mat", [1, 1, 0, 0])
    save_gt(root / "GT" / "GT_mat" / "Crash" / "gt_Crash_n_1_2.mat", [0, 0, 0, 0, 0])
    # v_Fire_n_2_1 has no gt file: normal by name, so all zeros
    return root


def test_class_dictionary_is_the_seeds():
    assert {name: i for i, name in enumerate(LAD2000_CLASSES)} == SEED_DICTIONARY
    assert is_lad2000_normal("v_Crash_n_1_2") and not is_lad2000_normal("v_Crash_a_1_1")
    assert not is_lad2000_normal("n_1")


def test_layout_without_lists(tmp_path):
    lad = get_dataset("lad2000", build(tmp_path))
    assert lad.splits() == ["all"] and lad.num_classes == 14
    records = {r.id: r for r in lad.videos()}
    assert records["v_Crash_a_1_1"].frame_labels.tolist() == [0, 0, 1, 1, 1, 0] and records["v_Crash_a_1_1"].label == 1
    normal = records["v_Crash_n_1_2"]
    assert normal.label == 0 and normal.class_name == "Crash"  # the category, for normal videos too
    assert records["v_Fire_n_2_1"].num_frames == 7 and records["v_Fire_n_2_1"].num_anomalous == 0
    assert records["v_Fire_a_3_1"].path.name == "img"
    assert lad.check() == []


def test_split_lists(tmp_path):
    build(tmp_path)
    (tmp_path / "train_split.txt").write_text("v_Crash_a_1_1\nv_Fire_n_2_1\n")
    (tmp_path / "test_split.txt").write_text("v_Fire_a_3_1\nv_Crash_n_1_2\n")
    lad = get_dataset("lad2000", tmp_path)
    assert lad.ids("train") == ["v_Crash_a_1_1", "v_Fire_n_2_1"]
    assert lad.ids("test") == ["v_Crash_n_1_2", "v_Fire_a_3_1"]
    assert all(r.frame_labels is not None for r in lad.videos())  # fully supervised: frame labels in training too


def test_split_lists_sharing_a_video_are_refused(tmp_path):
    build(tmp_path)
    (tmp_path / "train_split.txt").write_text("v_Crash_a_1_1\nv_Fire_n_2_1\n")
    (tmp_path / "test_split.txt").write_text("v_Fire_a_3_1\nv_Crash_a_1_1\n")
    with pytest.raises(DatasetError, match="1 videos are in both train_split.txt and test_split.txt: v_Crash_a_1_1"):
        get_dataset("lad2000", tmp_path).videos()


def test_ground_truth_problems(tmp_path):
    build(tmp_path)
    save_gt(tmp_path / "GT" / "GT_mat" / "Fire" / "gt_Fire_a_3_1.mat", [1, 1, 0])
    lad = get_dataset("lad2000", tmp_path)
    with pytest.raises(DatasetError, match=r"all video v_Fire_a_3_1 .*gt_Fire_a_3_1.mat has 3 frames, the video has 4"):
        lad.videos()
    save_gt(tmp_path / "GT" / "GT_mat" / "Fire" / "gt_Fire_a_3_1.mat", [0, 0, 0, 0])
    save_gt(tmp_path / "GT" / "GT_mat" / "Crash" / "gt_Crash_n_1_2.mat", [0, 1, 0, 0, 0])
    problems = get_dataset("lad2000", tmp_path).check()
    assert any("v_Fire_a_3_1" in p and "marks no frame" in p for p in problems)
    assert any("v_Crash_n_1_2" in p and "video label is normal but 1 of its 5 frames" in p for p in problems)
    (tmp_path / "GT" / "GT_mat" / "Fire" / "gt_Fire_a_3_1.mat").unlink()
    problems = get_dataset("lad2000", tmp_path).check()
    assert any("v_Fire_a_3_1" in p and "no gt_*.mat" in p for p in problems)


def test_no_category_folders(tmp_path):
    (tmp_path / "videos" / "Cats").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no category folders"):
        get_dataset("lad2000", tmp_path)
