"""Ground-truth parsers: conventions pinned down on the real files of ../shared/data and on hand-made cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from builders import labels_from_ranges, matlab_cell, ranges_cell, ucsd_m_text, write_vol_label

from vadkit.datasets import DatasetError
from vadkit.datasets.base import FrameArray, FrameRanges, GroundTruthError
from vadkit.datasets.groundtruth import (
    load_mat_variable,
    parse_ucsd_m,
    ranges_from_mat_cell,
    read_gt_vector,
    read_range_table,
    read_ucf_annotation,
    read_vol_label,
    read_xd_annotations,
    snippet_array_key,
    xd_codes,
)

# ---------------------------------------------------------------------------------------------------------------
# UCSD .m / .mat ranges
# ---------------------------------------------------------------------------------------------------------------


def test_ucsd_m_ranges_are_one_based_inclusive():
    text = ucsd_m_text(2, ["61:180", "1:10, 20 : 25", "5", ""]) + "% a comment [1:2]\n"
    videos = parse_ucsd_m(text)
    assert videos == [[(60, 180)], [(0, 10), (19, 25)], [(4, 5)], []]
    assert FrameRanges(videos[0], "m").labels(180).sum() == 120  # frames 61..180 inclusive


def test_ucsd_m_explicit_index_and_step():
    text = "TestVideoFile{2}.gt_frame = [1:2:7];\nTestVideoFile{1}.gt_frame = [3:4];\n"
    videos = parse_ucsd_m(text)
    assert videos[0] == [(2, 4)]
    assert FrameRanges(videos[1], "m").labels(8).tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("body", ["x:3", "0:5", "9:3"])
def test_ucsd_m_rejects_bad_ranges(body):
    with pytest.raises(DatasetError, match="video 1"):
        parse_ucsd_m(ucsd_m_text(2, [body]))


def test_ucsd_m_without_gt_lines_is_an_error():
    with pytest.raises(DatasetError, match="no 'TestVideoFile"):
        parse_ucsd_m("x = 1;")


def test_mat_cell_ranges_roundtrip(tmp_path):
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(str(path), {"gt": ranges_cell([[(61, 180)], [(1, 5), (9, 12)], []])})
    assert ranges_from_mat_cell(load_mat_variable(path, "gt"), path) == [[(60, 180)], [(0, 5), (8, 12)], []]
    with pytest.raises(DatasetError, match="no variable 'nope'.*gt"):
        load_mat_variable(path, "nope")


def test_real_ped2_mat_and_m_agree(shared_data):
    root = shared_data / "ucsd_ped2"
    from_m = parse_ucsd_m((root / "UCSDped2.m").read_text())
    from_mat = ranges_from_mat_cell(load_mat_variable(root / "ped2.mat", "gt"), root / "ped2.mat")
    assert len(from_m) == len(from_mat) == 12
    assert from_m == from_mat
    assert from_m[0] == [(60, 180)]  # "[61:180]": 120 frames from the 61st


# ---------------------------------------------------------------------------------------------------------------
# Avenue volLabel (v5 and v7.3), LAD2000 gt vectors
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("v73", [False, True])
def test_vol_label_any_nonzero_pixel(tmp_path, v73):
    flags = [0, 1, 1, 0, 1]
    path = write_vol_label(tmp_path / "3_label.mat", flags, v73=v73)
    assert read_vol_label(path).tolist() == flags


def test_real_avenue_vol_label(shared_data):
    labels = read_vol_label(shared_data / "avenue_sample" / "ground_truth_demo" / "testing_label_mask" / "21_label.mat")
    assert labels.shape == (76,) and labels.sum() == 53


def test_gt_vector_and_broken_mat(tmp_path):
    path = tmp_path / "gt_Crash_a_1_1.mat"
    scipy.io.savemat(str(path), {"gt": np.array([[0, 0, 1, 1, 0]], float)})
    assert read_gt_vector(path).tolist() == [0, 0, 1, 1, 0]
    scipy.io.savemat(str(path), {"gt": np.zeros((3, 4))})
    with pytest.raises(DatasetError, match=r"1 x F vector.*\(3, 4\)"):
        read_gt_vector(path)
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DatasetError, match="bad.mat"):
        load_mat_variable(bad, "gt")
    scipy.io.savemat(str(path), {"gt": matlab_cell([np.zeros((2, 2))])})
    with pytest.raises(DatasetError, match="1 x F"):
        read_gt_vector(path)


# ---------------------------------------------------------------------------------------------------------------
# UCF-Crime: the start/end convention, checked against the distributed arrays
# ---------------------------------------------------------------------------------------------------------------


def test_ucf_annotation_convention_matches_distributed_arrays(shared_data):
    folder = shared_data / "gt_samples" / "ucf_crime"
    annotation = read_ucf_annotation(folder / "Temporal_Anomaly_Annotation.txt")
    assert len(annotation) == 290
    assert annotation["Abuse028_x264"] == ("Abuse", [(165, 240)])
    assert annotation["Normal_Videos_003_x264"] == ("Normal", [])
    assert sum(len(r) == 2 for _, r in annotation.values()) > 0  # some videos have two events
    compared = 0
    for array_file in sorted(folder.glob("*_gt.npy")):
        array = np.load(array_file)
        name = snippet_array_key(array_file.name)
        assert len(array) % 16 == 0
        _, ranges = annotation[name]
        ours = FrameRanges(ranges, name).labels(len(array))  # compared on the array's (cut) length
        np.testing.assert_array_equal(ours, (array != 0).astype(np.uint8), err_msg=name)
        if ranges:  # the other readings of "s e" do not match: the test can tell them apart
            start, end = ranges[0]
            assert not np.array_equal(labels_from_ranges(len(array), [(start - 1, end)]), ours)
            assert not np.array_equal(labels_from_ranges(len(array), [(start, end + 1)]), ours)
        compared += 1
    assert compared == 3


def test_ucf_annotation_two_events_and_errors(tmp_path):
    path = tmp_path / "ann.txt"
    path.write_text("A001_x264.mp4  Arson  10  20  30  35\nN_x264.mp4  Normal  -1  -1  -1  -1\n")
    assert read_ucf_annotation(path) == {"A001_x264": ("Arson", [(10, 20), (30, 35)]), "N_x264": ("Normal", [])}
    path.write_text("A001_x264.mp4  Arson  30  20  -1  -1\n")
    with pytest.raises(DatasetError, match=r"ann.txt:1.*\[30, 20\)"):
        read_ucf_annotation(path)
    path.write_text("A001_x264.mp4  Arson  30\n")
    with pytest.raises(DatasetError, match="ann.txt:1"):
        read_ucf_annotation(path)


# ---------------------------------------------------------------------------------------------------------------
# XD-Violence
# ---------------------------------------------------------------------------------------------------------------


def test_xd_codes_from_names():
    assert xd_codes("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6") == ("G", "B2", "B6")
    assert xd_codes("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6__0.npy") == ("G", "B2", "B6")
    assert xd_codes("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A.mp4") == ("A",)
    assert xd_codes("x_label_B1-0-0") == ("B1",)
    with pytest.raises(DatasetError, match="no '_label_"):
        xd_codes("just_a_name")
    with pytest.raises(DatasetError, match="unknown label codes"):
        xd_codes("x_label_B3")


def test_real_xd_arrays(shared_data):
    folder = shared_data / "gt_samples" / "xd_violence"
    files = sorted(folder.glob("*.npy"))
    assert len(files) == 2
    for file in files:
        array = np.load(file)
        codes = xd_codes(file.name)
        truth = FrameArray(array, file.name)
        assert truth.length == len(array)
        if codes == ("A",):
            assert not array.any()
        else:
            assert codes == ("G", "B2", "B6") and array.sum() == 420
            # the array is cut to whole snippets: a video 8 frames longer is refused by default, extended on request
            with pytest.raises(GroundTruthError, match=rf"has {len(array)} frames, the video has {len(array) + 8}"):
                truth.labels(len(array) + 8)
            extended = FrameArray(array, file.name, tail="extend").labels(len(array) + 8)
            assert len(extended) == len(array) + 8 and extended[-8:].tolist() == [int(array[-1] != 0)] * 8


def test_xd_annotations_file(tmp_path):
    path = tmp_path / "annotations.txt"
    path.write_text("v1_label_B1-0-0.mp4 10 20 40 50\nv2_label_G-0-0 0 5\n")
    assert read_xd_annotations(path) == {"v1_label_B1-0-0": [(10, 20), (40, 50)], "v2_label_G-0-0": [(0, 5)]}


def test_snippet_array_keys():
    assert snippet_array_key("Abuse028_x264__9_gt.npy") == "Abuse028_x264"
    assert snippet_array_key("x.y_label_A__0.npy") == "x.y_label_A"
    assert snippet_array_key("01_0014.npy") == "01_0014"


def test_real_shanghaitech_masks(shared_data):
    folder = shared_data / "gt_samples" / "shanghaitech"
    sums = {f.stem: (len(np.load(f)), int(np.load(f).sum())) for f in folder.glob("*.npy")}
    assert sums == {"01_0014": (265, 76), "05_0018": (481, 66), "12_0142": (601, 519)}


# ---------------------------------------------------------------------------------------------------------------
# frame arrays and ranges
# ---------------------------------------------------------------------------------------------------------------


def test_frame_array_strict_names_both_counts():
    truth = FrameArray(np.ones(10), "x.npy")
    assert truth.labels(10).sum() == 10
    with pytest.raises(GroundTruthError, match="x.npy has 10 frames, the video has 12"):
        truth.labels(12)
    with pytest.raises(GroundTruthError, match="has 10 frames, the video has 30"):
        FrameArray(np.ones(10), "x.npy", tail="extend").labels(30)  # not a snippet cut


def test_frame_ranges_past_the_end():
    with pytest.raises(GroundTruthError, match="up to 12 .*the video has 10 frames"):
        FrameRanges([(5, 12)], "f").labels(10)
    with pytest.raises(GroundTruthError):
        FrameRanges([(5, 5)], "f")


# ---------------------------------------------------------------------------------------------------------------
# a user's label table
# ---------------------------------------------------------------------------------------------------------------


def test_range_table_csv_and_json(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("video,start,end\nfight.mp4,3,7\nfight.mp4,10,12\ncalm,,\n")
    assert read_range_table(csv_file) == {"fight.mp4": [(3, 7), (10, 12)], "calm": []}
    csv_file.write_text("fight,3,7\n")  # no header
    assert read_range_table(csv_file) == {"fight": [(3, 7)]}
    csv_file.write_text("fight,7,3\n")
    with pytest.raises(DatasetError, match="row 1"):
        read_range_table(csv_file)
    json_file = tmp_path / "labels.json"
    json_file.write_text(json.dumps({"fight": [[3, 7]], "calm": []}))
    assert read_range_table(json_file) == {"fight": [(3, 7)], "calm": []}
    json_file.write_text(json.dumps([{"video": "fight", "start": 1, "end": 2}]))
    assert read_range_table(json_file) == {"fight": [(1, 2)]}
    json_file.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_range_table(json_file)
