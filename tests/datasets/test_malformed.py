"""Malformed ground truth and layouts (issue 13): every bad file gives one DatasetError that names the file and says
what was expected and found; no library exception escapes, no file makes us spend memory it does not hold, no
symlink loop changes the count of videos. Each tree is built here, in tmp_path."""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
import time
import tracemalloc

import cv2
import numpy as np
import pytest
import scipy.io
from builders import matlab_cell, ranges_cell, ucsd_m_text, write_frames, write_masks, write_mp4, write_vol_label

from vadkit.datasets import DatasetError, Split, get_dataset
from vadkit.datasets.base import MAX_MESSAGE, load_npy, read_text_file
from vadkit.datasets.groundtruth import (
    load_mat_variable,
    parse_ucsd_m,
    read_range_table,
    read_ucf_annotation,
    read_vol_label,
    read_xd_annotations,
)
from vadkit.datasets.splits import match_list, read_list


def raises_naming(path, call, match: str | None = None) -> str:
    """``call()`` raises a DatasetError whose message names ``path`` (and matches ``match``); returns the message."""
    with pytest.raises(DatasetError) as info:
        call()
    message = str(info.value)
    assert path.name in message, message
    if match:
        assert match in message, message
    assert len(message) <= MAX_MESSAGE + 60
    return message


# ---------------------------------------------------------------------------------------------------------------
# UCSD .m: inf / 1e400, huge ranges and indices, quadratic scans
# ---------------------------------------------------------------------------------------------------------------
def ucsd_tree(root, m_text: str, frames=(6, 8)):
    base = root / "UCSDped2"
    write_frames(base / "Train" / "Train001", 3, ext=".tif", start=1)
    for k, n in enumerate(frames, 1):
        write_frames(base / "Test" / f"Test{k:03d}", n, ext=".tif", start=1)
    m_file = base / "Test" / "UCSDped2.m"
    m_file.write_text(m_text)
    return base, m_file


@pytest.mark.parametrize("body", ["inf", "1e400", "1:inf", "-inf:3", "nan", "1:1e400", "1.5", "9" * 5000])
def test_ucsd_m_inf_and_huge_numbers(tmp_path, body):
    base, m_file = ucsd_tree(tmp_path, ucsd_m_text(2, [body, "1:8"]))
    raises_naming(m_file, lambda: get_dataset("ucsd_ped2", base), "video 1")


def test_ucsd_m_huge_step_range_is_refused_without_allocating(tmp_path):
    text = "TestVideoFile{end+1}.gt_frame = [1:2:10000000];\n"
    base, m_file = ucsd_tree(tmp_path, text)
    tracemalloc.start()
    try:
        raises_naming(m_file, lambda: get_dataset("ucsd_ped2", base), "lists 5000000 frames one by one")
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_ucsd_m_87_bytes_claiming_ten_million_frames(tmp_path):
    """The issue's 87-byte UCSDped2.m ([1:1:10000000]) took 2.1 GB: now it is one range, refused per video."""
    text = "TestVideoFile{end+1}.gt_frame = [1:1:10000000];\nTestVideoFile{end+1}.gt_frame = [1:8];\n"
    assert len(text) < 90
    base, m_file = ucsd_tree(tmp_path, text)
    tracemalloc.start()
    try:
        ped2 = get_dataset("ucsd_ped2", base, ground_truth="m")
        raises_naming(m_file, lambda: ped2.video("Test001"), "up to 10000000")
        assert any(m_file.name in problem for problem in ped2.check())
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_ucsd_m_huge_video_index(tmp_path):
    """TestVideoFile{10000000} built an 89 MB error message; now it is refused in a short one."""
    base, m_file = ucsd_tree(tmp_path, "TestVideoFile{10000000}.gt_frame = [1:2];\n")
    raises_naming(m_file, lambda: get_dataset("ucsd_ped2", base), "video index out of range")
    # a gap below the limit lists the first missing videos only
    message = raises_naming(m_file, lambda: parse_ucsd_m("TestVideoFile{99999}.gt_frame = [1:2];", str(m_file)))
    assert "99998 in all" in message


def test_ucsd_m_scans_are_linear(tmp_path):
    """Long runs of spaces inside brackets, and many unclosed brackets, took time quadratic in the file size."""
    start = time.perf_counter()
    with pytest.raises(DatasetError):
        parse_ucsd_m("TestVideoFile{end+1}.gt_frame = [1.5;13" + " " * 300_000 + "];", "x.m")
    with pytest.raises(DatasetError):
        parse_ucsd_m("TestVideoFile{end+1}.gt_frame = [1 " * 30_000, "x.m")
    assert time.perf_counter() - start < 60  # milliseconds when linear; a quadratic scan takes hours (generous)


def test_ucsd_m_not_utf8_is_read_with_replacements(tmp_path):
    base, m_file = ucsd_tree(tmp_path, "")
    m_file.write_bytes(b"% caf\xe9\nTestVideoFile{end+1}.gt_frame = [2:4];\nTestVideoFile{end+1}.gt_frame = [1:8];\n")
    assert get_dataset("ucsd_ped2", base).video("Test001").num_anomalous == 3


# ---------------------------------------------------------------------------------------------------------------
# MATLAB .mat: cells of strings, structs, NaN, files that crashed scipy, v7.3 claims
# ---------------------------------------------------------------------------------------------------------------
def ped2_frames_tree(root, gt) -> tuple:
    base = root / "ped2"
    write_frames(base / "training" / "frames" / "01", 3)
    for k in (1, 2):
        write_frames(base / "testing" / "frames" / f"{k:02d}", 6)
    mat = root / "ped2.mat"
    scipy.io.savemat(str(mat), {"gt": gt})
    return root, mat


@pytest.mark.parametrize("gt, found", [
    (matlab_cell(["abc", "de"]), "found text 'abc'"),
    (matlab_cell([np.array([[1.0], [np.nan]]), np.array([[1], [2]])]), "NaN or infinite"),
    (matlab_cell([np.array([[1.5], [3.0]]), np.array([[1], [2]])]), "whole frame numbers"),
    (matlab_cell([np.array([[1], [2 ** 40]], dtype=np.int64), np.array([[1], [2]])]), "beyond the limit"),
    (matlab_cell([matlab_cell([np.array([[1], [2]])]), np.array([[1], [2]])]), "cell/object array"),
    ({"a": 1, "b": np.zeros(3)}, "a struct with fields"),
])
def test_mat_ranges_of_the_wrong_kind(tmp_path, gt, found):
    root, mat = ped2_frames_tree(tmp_path, gt)
    raises_naming(mat, lambda: get_dataset("ucsd_ped2", root), found)


@pytest.mark.parametrize("vol_label, found", [
    ({"a": 1, "b": np.zeros(3)}, "a struct with fields"),
    (matlab_cell(["ab", "c"]), "found text 'ab'"),
    (matlab_cell([matlab_cell([np.zeros((2, 2))]), np.zeros((2, 2))]), "cell/object array"),
    ("text", "found text"),
])
def test_vol_label_of_the_wrong_kind(tmp_path, vol_label, found):
    path = tmp_path / "1_label.mat"
    scipy.io.savemat(str(path), {"volLabel": vol_label})
    raises_naming(path, lambda: read_vol_label(path), found)


def test_vol_label_struct_through_the_avenue_layout(tmp_path):
    write_frames(tmp_path / "avenue" / "testing" / "frames" / "01", 4)
    path = tmp_path / "ground_truth_demo" / "testing_label_mask" / "1_label.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(str(path), {"volLabel": {"a": 1}})
    avenue = get_dataset("avenue", tmp_path)
    raises_naming(path, lambda: avenue.videos())
    assert any(path.name in problem for problem in avenue.check())


MAT_CRASHES = {
    # a numeric data element of type 0 or 20 inside a cell: scipy looks its dtype up in a C table without a bounds
    # check and the interpreter dies of a segmentation fault (scipy 1.17)
    "type 0": (0xE0, b"\x00" * 8),
    "type 20": (0xE0, (20).to_bytes(4, "little") + (4).to_bytes(4, "little")),
    # array flags in a small-data element claiming 1792 bytes (scipy skips that tag unread)
    "huge small element": (0x88, b"\x06\x00\x00\x07"),
}


@pytest.mark.parametrize("name", sorted(MAT_CRASHES))
def test_mat_files_that_crashed_scipy_are_refused(tmp_path, name):
    """Run in a child process: a regression would kill the interpreter (scipy segfaults), not fail an assert."""
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(str(path), {"gt": ranges_cell([[(3, 8)], [(1, 2), (5, 12)]])})
    data = bytearray(path.read_bytes())
    offset, patch = MAT_CRASHES[name]
    data[offset: offset + len(patch)] = patch
    path.write_bytes(bytes(data))
    code = ("import sys\nfrom vadkit.datasets import DatasetError\nfrom vadkit.datasets.groundtruth import "
            "load_mat_variable\ntry:\n    load_mat_variable(sys.argv[1], 'gt')\nexcept DatasetError as err:\n"
            "    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ped2.mat" in result.stdout and "malformed v5 data" in result.stdout


def test_mat_cell_claiming_billions_of_elements(tmp_path):
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(str(path), {"gt": matlab_cell([np.array([[1], [2]])])})
    data = bytearray(path.read_bytes())
    dims = data.index((1).to_bytes(4, "little") + (1).to_bytes(4, "little"), 0xA0)  # the 1 x 1 cell dims
    data[dims: dims + 8] = (50_000).to_bytes(4, "little") + (50_000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    raises_naming(path, lambda: load_mat_variable(path, "gt"), "malformed v5 data")


def write_h5(path, build):
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        build(handle)
    with open(path, "r+b") as raw:
        raw.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    return path


def test_v73_dataset_claiming_a_terabyte(tmp_path):
    path = write_h5(tmp_path / "1_label.mat",
                    lambda h: h.create_dataset("volLabel", shape=(1 << 20, 1 << 20), dtype="f8", chunks=(16, 16)))
    assert path.stat().st_size < 1 << 20
    raises_naming(path, lambda: read_vol_label(path), "more than the limit")


def test_v73_struct_and_reference_loop(tmp_path):
    import h5py

    struct_file = write_h5(tmp_path / "s.mat", lambda h: h.create_group("volLabel").create_dataset("a", data=[1]))
    raises_naming(struct_file, lambda: read_vol_label(struct_file), "MATLAB struct")

    def loop(handle):
        data = handle.create_dataset("volLabel", shape=(1, 1), dtype=h5py.ref_dtype)
        data[0, 0] = data.ref

    loop_file = write_h5(tmp_path / "loop.mat", loop)
    raises_naming(loop_file, lambda: read_vol_label(loop_file), "nested")


def test_v73_vol_label_still_reads(tmp_path):
    path = write_vol_label(tmp_path / "1_label.mat", [0, 1, 1, 0], v73=True)
    assert read_vol_label(path).tolist() == [0, 1, 1, 0]


# ---------------------------------------------------------------------------------------------------------------
# mask .npy files: truncated, text, pickled, zero bytes, object arrays, forged headers
# ---------------------------------------------------------------------------------------------------------------
def npy_bytes(array, allow_pickle=False) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


GOOD = npy_bytes(np.array([0, 1, 1, 0, 0, 1], np.uint8))
BAD_MASKS = {
    "truncated": (GOOD[:-3], "truncated"),
    "text": (b"0 1 1 0 0 1\n", "not a NumPy .npy file"),
    "pickle": (pickle.dumps([0, 1, 1, 0, 0, 1]), "a Python pickle (not loaded)"),
    "zero bytes": (b"", "empty file (0 bytes)"),
    "object array": (npy_bytes(np.array([0, 1, "a"], dtype=object), allow_pickle=True), "pickled Python objects"),
    "strings": (npy_bytes(np.array(["0", "1"])), "found dtype <U1"),
    "huge header": (GOOD.replace(b"(6,)", b"(10000000000,)"), "more than the limit"),
    "bad header": (GOOD.replace(b"'shape'", b"'shope'"), "malformed .npy header"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_shanghaitech_bad_masks(tmp_path, case):
    data, found = BAD_MASKS[case]
    base = tmp_path / "shanghaitech"
    write_frames(base / "training" / "frames" / "01_001", 3)
    write_frames(base / "testing" / "frames" / "01_0014", 6)
    mask = base / "testing" / "test_frame_mask" / "01_0014.npy"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(data)
    sh = get_dataset("shanghaitech", tmp_path)
    message = raises_naming(mask, lambda: sh.videos(), found)
    assert "01_0014" in message
    problems = sh.check()
    assert len(problems) == 1 and mask.name in problems[0]


def test_load_npy_reads_good_files_without_pickle(tmp_path):
    path = tmp_path / "a.npy"
    path.write_bytes(GOOD)
    assert load_npy(path).tolist() == [0, 1, 1, 0, 0, 1]
    raises_naming(tmp_path / "missing.npy", lambda: load_npy(tmp_path / "missing.npy"), "not found")


def test_ucf_gt_arrays_bad_file_is_a_problem_not_a_crash(tmp_path):
    write_mp4(tmp_path / "Abuse" / "Abuse028_x264.mp4", 12)
    (tmp_path / "Temporal_Anomaly_Annotation.txt").write_text("Abuse028_x264.mp4  Abuse  3  9  -1  -1\n")
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    (arrays / "Abuse028_x264__9_gt.npy").write_bytes(pickle.dumps([1, 2]))
    ucf = get_dataset("ucf_crime", tmp_path, gt_arrays=arrays)
    problems = ucf.check()
    assert len(problems) == 1 and "Abuse028_x264__9_gt.npy" in problems[0] and "pickle" in problems[0]


# ---------------------------------------------------------------------------------------------------------------
# text files: encodings, numbers, CSV fields, JSON depth
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reader, name, content", [
    (read_ucf_annotation, "ann.txt", b"Abuse028_x264.mp4  Abuse  165  240  -1  -1\n\xff\xfe bad\n"),
    (read_xd_annotations, "annotations.txt", b"v1_label_B1-0-0 2 5\n\xc3\x28\n"),
    (read_range_table, "labels.csv", b"fall,2,5\ncaf\xe9,1,2\n"),
    (read_range_table, "labels.json", b'{"caf\xe9": [[1, 2]]}'),
    (read_list, "train.txt", b"01_001\n\x80\n"),
    (Split.load, "split.json", b'{"train": ["\xff"], "test": []}'),
])
def test_not_utf8(tmp_path, reader, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    raises_naming(path, lambda: reader(path), "is not UTF-8 text")


@pytest.mark.parametrize("reader, name, content, found", [
    (read_ucf_annotation, "ann.txt", "Abuse028_x264.mp4  Abuse  165  inf  -1  -1\n", "'inf'"),
    (read_ucf_annotation, "ann.txt", "Abuse028_x264.mp4  Abuse  1e400  240  -1  -1\n", "'1e400'"),
    (read_ucf_annotation, "ann.txt", "Abuse028_x264.mp4  Abuse  165.5  240  -1  -1\n", "whole finite"),
    (read_xd_annotations, "annotations.txt", "v1_label_B1-0-0 2 1e400\n", "'1e400'"),
    (read_xd_annotations, "annotations.txt", "v1_label_B1-0-0 2 " + "9" * 5000 + "\n", "frame numbers"),
    (read_range_table, "labels.csv", "fall,2,inf\n", "'inf'"),
    (read_range_table, "labels.csv", "fall,2,20000000\n", "beyond the limit"),
    (read_range_table, "labels.json", '{"fall": [[2, 1e400]]}', "whole finite"),
    (read_range_table, "labels.json", '{"fall": [[2, Infinity]]}', "whole finite"),
    (read_range_table, "labels.json", '{"fall": [[true, 5]]}', "integers"),
    (read_range_table, "labels.json", '{"fall": [[2, ' + "9" * 5000 + "]]}", "not valid JSON"),
    (read_range_table, "labels.json", '[{"video": ["x"], "start": 1, "end": 2}]', "'video' must be a name"),
])
def test_numbers_out_of_range(tmp_path, reader, name, content, found):
    path = tmp_path / name
    path.write_text(content)
    raises_naming(path, lambda: reader(path), found)


def test_csv_field_over_the_limit(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("fall," + "1" * 140_000 + ",5\n")
    raises_naming(path, lambda: read_range_table(path), "not valid CSV")


@pytest.mark.parametrize("name, reader", [("labels.json", read_range_table), ("split.json", Split.load)])
def test_deeply_nested_json(tmp_path, name, reader):
    path = tmp_path / name
    path.write_text("[" * 100_000 + "]" * 100_000)
    raises_naming(path, lambda: reader(path), "nested too deeply")


@pytest.mark.parametrize("content, found", [
    ('{"train": "abc", "test": []}', "'train' must be a list of video ids"),
    ('{"train": [["a"]], "test": []}', "'train' must be a list of video ids"),
    ('{"train": [], "test": [], "seed": "3"}', "'seed' must be an integer"),
    ('{"train": ["a"], "test": ["a"]}', "in both train and test"),
])
def test_split_file_of_the_wrong_shape(tmp_path, content, found):
    path = tmp_path / "split.json"
    path.write_text(content)
    raises_naming(path, lambda: Split.load(path), found)


def test_text_file_size_is_bounded(tmp_path, monkeypatch):
    import vadkit.datasets.base as base

    path = tmp_path / "ann.txt"
    path.write_text("x" * 2000)
    raises_naming(path, lambda: read_text_file(path, "annotation", max_bytes=1000), "larger than the limit")
    raises_naming(tmp_path, lambda: read_text_file(tmp_path, "annotation"), "found a folder")
    assert base.MAX_TEXT_BYTES <= 1 << 30


def test_error_messages_are_cut():
    message = str(DatasetError("x" * 1_000_000 + " the end"))
    assert len(message) < MAX_MESSAGE + 60 and message.endswith("the end") and "characters cut" in message


def test_unmatched_list_lines_are_shown_short(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("a" * 100_000 + "\n")
    message = raises_naming(path, lambda: match_list(read_list(path), ["01_001"], str(path)))
    assert "1 entries match no video" in message


def test_match_list_is_fast_on_long_lists():
    ids = [f"{i:02d}_{j:04d}" for i in range(1, 41) for j in range(500)]  # 20000 ids
    lines = [f"/features/{video}_i3d.npy" for video in ids]
    start = time.perf_counter()
    assert match_list(lines, ids) == ids
    assert time.perf_counter() - start < 60  # milliseconds when linear; quadratic matching takes hours (generous)


# ---------------------------------------------------------------------------------------------------------------
# mask images whose headers claim what the file does not hold
# ---------------------------------------------------------------------------------------------------------------
def test_png_mask_claiming_a_2gb_chunk(tmp_path):
    """A 172-byte PNG whose IDAT chunk claims 2 GB made OpenCV allocate 2 GB."""
    base = tmp_path / "UCSDped2"
    write_frames(base / "Train" / "Train001", 3, ext=".tif", start=1)
    write_frames(base / "Test" / "Test001", 3, ext=".tif", start=1)
    masks = write_masks(base / "Test" / "Test001_gt", [0, 1, 0], ext=".png")
    data = bytearray((masks / "002.png").read_bytes())
    idat = data.index(b"IDAT") - 4
    data[idat: idat + 4] = (0x7F00001E).to_bytes(4, "big")
    (masks / "002.png").write_bytes(bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ped2 = get_dataset("ucsd_ped2", tmp_path, ground_truth="masks")
    raises_naming(masks / "002.png", lambda: ped2.videos(), "IDAT")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500 << 10  # KiB


@pytest.mark.parametrize("ext", [".bmp", ".png", ".tif", ".jpg"])
def test_mask_headers_claiming_huge_images(tmp_path, ext):
    from vadkit.datasets.images import header_problem

    ok, data = cv2.imencode(ext, np.zeros((8, 8), np.uint8))
    assert header_problem(data.tobytes()) is None
    data = bytearray(data.tobytes())
    if ext == ".bmp":
        data[18:26] = (60000).to_bytes(4, "little") + (60000).to_bytes(4, "little")
    elif ext == ".png":
        data[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    elif ext == ".jpg":
        sof = data.index(b"\xff\xc0")
        data[sof + 5: sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    else:
        data = bytearray(cv2.imencode(".tif", np.zeros((8, 8), np.uint8))[1].tobytes())
        ifd = int.from_bytes(data[4:8], "little")
        for i in range(int.from_bytes(data[ifd: ifd + 2], "little")):
            entry = ifd + 2 + 12 * i
            if int.from_bytes(data[entry: entry + 2], "little") in (256, 257):
                data[entry + 2: entry + 4] = (4).to_bytes(2, "little")  # LONG
                data[entry + 8: entry + 12] = (60000).to_bytes(4, "little")
    problem = header_problem(bytes(data))
    assert problem is not None and ("pixels" in problem or "BMP" in problem)


# ---------------------------------------------------------------------------------------------------------------
# directory walks: symlink loops, links up and out of the root
# ---------------------------------------------------------------------------------------------------------------
def folder_tree(root):
    write_frames(root / "train" / "normal" / "walk", 3)
    write_frames(root / "test" / "normal" / "calm", 3)
    write_mp4(root / "test" / "normal" / "quiet.mp4", 3)
    write_frames(root / "test" / "abnormal" / "fall", 3)
    write_frames(root / "test" / "abnormal" / "fighting" / "punch", 3)
    return root


def test_symlink_loop_in_normal_does_not_repeat_videos(tmp_path):
    """``test/normal/loop -> .`` gave 42 test videos instead of 2."""
    root = folder_tree(tmp_path / "mine")
    os.symlink(".", root / "test" / "normal" / "loop")
    data = get_dataset("folder", root)
    assert sorted(data.ids("test")) == ["calm", "fall", "punch", "quiet"]
    assert sorted(data.ids("train")) == ["walk"]


def test_symlink_loops_under_abnormal(tmp_path):
    """A loop under abnormal/ gave 80 phantom entries."""
    root = folder_tree(tmp_path / "mine")
    os.symlink("..", root / "test" / "abnormal" / "fighting" / "up")
    os.symlink(".", root / "test" / "abnormal" / "loop")
    os.symlink("../..", root / "test" / "abnormal" / "root")
    os.symlink("../normal", root / "test" / "abnormal" / "normal_again")
    os.symlink("fall", root / "test" / "abnormal" / "fall_again")
    os.symlink("self", root / "test" / "abnormal" / "self")  # ELOOP
    os.symlink("nowhere", root / "test" / "abnormal" / "dangling")
    data = get_dataset("folder", root)
    assert sorted(data.ids()) == ["calm", "fall", "punch", "quiet", "walk"]
    assert {r.id: r.class_name for r in data.videos("test") if r.label} == {"fall": "anomaly", "punch": "fighting"}


def test_links_out_of_the_root_are_ignored(tmp_path):
    root = folder_tree(tmp_path / "mine")
    outside = write_frames(tmp_path / "elsewhere" / "clip", 3).parent
    os.symlink(outside, root / "test" / "abnormal" / "outside")
    os.symlink("/", root / "test" / "abnormal" / "filesystem")
    assert sorted(get_dataset("folder", root).ids()) == ["calm", "fall", "punch", "quiet", "walk"]


def test_layout_folders_may_be_links(tmp_path):
    """The folders the layout names (train/, test/abnormal/) may point anywhere; links inside them are walked once."""
    store = folder_tree(tmp_path / "store")
    root = tmp_path / "mine"
    (root / "test").mkdir(parents=True)
    os.symlink(store / "train", root / "train")
    os.symlink(store / "test" / "abnormal", root / "test" / "abnormal")
    write_frames(root / "extra" / "odd", 3)
    os.symlink("../../extra/odd", store / "test" / "abnormal" / "odd")  # out of the root: ignored
    data = get_dataset("folder", root)
    assert sorted(data.ids()) == ["fall", "punch", "walk"]


def test_lad2000_frame_folder_linked_twice_is_one_video(tmp_path):
    write_frames(tmp_path / "Crash" / "v_Crash_a_1_1" / "img", 4)
    write_frames(tmp_path / "Fire" / "v_Fire_n_2_1", 3)
    os.symlink("v_Crash_a_1_1", tmp_path / "Crash" / "v_Crash_copy_1_1")
    os.symlink(".", tmp_path / "Crash" / "loop")
    os.symlink("../Crash", tmp_path / "Fire" / "crash")
    assert sorted(get_dataset("lad2000", tmp_path).ids()) == ["v_Crash_a_1_1", "v_Fire_n_2_1"]


def test_ucsd_frame_folders_linked_back_up_are_skipped(tmp_path):
    base = tmp_path / "ped2"
    write_frames(base / "training" / "frames" / "01", 3)
    write_frames(base / "testing" / "frames" / "01", 6)
    os.symlink(".", base / "training" / "frames" / "02")
    os.symlink("01", base / "testing" / "frames" / "03")
    (base / "UCSDped2.m").write_text(ucsd_m_text(2, ["2:4"]))
    assert get_dataset("ucsd_ped2", tmp_path).ids() == ["Train001", "Test001"]


# ---------------------------------------------------------------------------------------------------------------
# UCF-Crime lists naming one video twice
# ---------------------------------------------------------------------------------------------------------------
def test_ucf_train_list_naming_a_video_twice(tmp_path):
    write_mp4(tmp_path / "Abuse" / "Abuse001_x264.mp4", 4)
    write_mp4(tmp_path / "Abuse" / "Abuse028_x264.mp4", 6)
    (tmp_path / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.mp4\nAbuse001_x264.mp4\n")
    (tmp_path / "Temporal_Anomaly_Annotation.txt").write_text("Abuse028_x264.mp4  Abuse  1  3  -1  -1\n")
    assert get_dataset("ucf_crime", tmp_path).ids() == ["Abuse001_x264", "Abuse028_x264"]
    (tmp_path / "Anomaly_Train.txt").write_text("Abuse/Abuse028_x264.mp4\n")
    raises_naming(tmp_path / "Anomaly_Train.txt", lambda: get_dataset("ucf_crime", tmp_path), "both in")


def test_v73_links_and_external_storage_are_not_followed(tmp_path):
    """A v7.3 file may point at other files (external links, external raw storage, virtual datasets): a FIFO or a
    device there would hang the reader; none is opened."""
    import h5py

    other = tmp_path / "other.bin"  # a plain file here, so that a regression fails instead of hanging
    other.write_bytes(bytes(4))
    target = write_h5(tmp_path / "target.mat", lambda h: h.create_dataset("x", data=np.zeros((2, 2))))
    linked = write_h5(tmp_path / "link.mat", lambda h: h.__setitem__("volLabel", h5py.ExternalLink(str(target), "/x")))
    raises_naming(linked, lambda: read_vol_label(linked), "ExternalLink")
    raw = write_h5(tmp_path / "raw.mat", lambda h: h.create_dataset("volLabel", shape=(4,), dtype="u1",
                                                                    external=[(str(other), 0, 4)]))
    raises_naming(raw, lambda: read_vol_label(raw), "other files")


def test_link_from_normal_to_abnormal_does_not_relabel_videos(tmp_path):
    root = folder_tree(tmp_path / "mine")
    os.symlink("../abnormal", root / "test" / "normal" / "also")
    data = get_dataset("folder", root)
    assert {r.id: r.label for r in data.videos("test")} == {"calm": 0, "quiet": 0, "fall": 1, "punch": 1}


def test_v73_cell_of_many_huge_claims_is_bounded(tmp_path, monkeypatch):
    """A cell of 100 references to one chunked dataset that claims a lot: the file may make us read
    ``MAX_MAT_ARRAY_BYTES`` in all (lowered to 8 MB here), and each mask is reduced to its flag once read."""
    import h5py

    import vadkit.datasets.groundtruth as groundtruth

    monkeypatch.setattr(groundtruth, "MAX_MAT_ARRAY_BYTES", 8 << 20)

    def many(handle):
        big = handle.create_dataset("#refs#/big", shape=(1 << 11, 1 << 11), dtype="u1", chunks=(64, 64))
        data = np.empty((100, 1), dtype=h5py.ref_dtype)
        data[:, 0] = big.ref
        handle.create_dataset("volLabel", data=data)

    path = write_h5(tmp_path / "1_label.mat", many)
    assert path.stat().st_size < 1 << 20
    raises_naming(path, lambda: read_vol_label(path), "read from one file")


def test_counts_a_text_file_may_claim_are_bounded(tmp_path, monkeypatch):
    """Ranges, rows, fields and list entries are counted while a file is read (limits lowered here), so that a
    16 MB file of '1 1 1 ...' cannot become millions of Python objects."""
    import vadkit.datasets.groundtruth as groundtruth
    import vadkit.datasets.splits as splits

    monkeypatch.setattr(groundtruth, "MAX_RANGES", 10)
    monkeypatch.setattr(groundtruth, "MAX_LISTED_FRAMES", 10)
    monkeypatch.setattr(groundtruth, "MAX_FIELDS", 50)
    monkeypatch.setattr(splits, "MAX_LIST_LINES", 10)
    cases = [
        ("UCSDped2.m", "TestVideoFile{end+1}.gt_frame = [" + "1 " * 20 + "];\n",
         lambda p: parse_ucsd_m(p.read_text(), str(p)), "more than 10 ranges and frames"),
        ("ann.txt", "".join(f"v{i}.mp4 Abuse 1 2\n" for i in range(20)), read_ucf_annotation, "more than 10 events"),
        ("annotations.txt", "v 1 2\n" * 20, read_xd_annotations, "more than 10 events"),
        ("annotations.txt", "v" + " 1 2" * 40 + "\n", read_xd_annotations, "more than 50 fields"),
        ("labels.csv", "v,1,2\n" * 20, read_range_table, "more than 10 rows"),
        ("labels.csv", "v" + ",1" * 60 + "\n", read_range_table, "more than 50 fields"),
        ("train.txt", "".join(f"v{i}\n" for i in range(20)), read_list, "more than 10 entries"),
    ]
    for name, content, reader, found in cases:
        path = tmp_path / name
        path.write_text(content)
        raises_naming(path, lambda: reader(path), found)
