"""CUHK Avenue: the official archives (with and without the 'Avenue Dataset/' level), the frames layout, the real
sample, and errors on mismatched ground truth and corrupt videos."""

from __future__ import annotations

import pytest
import scipy.io
from builders import ranges_cell, write_avi, write_frames, write_vol_label

from vadkit.datasets import DatasetError, get_dataset, summarize

TEST_FLAGS = {1: [0, 1, 1, 0, 0, 0], 2: [1, 1, 0, 0, 1]}


def build_official(root, level=True, v73=False, train=2):
    videos = root / "Avenue Dataset" if level else root
    for k in range(1, train + 1):
        write_avi(videos / "training_videos" / f"{k:02d}.avi", 4)
    for k, flags in TEST_FLAGS.items():
        write_avi(videos / "testing_videos" / f"{k:02d}.avi", len(flags))
        write_vol_label(root / "ground_truth_demo" / "testing_label_mask" / f"{k}_label.mat", flags, v73=v73)
    (videos / "training_vol").mkdir()  # present in the release, ignored
    return root


@pytest.mark.parametrize("level,v73", [(True, False), (False, True)])
def test_official_layout(tmp_path, level, v73):
    avenue = get_dataset("avenue", build_official(tmp_path, level=level, v73=v73))
    assert avenue.layout == "official"
    assert [r.id for r in avenue.videos()] == ["Train01", "Train02", "Test01", "Test02"]
    train = avenue.videos("train")
    assert [r.num_frames for r in train] == [4, 4] and all(r.label == 0 and r.num_anomalous == 0 for r in train)
    tests = avenue.videos("test")
    assert [r.frame_labels.tolist() for r in tests] == [TEST_FLAGS[1], TEST_FLAGS[2]]
    assert all(r.fps == 25 and r.label == 1 and r.path.suffix == ".avi" for r in tests)
    assert avenue.check() == []
    assert tests[1].open(size=(8, 8), gray=True).read().shape == (5, 8, 8)


def test_frames_layout_with_avenue_mat_and_masks(tmp_path):
    base = tmp_path / "avenue"
    write_frames(base / "training" / "frames" / "01", 3, digits=4)
    for k, flags in TEST_FLAGS.items():
        write_frames(base / "testing" / "frames" / f"{k:02d}", len(flags), digits=4)
        write_vol_label(base / "ground_truth_demo" / "testing_label_mask" / f"{k}_label.mat", flags)
    scipy.io.savemat(str(base / "avenue.mat"), {"gt": ranges_cell([[(2, 3)], [(1, 2), (5, 5)]])})
    avenue = get_dataset("avenue", tmp_path)
    assert avenue.layout == "frames"
    assert [r.frame_labels.tolist() for r in avenue.videos("test")] == [TEST_FLAGS[1], TEST_FLAGS[2]]
    assert avenue.check() == []
    assert avenue.notes() == ["ground truth: avenue.mat and testing_label_mask volLabel agree frame for frame on all "
                              "11 frames of 2 videos"]


def test_mask_count_mismatch_names_video_and_counts(tmp_path):
    build_official(tmp_path)
    write_vol_label(tmp_path / "ground_truth_demo" / "testing_label_mask" / "2_label.mat", [0, 1, 1])
    avenue = get_dataset("avenue", tmp_path)
    with pytest.raises(DatasetError, match=r"test video Test02 .*02\.avi.*2_label\.mat volLabel has 3 frames, "
                                           r"the video has 5"):
        avenue.videos()
    problems = avenue.check()
    assert len(problems) == 1 and "Test02" in problems[0] and "has 3 frames, the video has 5" in problems[0]


def test_corrupt_video(tmp_path):
    build_official(tmp_path)
    broken = tmp_path / "Avenue Dataset" / "testing_videos" / "01.avi"
    broken.write_bytes(b"\x00garbage, not an avi\x00" * 64)
    avenue = get_dataset("avenue", tmp_path)  # the scan does not open videos
    with pytest.raises(DatasetError, match=r"avenue: test video Test01 .*01\.avi.*cannot read video"):
        avenue.videos("test")
    assert len(avenue.videos("train")) == 2
    problems = avenue.check()
    assert len(problems) == 1 and "Test01" in problems[0]


def test_missing_ground_truth_and_folders(tmp_path):
    build_official(tmp_path)
    (tmp_path / "ground_truth_demo" / "testing_label_mask" / "2_label.mat").unlink()
    with pytest.raises(DatasetError, match=r"no ground truth for test video 02\.avi .*2_label\.mat"):
        get_dataset("avenue", tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DatasetError, match=r"avenue: no training_videos/ or testing_videos/ folder under .*elsewhere"):
        get_dataset("avenue", tmp_path / "elsewhere")
    only_videos = tmp_path / "nogt"
    write_avi(only_videos / "testing_videos" / "01.avi", 3)
    with pytest.raises(DatasetError, match="no ground truth for the test videos .*testing_label_mask/N_label.mat"):
        get_dataset("avenue", only_videos)


def test_real_avenue_sample(shared_data):
    avenue = get_dataset("avenue", shared_data / "avenue_sample")
    summary = summarize(avenue)
    assert list(summary["splits"]) == ["test"]
    assert summary["splits"]["test"] == {"videos": 1, "frames": 76, "abnormal_videos": 1, "labelled_videos": 1,
                                         "anomalous_frames": 53}
    record = avenue.video("Test21")
    assert record.num_frames == 76 and record.fps == 25 and record.num_anomalous == 53
    assert avenue.check() == []
