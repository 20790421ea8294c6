"""ShanghaiTech: the official one-class layout, the weakly supervised re-split from list files, and the real
test_frame_mask samples."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import write_avi, write_frames

from vadkit.datasets import DatasetError, get_dataset

MASKS = {"01_0014": [0, 0, 1, 1, 0], "01_0015": [0, 0, 0, 0], "02_0161": [1, 1, 1, 0, 0, 0]}


def build(root, training="videos"):
    base = root / "shanghaitech"
    for name, n in (("01_001", 3), ("01_002", 4), ("02_001", 5)):
        if training == "videos":
            write_avi(base / "training" / "videos" / f"{name}.avi", n, fps=24)
        else:
            write_frames(base / "training" / "frames" / name, n)
    for name, flags in MASKS.items():
        write_frames(base / "testing" / "frames" / name, len(flags))
        (base / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(base / "testing" / "test_frame_mask" / f"{name}.npy", np.array(flags, np.uint8))
    return base


@pytest.mark.parametrize("training", ["videos", "frames"])
def test_one_class_layout(tmp_path, training):
    build(tmp_path, training)
    sh = get_dataset("shanghaitech", tmp_path)
    assert sh.ids("train") == ["01_001", "01_002", "02_001"]
    assert [r.num_frames for r in sh.videos("train")] == [3, 4, 5]
    assert all(r.label == 0 and r.num_anomalous == 0 for r in sh.videos("train"))
    tests = {r.id: r for r in sh.videos("test")}
    assert {k: r.frame_labels.tolist() for k, r in tests.items()} == MASKS
    assert [tests[k].label for k in MASKS] == [1, 0, 1]  # from the masks: 01_0015 has no anomalous frame
    assert tests["01_0015"].class_name == "normal" and tests["01_0014"].class_name == "anomaly"
    assert sh.check() == []


def test_weak_resplit_from_lists(tmp_path):
    build(tmp_path)
    # Zhong et al. lists name feature files; a test-origin abnormal video and a training video go to training
    (tmp_path / "SH_Train_new.txt").write_text("/features/01_0014_i3d.npy\n/features/01_001_i3d.npy\n")
    (tmp_path / "SH_Test_NEW.txt").write_text("01_0015\n02_0161\n01_002\n")
    sh = get_dataset("shanghaitech", tmp_path, protocol="weak")
    train = {r.id: r for r in sh.videos("train")}
    test = {r.id: r for r in sh.videos("test")}
    assert set(train) == {"01_0014", "01_001"} and set(test) == {"01_0015", "02_0161", "01_002"}
    assert train["01_0014"].label == 1 and train["01_0014"].frame_labels.tolist() == MASKS["01_0014"]
    assert train["01_001"].label == 0 and train["01_001"].num_anomalous == 0
    assert test["01_002"].label == 0 and test["01_002"].frame_labels.tolist() == [0, 0, 0, 0]
    assert "02_001" not in sh.ids()  # in neither list
    assert sh.check() == []


def test_weak_split_errors(tmp_path):
    build(tmp_path)
    with pytest.raises(DatasetError, match="protocol='weak' needs the split lists"):
        get_dataset("shanghaitech", tmp_path, protocol="weak")
    (tmp_path / "train.txt").write_text("01_0014\n09_9999\n")
    (tmp_path / "test.txt").write_text("01_0015\n")
    with pytest.raises(DatasetError, match=r"train.txt: 1 entries match no video.*09_9999"):
        get_dataset("shanghaitech", tmp_path, protocol="weak", train_list=tmp_path / "train.txt",
                    test_list=tmp_path / "test.txt")
    (tmp_path / "train.txt").write_text("01_0014\n01_0015\n")
    with pytest.raises(DatasetError, match="in both"):
        get_dataset("shanghaitech", tmp_path, protocol="weak", train_list=tmp_path / "train.txt",
                    test_list=tmp_path / "test.txt")


def test_mask_length_mismatch_and_missing_mask(tmp_path):
    base = build(tmp_path)
    np.save(base / "testing" / "test_frame_mask" / "01_0015.npy", np.zeros(7, np.uint8))
    sh = get_dataset("shanghaitech", tmp_path)
    with pytest.raises(DatasetError, match=r"test video 01_0015 .*test_frame_mask/01_0015.npy has 7 frames, "
                                           r"the video has 4"):
        sh.videos("test")
    (base / "testing" / "test_frame_mask" / "01_0015.npy").unlink()
    with pytest.raises(DatasetError, match=r"no frame mask for test video 01_0015: expected .*01_0015.npy"):
        get_dataset("shanghaitech", tmp_path)
    shutil.rmtree(base / "testing" / "test_frame_mask")
    with pytest.raises(DatasetError, match="no testing/test_frame_mask/ folder"):
        get_dataset("shanghaitech", tmp_path)


def test_real_masks_in_a_built_layout(tmp_path, shared_data):
    """The real 01_0014 mask (265 frames, 76 anomalous) read through the dataset, beside 265 written frames."""
    mask = shared_data / "gt_samples" / "shanghaitech" / "01_0014.npy"
    base = tmp_path / "testing"
    write_frames(base / "frames" / "01_0014", len(np.load(mask)), size=2)
    (base / "test_frame_mask").mkdir()
    shutil.copy(mask, base / "test_frame_mask" / "01_0014.npy")
    record = get_dataset("shanghaitech", tmp_path).video("01_0014")
    assert (record.num_frames, record.num_anomalous, record.label) == (265, 76, 1)
