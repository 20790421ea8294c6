"""UCF-Crime: Anomaly_Train.txt, the temporal annotation (two events at most), per-video arrays cut to snippets."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import labels_from_ranges, write_mp4

from vadkit.datasets import DatasetError, get_dataset, summarize

TEST_VIDEOS = {  # name: (class, frames, ranges)
    "Arson011_x264": ("Arson", 40, [(5, 12), (30, 36)]),
    "Abuse028_x264": ("Abuse", 35, [(16, 20)]),
    "Normal_Videos_003_x264": ("Normal", 20, []),
}


def build(root, annotation_name="Temporal_Anomaly_Annotation_for_Testing_Videos.txt"):
    videos = root / "UCF_Crimes" / "Videos"
    write_mp4(videos / "Abuse" / "Abuse001_x264.mp4", 18)
    write_mp4(videos / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", 17)
    for name, (cls, n, _) in TEST_VIDEOS.items():
        folder = "Testing_Normal_Videos_Anomaly" if cls == "Normal" else cls
        write_mp4(videos / folder / f"{name}.mp4", n)
    splits = root / "UCF_Crimes" / "Anomaly_Detection_splits"
    splits.mkdir(parents=True)
    (splits / "Anomaly_Train.txt").write_text(
        "Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")
    lines = []
    for name, (cls, _, ranges) in TEST_VIDEOS.items():
        pairs = [v for r in ranges for v in r] + [-1, -1] * (2 - len(ranges))
        lines.append(f"{name}.mp4  {cls}  " + "  ".join(map(str, pairs)) + "  ")
    (root / "UCF_Crimes" / annotation_name).write_text("\n".join(lines) + "\n")
    return root


def test_layout_and_labels(tmp_path):
    ucf = get_dataset("ucf_crime", build(tmp_path))
    assert ucf.splits() == ["train", "test"]
    train = {r.id: r for r in ucf.videos("train")}
    assert train["Abuse001_x264"].label == 1 and train["Abuse001_x264"].frame_labels is None  # weak
    assert train["Abuse001_x264"].class_name == "Abuse" and train["Abuse001_x264"].num_frames == 18
    assert train["Normal_Videos001_x264"].label == 0 and train["Normal_Videos001_x264"].num_anomalous == 0
    tests = {r.id: r for r in ucf.videos("test")}
    for name, (cls, n, ranges) in TEST_VIDEOS.items():
        record = tests[name]
        assert record.num_frames == n and record.fps == pytest.approx(30)
        assert record.frame_labels.tolist() == labels_from_ranges(n, ranges).tolist()
        assert record.class_name == ("normal" if cls == "Normal" else cls)
    assert tests["Arson011_x264"].num_anomalous == 7 + 6  # [5, 12) and [30, 36)
    assert ucf.class_names[-1] == "normal" and ucf.num_classes == 14 and ucf.class_names.index("Arson") == 2
    assert ucf.check() == []
    summary = summarize(ucf)
    assert summary["splits"]["train"]["anomalous_frames"] == 0 and summary["splits"]["train"]["labelled_videos"] == 1
    assert summary["splits"]["test"]["anomalous_frames"] == 17


def test_short_annotation_file_name_and_test_list(tmp_path):
    build(tmp_path, annotation_name="Temporal_Anomaly_Annotation.txt")
    (tmp_path / "UCF_Crimes" / "Anomaly_Detection_splits" / "Anomaly_Test.txt").write_text(
        "Abuse/Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4\n")
    ucf = get_dataset("ucf_crime", tmp_path)
    assert ucf.ids("test") == ["Abuse028_x264", "Normal_Videos_003_x264"]


def test_gt_arrays_cross_check(tmp_path):
    build(tmp_path)
    arrays = tmp_path / "gt"
    arrays.mkdir()
    # arrays cut to whole 16-frame snippets, as distributed: compared on their own length
    np.save(arrays / "Arson011_x264__9_gt.npy", labels_from_ranges(32, [(5, 12), (30, 36)]).astype(np.float32))
    np.save(arrays / "Abuse028_x264__9_gt.npy", labels_from_ranges(32, [(16, 21)]).astype(np.float32))  # one off
    ucf = get_dataset("ucf_crime", tmp_path, gt_arrays=arrays)
    problems = ucf.check()
    assert problems == ["ucf_crime: test video Abuse028_x264: Temporal_Anomaly_Annotation_for_Testing_Videos.txt "
                        "(Abuse028_x264) and Abuse028_x264__9_gt.npy disagree on 1 of 32 frames (first at frame 20, "
                        "0-based)"]


def test_event_past_the_end_and_missing_video(tmp_path):
    build(tmp_path)
    annotation = tmp_path / "UCF_Crimes" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    annotation.write_text(annotation.read_text().replace("16  20", "16  50"))
    ucf = get_dataset("ucf_crime", tmp_path)
    with pytest.raises(DatasetError, match=r"test video Abuse028_x264 .*up to 50 .*the video has 35 frames"):
        ucf.videos("test")
    shutil.rmtree(tmp_path / "UCF_Crimes" / "Videos" / "Arson")
    with pytest.raises(DatasetError, match=r"test video Arson011_x264.mp4 .* not found"):
        get_dataset("ucf_crime", tmp_path)
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="neither Anomaly_Train.txt nor"):
        get_dataset("ucf_crime", tmp_path / "x")


def test_real_annotation_as_dataset_file(tmp_path, shared_data):
    """The real annotation file drives a dataset whose three videos have the lengths of the distributed arrays."""
    folder = shared_data / "gt_samples" / "ucf_crime"
    names = ["Abuse028_x264", "Arrest001_x264", "Normal_Videos_003_x264"]
    lines = [line for line in (folder / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
             if line.split()[0][:-4] in names]
    (tmp_path / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(lines) + "\n")
    for name in names:
        array = np.load(folder / f"{name}__9_gt.npy")
        (tmp_path / "videos").mkdir(exist_ok=True)
        write_mp4(tmp_path / "videos" / f"{name}.mp4", len(array))
    ucf = get_dataset("ucf_crime", tmp_path, gt_arrays=folder)
    assert ucf.check() == []
    assert {r.id: r.num_anomalous for r in ucf.videos("test")} == {"Abuse028_x264": 75, "Arrest001_x264": 300,
                                                                  "Normal_Videos_003_x264": 0}
    assert any("agree frame for frame" in note for note in ucf.notes())
