"""UCSD Ped1 / Ped2 in both layouts, built tiny in tmp_path, and the real Ped2 acceptance numbers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from builders import ranges_cell, ucsd_m_text, write_frames, write_masks

from vadkit.datasets import DatasetError, get_dataset, summarize

TEST_FRAMES = (6, 8, 5)
M_BODIES = ["2:4", "1:8", "5"]  # 1-based inclusive
EXPECTED = [[0, 1, 1, 1, 0, 0], [1] * 8, [0, 0, 0, 0, 1]]


def build_official(root, number=2, masks_for=(1, 2, 3), mask_flags=None, with_m=True):
    """UCSDpedN/Train/Train00k/*.tif, Test/Test00k/*.tif, Test/Test00k_gt/*.bmp, Test/UCSDpedN.m."""
    base = root / f"UCSDped{number}"
    for k in (1, 2):
        write_frames(base / "Train" / f"Train{k:03d}", 4 + k, ext=".tif", start=1)
    for k, n in enumerate(TEST_FRAMES, 1):
        write_frames(base / "Test" / f"Test{k:03d}", n, ext=".tif", start=1)
        if k in masks_for:
            write_masks(base / "Test" / f"Test{k:03d}_gt", (mask_flags or EXPECTED)[k - 1])
    if with_m:
        (base / "Test" / f"UCSDped{number}.m").write_text(ucsd_m_text(number, M_BODIES))
    return base


def build_frames_layout(root, mat=True, m=True, mat_ranges=None):
    """ped2/training/frames/01/000.jpg, ped2/testing/frames/01/000.jpg, ped2.mat beside ped2/, UCSDped2.m inside."""
    base = root / "ped2"
    for k in (1, 2):
        write_frames(base / "training" / "frames" / f"{k:02d}", 4 + k)
    for k, n in enumerate(TEST_FRAMES, 1):
        write_frames(base / "testing" / "frames" / f"{k:02d}", n)
    if mat:
        ranges = mat_ranges or [[(2, 4)], [(1, 8)], [(5, 5)]]
        scipy.io.savemat(str(root / "ped2.mat"), {"gt": ranges_cell(ranges)})
    if m:
        (base / "UCSDped2.m").write_text(ucsd_m_text(2, M_BODIES))
    return base


def labels_of(dataset, split="test"):
    return [r.frame_labels.tolist() for r in dataset.videos(split)]


def test_official_layout(tmp_path):
    build_official(tmp_path)
    for root in (tmp_path, tmp_path / "UCSDped2"):  # the release folder or the one above it
        ped2 = get_dataset("ucsd_ped2", root)
        assert ped2.splits() == ["train", "test"]
        assert [r.id for r in ped2.videos()] == ["Train001", "Train002", "Test001", "Test002", "Test003"]
        train = ped2.videos("train")
        assert [r.num_frames for r in train] == [5, 6] and all(r.num_anomalous == 0 and r.label == 0 for r in train)
        tests = ped2.videos("test")
        assert [r.num_frames for r in tests] == list(TEST_FRAMES)
        assert labels_of(ped2) == EXPECTED
        assert all(r.label == 1 and r.fps == 10 and r.class_name == "anomaly" for r in tests)
        assert ped2.check() == []
        assert any("UCSDped2.m and TestNNN_gt masks agree" in note for note in ped2.notes())
    frames = tests[0].open().read()
    assert frames.shape == (6, 8, 8, 3)


def test_official_masks_disagreeing_with_m_is_a_problem(tmp_path):
    flags = [list(f) for f in EXPECTED]
    flags[1][3] = 0
    build_official(tmp_path, mask_flags=flags)
    ped2 = get_dataset("ucsd_ped2", tmp_path)
    assert labels_of(ped2) == EXPECTED  # the .m is the primary source
    problems = ped2.check()
    assert len(problems) == 1
    assert "Test002" in problems[0] and "disagree on 1 of 8 frames" in problems[0] and "frame 3" in problems[0]
    masks_first = get_dataset("ucsd_ped2", tmp_path, ground_truth="masks")
    assert labels_of(masks_first)[1] == flags[1]


def test_ped1_masks_only_for_some_videos_prefers_m(tmp_path):
    build_official(tmp_path, number=1, masks_for=(3,))
    ped1 = get_dataset("ucsd_ped1", tmp_path)
    assert labels_of(ped1) == EXPECTED
    assert ped1.check() == []
    # without the .m, the masks are used where they exist; the others have no ground truth: an error naming them
    (tmp_path / "UCSDped1" / "Test" / "UCSDped1.m").unlink()
    with pytest.raises(DatasetError, match=r"no ground truth for test video Test001 .*expected ped1.mat, UCSDped1.m "
                                           r"or Test001_gt/ masks"):
        get_dataset("ucsd_ped1", tmp_path)


def test_frames_layout_with_both_files(tmp_path):
    build_frames_layout(tmp_path)
    for root in (tmp_path, tmp_path / "ped2"):
        ped2 = get_dataset("ucsd_ped2", root)
        assert ped2.layout == "frames"
        assert [r.id for r in ped2.videos("test")] == ["Test001", "Test002", "Test003"]
        assert labels_of(ped2) == EXPECTED
        assert ped2.check() == []
        assert ped2.notes() == ["ground truth: ped2.mat and UCSDped2.m agree frame for frame on all 19 frames "
                                "of 3 videos"]
    assert get_dataset("ucsd_ped2", tmp_path, ground_truth="m").videos("test")[0].frame_labels.tolist() == EXPECTED[0]


def test_frames_layout_files_disagreeing(tmp_path):
    build_frames_layout(tmp_path, mat_ranges=[[(2, 5)], [(1, 8)], [(5, 5)]])
    ped2 = get_dataset("ucsd_ped2", tmp_path)
    problems = ped2.check()
    assert problems == ["ucsd_ped2: test video Test001: ped2.mat (video 1) and UCSDped2.m (video 1) disagree on 1 of "
                        "6 frames (first at frame 4, 0-based)"]
    assert ped2.notes() == []


def test_mismatched_ground_truth_names_video_and_counts(tmp_path):
    build_frames_layout(tmp_path, m=False, mat_ranges=[[(2, 4)], [(1, 9)], [(5, 5)]])  # video 2 has 8 frames
    ped2 = get_dataset("ucsd_ped2", tmp_path)
    with pytest.raises(DatasetError, match=r"test video Test002 .*marks frames up to 9 .*the video has 8 frames"):
        ped2.videos("test")
    problems = ped2.check()
    assert len(problems) == 1 and "Test002" in problems[0]
    # masks with fewer files than frames: both counts in the message
    build_official(tmp_path / "o", mask_flags=[[0, 1, 1], EXPECTED[1], EXPECTED[2]])
    with pytest.raises(DatasetError, match=r"Test001 .*has 3 frames, the video has 6"):
        get_dataset("ucsd_ped2", tmp_path / "o", ground_truth="masks").videos("test")


def test_ground_truth_count_mismatch_is_reported(tmp_path):
    build_frames_layout(tmp_path, m=False, mat_ranges=[[(2, 4)], [(1, 8)], [(5, 5)], [(1, 2)]])
    problems = get_dataset("ucsd_ped2", tmp_path).check()
    assert problems == ["ucsd_ped2: ped2.mat has ground truth for 4 test videos, 3 test videos found"]


def test_missing_folder_and_bad_root(tmp_path):
    with pytest.raises(DatasetError, match=r"ucsd_ped2: root .*nowhere does not exist"):
        get_dataset("ucsd_ped2", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"ucsd_ped2: no training/ or Train/ folder under .*empty \(expected"):
        get_dataset("ucsd_ped2", tmp_path / "empty")
    build_frames_layout(tmp_path / "nogt", mat=False, m=False)
    with pytest.raises(DatasetError, match="no ground truth for test video 01"):
        get_dataset("ucsd_ped2", tmp_path / "nogt")
    with pytest.raises(DatasetError, match="ground_truth must be one of"):
        get_dataset("ucsd_ped2", tmp_path / "nogt", ground_truth="xml")


def test_empty_frame_folder_is_reported(tmp_path):
    build_frames_layout(tmp_path)
    for file in (tmp_path / "ped2" / "training" / "frames" / "02").iterdir():
        file.unlink()
    ped2 = get_dataset("ucsd_ped2", tmp_path)
    with pytest.raises(DatasetError, match=r"train video Train002 .*no frames found"):
        ped2.videos()
    assert len(ped2.videos("test")) == 3  # the other split still reads
    assert any("Train002" in p for p in ped2.check())


# ---------------------------------------------------------------------------------------------------------------
# the real data (acceptance)
# ---------------------------------------------------------------------------------------------------------------


def test_real_ped2_acceptance(shared_data):
    ped2 = get_dataset("ucsd_ped2", shared_data / "ucsd_ped2")
    summary = summarize(ped2)
    assert summary["splits"]["train"]["videos"] == 16 and summary["splits"]["train"]["frames"] == 2550
    assert summary["splits"]["test"]["videos"] == 12 and summary["splits"]["test"]["frames"] == 2010
    assert summary["splits"]["test"]["anomalous_frames"] == 1648
    assert ped2.check() == []
    assert summary["notes"] == ["ground truth: ped2.mat and UCSDped2.m agree frame for frame on all 2010 frames "
                                "of 12 videos"]
    by_m = get_dataset("ucsd_ped2", shared_data / "ucsd_ped2", ground_truth="m")
    for a, b in zip(ped2.videos("test"), by_m.videos("test")):
        np.testing.assert_array_equal(a.frame_labels, b.frame_labels)
    first = ped2.video("Test001")
    assert first.num_frames == 180 and first.num_anomalous == 120
    assert first.frame_labels[59] == 0 and first.frame_labels[60] == 1  # "[61:180]" is 1-based
    rows = {row["id"]: row for row in summary["videos"]}
    assert rows["Test001"] == {"id": "Test001", "split": "test", "num_frames": 180, "num_anomalous": 120, "label": 1,
                               "class_name": "anomaly"}
