"""YOLOX-Nano shipped inside vadkit: decoding and suppression against hand-computed cases, the shipped file's digest,
a drawn person found, batched = one by one, and recall against VEC's boxes on real Ped2 training frames."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vadkit.features.boxes.core import BoxThresholds
from vadkit.features.boxes.video import extract_boxes
from vadkit.features.yolox import (ASSET, SHA256, SOURCE_SHA256, ModelIntegrityError, YoloxDetector, check_sha256,
                                   choose_class, class_nms, decode, file_sha256, free_input_dims, grid_cells,
                                   input_size, nms, prepare_batch)

pytest.importorskip("onnxruntime")


# -- hand-computed decoding -------------------------------------------------------------------------------------

def test_grid_cells_order_is_stride_then_row_major():
    cells = grid_cells(64, 96)  # stride 8: 8 rows x 12 cols, 16: 4 x 6, 32: 2 x 3
    assert cells.shape == (96 + 24 + 6, 3)
    assert cells[0].tolist() == [0, 0, 8]
    assert cells[1].tolist() == [1, 0, 8]  # column first within a row
    assert cells[12].tolist() == [0, 1, 8]  # the next row
    assert cells[96].tolist() == [0, 0, 16]
    assert cells[96 + 24 + 5].tolist() == [2, 1, 32]  # the last cell: row 1, column 2 of the stride-32 grid


def test_decode_hand_computed_row():
    cells = grid_cells(64, 96)
    raw = np.zeros((1, len(cells), 85), np.float32)
    row = 96 + 7  # stride 16, row 1, column 1
    raw[0, row, :4] = [0.5, 0.25, np.log(2.0), 0.0]
    raw[0, row, 4] = 0.8
    raw[0, row, 5 + 1] = 0.5
    boxes, objectness, probabilities = decode(raw, cells)
    # centre ((0.5 + 1) * 16, (0.25 + 1) * 16) = (24, 20); size (2 * 16, 1 * 16) = (32, 16)
    np.testing.assert_allclose(boxes[0, row], [8, 12, 40, 28])
    assert objectness[0, row] == pytest.approx(0.8)
    assert probabilities.shape == (1, len(cells), 80)
    with pytest.raises(ValueError, match="expected raw rows"):
        decode(raw[:, :-1], cells)


def test_choose_class_takes_the_best_kept_class_by_objectness_times_probability():
    objectness = np.array([0.5, 0.9])
    probabilities = np.zeros((2, 80))
    probabilities[0, [0, 1, 2]] = [0.4, 0.6, 0.99]  # class 2 (car) is not kept
    probabilities[1, [0, 1]] = [0.7, 0.1]
    scores, labels = choose_class(objectness, probabilities, (0, 1))
    np.testing.assert_allclose(scores, [0.3, 0.63])
    assert labels.tolist() == [1, 0]


def test_nms_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0, 1) = 90 / 110 = 0.818; IoU(0, 3) = 50 / 100 = 0.5; IoU(1, 3) = 45 / 105 = 0.43
    assert nms(boxes, scores, 0.45).tolist() == [3, 1, 2]  # 3 drops 0 (0.5 > 0.45), not 1 (0.43)
    assert nms(boxes, scores, 0.6).tolist() == [3, 0, 2]  # 0 kept (0.5), 1 dropped by 0 (0.818)
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_class_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 20], [0, 2, 10, 22], [0, 0, 10, 20]], np.float32)
    scores = np.array([0.9, 0.5, 0.6], np.float32)
    labels = np.array([0, 0, 1])
    assert class_nms(boxes, scores, labels, 0.45).tolist() == [0, 2]  # the person and the bicycle, best first


def test_input_size_and_padding():
    assert input_size(360, 240, 1.5) == (540, 360, 544, 384)
    assert input_size(360, 240, 2.0) == (720, 480, 736, 480)
    frame = np.zeros((240, 360, 3), np.uint8)
    frame[..., 0] = 10  # red
    batch = prepare_batch([frame, frame], 1.0)
    assert batch.shape == (2, 3, 256, 384)
    assert batch[0, 2, 0, 0] == 10 and batch[0, 0, 0, 0] == 0  # BGR: red is the last channel
    assert batch[0, 0, 250, 370] == 114  # padding
    with pytest.raises(ValueError, match="scale"):
        input_size(360, 240, 0)


# -- the shipped file ---------------------------------------------------------------------------------------------

def test_shipped_file_is_checked_by_sha256(tmp_path):
    assert file_sha256(ASSET) == SHA256
    assert (ASSET.parent / "LICENSE-yolox-onnx-sample").is_file() and (ASSET.parent / "NOTICE.md").is_file()
    damaged = tmp_path / "yolox_nano.onnx"
    shutil.copy(ASSET, damaged)
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=f"expected sha256 {SHA256}"):
        YoloxDetector(model_path=damaged)
    with pytest.raises(FileNotFoundError):
        check_sha256(tmp_path / "missing.onnx")


def test_the_edit_of_the_published_file_gives_the_shipped_one(tmp_path, shared_data):
    pytest.importorskip("onnx")
    source = shared_data / "detectors" / "yolox_nano.onnx"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    assert file_sha256(source) == SOURCE_SHA256
    assert file_sha256(free_input_dims(source, tmp_path / "edited.onnx")) == SHA256


# -- detection ----------------------------------------------------------------------------------------------------

def draw_person(frame: np.ndarray, x: int, y: int, height: int) -> tuple[int, int, int, int]:
    """A person-like shape (head, torso, arms, legs) with its top centre at ``(x, y)``; returns its extent."""
    u = height / 8
    clothes, skin, legs = (40, 40, 90), (200, 170, 140), (30, 30, 30)
    cv2.circle(frame, (int(x), int(y + u)), int(u * 0.8), skin, -1)
    cv2.rectangle(frame, (int(x - 1.1 * u), int(y + 2 * u)), (int(x + 1.1 * u), int(y + 4.8 * u)), clothes, -1)
    for side in (-1, 1):
        cv2.line(frame, (int(x + side * u), int(y + 2.2 * u)), (int(x + side * 1.6 * u), int(y + 4.5 * u)), clothes,
                 int(u * 0.6))
        cv2.line(frame, (int(x + side * 0.5 * u), int(y + 4.8 * u)), (int(x + side * 0.9 * u), int(y + 8 * u)), legs,
                 int(u * 0.7))
    return int(x - 1.9 * u), int(y), int(x + 1.9 * u), int(y + 8.3 * u)


def box_iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


@pytest.fixture(scope="module")
def yolox():
    return YoloxDetector(scale=1.0, confidence=0.3, threads=1)


@pytest.mark.parametrize("where", [(60, 100), (300, 150)])
def test_a_drawn_person_is_found_where_it_is(yolox, where):
    frame = np.full((240, 360, 3), 150, np.uint8)
    extent = draw_person(frame, *where, height=60)
    boxes, scores = yolox(frame)
    assert len(boxes) == 1, (boxes, scores)
    assert box_iou(boxes[0], extent) > 0.6 and scores[0] >= 0.3
    empty, _ = yolox(np.full((240, 360, 3), 150, np.uint8))
    assert len(empty) == 0


def test_batched_detection_equals_one_by_one_and_detect_every(tmp_path, yolox):
    frames = []
    for t in range(7):
        frame = np.full((240, 360, 3), 150, np.uint8)
        draw_person(frame, 60 + 20 * t, 100, 60)
        frames.append(frame)
    one_by_one = [yolox(f) for f in frames]
    batched = YoloxDetector(scale=1.0, confidence=0.3, batch=3, threads=1).detect(frames)
    for (b1, s1), (b2, s2) in zip(one_by_one, batched):
        np.testing.assert_allclose(b1, b2, atol=1e-3)
        np.testing.assert_allclose(s1, s2, atol=1e-5)
    folder = tmp_path / "clip"
    folder.mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame[..., ::-1])
    every = extract_boxes(folder, BoxThresholds(score=0.0), detector=YoloxDetector(scale=1.0, confidence=0.3, batch=2, threads=1),
                          regions="none", detect_every=3)
    for t, boxes in enumerate(every):
        np.testing.assert_allclose(boxes, one_by_one[t - t % 3][0], atol=1e-3)  # frames 3k..3k+2: frame 3k's boxes


def test_runtime_and_device_are_checked():
    with pytest.raises(ValueError, match="runtime must be one of"):
        YoloxDetector(runtime="tensorrt")
    with pytest.raises(ValueError, match="device must be"):
        YoloxDetector(device="tpu")


def test_openvino_gives_the_same_boxes(yolox):
    pytest.importorskip("openvino")
    frame = np.full((240, 360, 3), 150, np.uint8)
    draw_person(frame, 200, 80, 60)
    expected, _ = yolox(frame)
    found, _ = YoloxDetector(scale=1.0, confidence=0.3, runtime="openvino", threads=1)(frame)
    np.testing.assert_allclose(found, expected, atol=0.05)


# -- real frames ----------------------------------------------------------------------------------------------------

def test_recall_against_vec_boxes_on_ped2_training_frames(shared_data):
    """Every 30th frame of the 16 training clips (86 frames): YOLOX at 1.5x finds most of VEC's boxes."""
    if not (shared_data / "ucsd_ped2_boxes" / "ped2_train_boxes.npz").is_file():
        pytest.skip("VEC's Ped2 boxes not found under the shared data")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from yolox_recall_ped2 import agreement, training_frames

    frames, reference = training_frames(shared_data, every=30)
    found = YoloxDetector(scale=1.5, confidence=0.3, threads=2).detect(frames)
    result = agreement([boxes for boxes, _ in found], reference)
    print(result)
    assert result["recall"] >= 0.8 and result["precision"] >= 0.9, result
