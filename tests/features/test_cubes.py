"""Cubes: elastic windows at the video ends, patch cropping, the on-disk store and the streaming dataset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vadkit.features.cubes import (
    CubeDataset,
    CubeStore,
    build_cube_store,
    crop_patches,
    elastic_window,
    video_cubes,
    window_indices,
)

N, H, W = 12, 48, 64


def numbered_frames(num_frames: int = N) -> np.ndarray:
    """Frame ``t`` is filled with the value ``10 * t`` (channel c adds c), RGB uint8 ``(N, H, W, 3)``."""
    frames = np.zeros((num_frames, H, W, 3), np.uint8)
    for t in range(num_frames):
        frames[t] = (10 * t + np.arange(3)).astype(np.uint8)
    return frames


def numbered_flow(num_frames: int = N) -> np.ndarray:
    """Flow of frame ``t`` is ``(t, -t)`` everywhere, float16 ``(N, H, W, 2)``."""
    flow = np.zeros((num_frames, H, W, 2), np.float16)
    flow[..., 0] = np.arange(num_frames)[:, None, None]
    flow[..., 1] = -np.arange(num_frames)[:, None, None]
    return flow


def write_folder(folder, frames):
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.parametrize("t, start", [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (8, 5), (9, 5), (11, 5)])
def test_elastic_window_shifts_inward_at_the_ends(t, start):
    assert elastic_window(t, N) == start
    indices = window_indices(t, N)
    assert len(indices) == 7 and t in indices and indices[0] >= 0 and indices[-1] <= N - 1
    np.testing.assert_array_equal(np.diff(indices), 1)  # 7 real consecutive frames


def test_short_video_repeats_its_last_frame():
    np.testing.assert_array_equal(window_indices(2, 4), [0, 1, 2, 3, 3, 3, 3])


def test_cube_borders_at_the_video_ends_hold_the_right_frames():
    frames, flow = numbered_frames(), numbered_flow()
    boxes = [np.array([[4, 4, 20, 20]], np.float32)] * N
    cubes = list(video_cubes(iter(frames), N, boxes, flow))
    assert len(cubes) == N
    for t, expected_start in [(0, 0), (3, 0), (6, 3), (N - 1, N - 7)]:
        cube = cubes[t]
        assert cube.raw.shape == (1, 7, 3, 32, 32) and cube.flow.shape == (1, 7, 2, 32, 32)
        frame_values = cube.raw[0, :, 0, 16, 16]  # red channel of each patch = 10 * frame index
        np.testing.assert_array_equal(frame_values, 10 * np.arange(expected_start, expected_start + 7))
        np.testing.assert_array_equal(cube.flow[0, :, 0, 16, 16], np.arange(expected_start, expected_start + 7))
        np.testing.assert_array_equal(cube.raw[0, 0, :, 0, 0], 10 * expected_start + np.arange(3))  # RGB order


def test_crop_uses_ceiled_box_and_resizes_to_32():
    image = np.zeros((1, 40, 40, 3), np.uint8)
    image[0, 11:21, 6:16] = 255  # the box [5.2, 10.5, 15.1, 20.9] ceils to x 6..15, y 11..20
    patch = crop_patches(image, np.array([5.2, 10.5, 15.1, 20.9]))
    assert patch.shape == (1, 3, 32, 32) and patch.dtype == np.uint8
    assert (patch == 255).all()
    edge = crop_patches(image, np.array([-5, -5, 0.2, 0.3]))  # degenerate box at the corner: one pixel
    assert edge.shape == (1, 3, 32, 32)


def test_store_and_dataset_stream_cubes_from_memory_maps(tmp_path):
    frames, flow = numbered_frames(), numbered_flow()
    flow[:7] = 0  # frames 0..3 have the window 0..6: static cubes
    folder = write_folder(tmp_path / "v1", frames)
    boxes = [np.zeros((0, 4), np.float32) if t == 2 else np.array([[0, 0, 16, 16], [20, 10, 50, 40]], np.float32)
             for t in range(N)]
    store = CubeStore(tmp_path / "store")
    assert store.add_video("train/01", folder, boxes, flow) == 2 * (N - 1)
    reopened = CubeStore(tmp_path / "store")
    assert reopened.videos == ["train/01"] and len(reopened) == 2 * (N - 1)
    raw = reopened.raw("train/01")
    assert isinstance(raw, np.memmap) and raw.dtype == np.uint8 and raw.shape == (22, 7, 3, 32, 32)
    assert reopened.flow("train/01").dtype == np.float16
    index = reopened.index()
    assert 2 not in index.frame.tolist()
    np.testing.assert_array_equal(index.box[:4], [0, 1, 0, 1])

    dataset = CubeDataset(reopened)  # STATE's motion filter drops the exactly static cubes of frames 0, 1, 3
    assert len(dataset) == 2 * (N - 1) - 6 and dataset.index.frame.min() == 4
    everything = CubeDataset(reopened, min_motion=None)
    assert len(everything) == 2 * (N - 1)
    x, f = everything[0]
    assert x.shape == (21, 32, 32) and x.dtype == torch.float32 and f.shape == (7, 2, 32, 32)
    assert float(x.max()) <= 1.0
    # frame-major channels: channel 3*k + c is frame k, colour c
    np.testing.assert_allclose(x[[0, 1, 2, 3]].mean(dim=(1, 2)).numpy() * 255, [0, 1, 2, 10], atol=1e-3)

    loader = DataLoader(dataset, batch_size=5, shuffle=True, num_workers=0)
    batches = list(loader)
    assert sum(len(b[0]) for b in batches) == len(dataset)
    assert batches[0][0].shape == (5, 21, 32, 32) and batches[0][1].shape == (5, 7, 2, 32, 32)
    stacked_x, stacked_f = dataset.batch([3, 0, 7])
    torch.testing.assert_close(stacked_x[1], dataset[0][0])
    torch.testing.assert_close(stacked_f[2], dataset[7][1])


def test_build_cube_store_computes_flow_and_skips_finished_videos(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(8, H, W, 3), dtype=np.uint8)
    folder = write_folder(tmp_path / "v", frames)
    boxes = {"a": [np.array([[5, 5, 30, 30]], np.float32)] * 8}
    store = build_cube_store(tmp_path / "store", {"a": folder}, boxes, tmp_path / "flow")
    assert len(store) == 8 and len(list((tmp_path / "flow").glob("*.flow.npy"))) == 1
    stamp = (tmp_path / "store" / "a.raw.npy").stat().st_mtime_ns
    build_cube_store(tmp_path / "store", {"a": folder}, boxes, tmp_path / "flow")
    assert (tmp_path / "store" / "a.raw.npy").stat().st_mtime_ns == stamp
    leftovers = [p.name for p in (tmp_path / "store").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_boxes_must_match_the_video_length(tmp_path):
    with pytest.raises(ValueError, match="boxes for 3 frames"):
        list(video_cubes(iter(numbered_frames()), N, [np.zeros((0, 4))] * 3, numbered_flow()))
