"""Which benchmark layout a single frame folder sits in, and the frame rate that follows (vadkit.datasets.layouts)."""

import numpy as np
from builders import write_frames

from vadkit.datasets.layouts import find_layout, frame_rate


def test_the_official_ucsd_layout_is_found_from_a_train_folder(tmp_path):
    folder = write_frames(tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped1" / "Train" / "Train003", 5, ".tif")
    write_frames(tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped1" / "Train" / "Train001", 5, ".tif")
    match = find_layout(folder)
    assert match.dataset == "ucsd_ped1" and match.key == "train/Train003" and match.folder_fps == 10.0
    assert frame_rate(folder) == (10.0, "the ucsd_ped1 layout's rate")


def test_a_shanghaitech_test_folder_is_24_fps(tmp_path):
    root = tmp_path / "shanghaitech"
    write_frames(root / "training" / "frames" / "01_001", 4)
    folder = write_frames(root / "testing" / "frames" / "01_0014", 4)
    (root / "testing" / "test_frame_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", np.array([0, 1, 1, 0]))
    assert find_layout(folder).key == "test/01_0014" and frame_rate(folder)[0] == 24.0
    assert frame_rate(folder, 30) == (30.0, "given with --fps")


def test_a_folder_of_its_own_has_no_layout(tmp_path):
    folder = write_frames(tmp_path / "footage" / "frames" / "cam1", 3)
    assert find_layout(folder) is None and frame_rate(folder)[0] == 25.0
    lone = write_frames(tmp_path / "training" / "frames" / "01", 3)  # a layout's shape, but an incomplete one
    assert frame_rate(lone)[0] in (10.0, 24.0, 25.0)  # whatever it is read as, it is read without an error
