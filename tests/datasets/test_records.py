"""VideoRecord validation, the dataset registry, summaries and frame counting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from builders import write_avi, write_frames, write_mp4

from vadkit.datasets import DatasetError, VideoRecord, get_dataset, list_datasets, summarize
from vadkit.datasets.base import probe

ALL = ["avenue", "folder", "lad2000", "shanghaitech", "ucf_crime", "ucsd_ped1", "ucsd_ped2", "xd_violence"]


def test_registry_lists_every_layout():
    assert list_datasets() == ALL


def test_unknown_name_option_and_root(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'ped3'; expected one of: avenue, folder"):
        get_dataset("ped3", tmp_path)
    with pytest.raises(DatasetError, match="ucsd_ped2: unknown option 'protocol'; expected one of: ground_truth"):
        get_dataset("ucsd_ped2", tmp_path, protocol="weak")
    for name in ALL:
        with pytest.raises(DatasetError, match=f"{name}: root .* does not exist"):
            get_dataset(name, tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file, expected a folder"):
        get_dataset("avenue", tmp_path / "file.txt")


@pytest.mark.parametrize("name", ALL)
def test_empty_root_gives_one_clear_line(tmp_path, name):
    with pytest.raises(DatasetError) as info:
        get_dataset(name, tmp_path)
    message = str(info.value)
    assert "\n" not in message and name in message and str(tmp_path) in message


def test_record_validation(tmp_path):
    record = VideoRecord(id="a", split="test", path=str(tmp_path), num_frames=4, fps=10, label=1, class_name="x",
                         frame_labels=[0, 1, 1, 0])
    assert isinstance(record.path, Path) and record.frame_labels.dtype == np.uint8 and record.num_anomalous == 2
    with pytest.raises(ValueError):
        record.frame_labels[0] = 1  # read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.label = 0
    with pytest.raises(DatasetError, match=r"video a .*frame labels have shape \(3,\), the video has 4 frames"):
        VideoRecord("a", "test", tmp_path, 4, 10.0, 1, "x", np.zeros(3))
    with pytest.raises(DatasetError, match="0/1"):
        VideoRecord("a", "test", tmp_path, 2, 10.0, 1, "x", np.array([0, 2]))
    with pytest.raises(DatasetError, match="video label must be 0 or 1"):
        VideoRecord("a", "test", tmp_path, 2, 10.0, 3, "x")
    with pytest.raises(DatasetError, match="at least one frame"):
        VideoRecord("a", "test", tmp_path, 0, 10.0, 0, "x")
    assert VideoRecord("a", "train", tmp_path, 2, 10.0, 1, "x").num_anomalous is None


def test_record_open_uses_its_fps(tmp_path):
    write_frames(tmp_path / "v", 3)
    record = VideoRecord("v", "test", tmp_path / "v", 3, 7.5, 0, "normal", np.zeros(3))
    with record.open(gray=True) as source:
        assert source.fps == 7.5 and source.read().shape == (3, 8, 8)


def test_probe_counts_exactly_and_memoises(tmp_path):
    assert probe(write_avi(tmp_path / "a.avi", 9)) == (9, 25.0)
    assert probe(write_mp4(tmp_path / "b.mp4", 11, fps=30)) == (11, 30.0)
    assert probe(write_frames(tmp_path / "frames", 5)) == (5, None)
    write_avi(tmp_path / "a.avi", 4)  # rewritten: size / mtime change, counted again
    assert probe(tmp_path / "a.avi")[0] == 4


def test_summarize_shape(tmp_path):
    write_frames(tmp_path / "train" / "normal" / "a", 3)
    write_frames(tmp_path / "test" / "abnormal" / "b", 4)
    (tmp_path / "labels.csv").write_text("b,1,3\n")
    summary = summarize(get_dataset("folder", tmp_path))
    assert summary["dataset"] == "folder" and summary["root"] == str(tmp_path)
    assert summary["splits"] == {
        "train": {"videos": 1, "frames": 3, "abnormal_videos": 0, "labelled_videos": 1, "anomalous_frames": 0},
        "test": {"videos": 1, "frames": 4, "abnormal_videos": 1, "labelled_videos": 1, "anomalous_frames": 2},
    }
    assert summary["videos"][1] == {"id": "b", "split": "test", "num_frames": 4, "num_anomalous": 2, "label": 1,
                                    "class_name": "anomaly"}
    assert summary["notes"] == [] and summary["num_classes"] is None


def test_check_with_decoding(tmp_path):
    write_mp4(tmp_path / "train" / "normal" / "a.mp4", 6)
    write_frames(tmp_path / "test" / "normal" / "b", 4)
    data = get_dataset("folder", tmp_path)
    assert data.check(decode=True) == []
    (tmp_path / "test" / "normal" / "b" / "002.jpg").write_bytes(b"not a jpeg")  # counted, but cannot be decoded
    problems = get_dataset("folder", tmp_path).check(decode=True)
    assert len(problems) == 1 and "test video b" in problems[0] and "002.jpg" in problems[0]
