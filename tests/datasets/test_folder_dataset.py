"""The 'folder' dataset: a user's own train/normal, test/{normal,abnormal} videos with optional label files."""

from __future__ import annotations

import json

import pytest
from builders import write_avi, write_frames, write_mp4

from vadkit.datasets import DatasetError, get_dataset


def build(root):
    write_mp4(root / "train" / "normal" / "lobby1.mp4", 12, fps=15)
    write_frames(root / "train" / "normal" / "lobby2", 6)
    write_frames(root / "test" / "normal" / "lobby3", 5)
    write_avi(root / "test" / "abnormal" / "fall.avi", 10)
    write_mp4(root / "test" / "abnormal" / "fighting" / "brawl.mp4", 8)
    return root


def test_layout_with_csv_labels(tmp_path):
    build(tmp_path)
    (tmp_path / "labels.csv").write_text("video,start,end\nfall.avi,2,5\nfall.avi,7,9\nbrawl,0,8\n")
    data = get_dataset("folder", tmp_path)
    assert data.splits() == ["train", "test"]
    records = {r.id: r for r in data.videos()}
    assert set(records) == {"lobby1", "lobby2", "lobby3", "fall", "brawl"}
    assert records["lobby1"].fps == pytest.approx(15) and records["lobby2"].fps == 25
    assert records["fall"].frame_labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1, 0]
    assert records["brawl"].class_name == "fighting" and records["brawl"].num_anomalous == 8
    assert records["fall"].class_name == "anomaly" and records["lobby3"].num_anomalous == 0
    assert data.check() == []


def test_json_labels_in_test_folder_and_fps(tmp_path):
    build(tmp_path)
    (tmp_path / "test" / "labels.json").write_text(json.dumps({"fall": [[0, 3]], "brawl.mp4": [[4, 6]]}))
    data = get_dataset("folder", tmp_path, fps=12.5)
    assert data.video("fall").num_anomalous == 3 and data.video("brawl").frame_labels.tolist()[3:7] == [0, 1, 1, 0]
    assert data.video("lobby2").fps == 12.5


def test_missing_labels_are_reported_not_invented(tmp_path):
    build(tmp_path)
    data = get_dataset("folder", tmp_path)
    assert data.video("fall").frame_labels is None and data.video("fall").label == 1
    assert sorted(data.check()) == ["folder: test video brawl: no frame labels",
                                    "folder: test video fall: no frame labels"]


def test_label_errors(tmp_path):
    build(tmp_path)
    (tmp_path / "labels.csv").write_text("fall,2,50\n")
    data = get_dataset("folder", tmp_path)
    with pytest.raises(DatasetError, match=r"test video fall .*up to 50 .*the video has 10 frames"):
        data.video("fall")
    (tmp_path / "labels.csv").write_text("ghost,2,5\n")
    with pytest.raises(DatasetError, match="names videos not found .*ghost"):
        get_dataset("folder", tmp_path)
    with pytest.raises(DatasetError, match="label file .*nope.csv does not exist"):
        get_dataset("folder", tmp_path, labels=tmp_path / "nope.csv")


def test_repeated_names_get_path_ids(tmp_path):
    write_frames(tmp_path / "train" / "normal" / "cam1", 3)
    write_frames(tmp_path / "test" / "abnormal" / "cam1", 4)
    (tmp_path / "labels.csv").write_text("test/abnormal/cam1,1,2\n")
    data = get_dataset("folder", tmp_path)
    assert data.ids() == ["train/normal/cam1", "test/abnormal/cam1"]
    assert data.video("test/abnormal/cam1").frame_labels.tolist() == [0, 1, 0, 0]
    (tmp_path / "labels.csv").write_text("cam1,1,2\n")
    with pytest.raises(DatasetError, match="ambiguous"):
        get_dataset("folder", tmp_path)


def test_bad_layouts(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(DatasetError, match=r"no train/normal/ or test/\{normal,abnormal\}/ folder"):
        get_dataset("folder", tmp_path)
    (tmp_path / "test" / "abnormal").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no videos under"):
        get_dataset("folder", tmp_path)
    (tmp_path / "test" / "abnormal" / "x.avi").write_bytes(b"\x01not a video" * 50)
    data = get_dataset("folder", tmp_path)
    with pytest.raises(DatasetError, match=r"test video x .*x\.avi.*cannot read video"):
        data.videos()
