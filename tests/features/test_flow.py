"""Optical flow: direction and size of the displacement, frame pairing at the ends, the cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vadkit.features.flow import FlowSettings, compute_flow, flow_cache_file, flow_for_video, iter_flow, pair_flow

H, W = 96, 128


def textured(seed: int = 0) -> np.ndarray:
    """A smooth random texture (flow needs texture), uint8 gray ``(H + 40, W + 40)``."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(H + 40, W + 40)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)  # full contrast


def shifted_frames(shifts: list[tuple[int, int]]) -> np.ndarray:
    """Frames showing the texture translated by a running sum of ``shifts`` (dx, dy); RGB ``(N, H, W, 3)``."""
    texture = textured()
    frames, x, y = [], 20, 20
    for dx, dy in [(0, 0), *shifts]:
        x, y = x - dx, y - dy  # content moves by +dx, +dy
        crop = texture[y:y + H, x:x + W]
        frames.append(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_GRAY2RGB))
    return np.stack(frames)


def centre_mean(flow: np.ndarray) -> np.ndarray:
    return flow[..., 16:-16, 16:-16, :].astype(np.float32).mean(axis=(-3, -2))


@pytest.mark.parametrize("settings", [FlowSettings(), FlowSettings(method="farneback")], ids=["dis", "farneback"])
def test_pair_flow_measures_a_known_translation(settings):
    frames = shifted_frames([(3, -2)])
    np.testing.assert_allclose(centre_mean(pair_flow(frames[0], frames[1], settings)), [3, -2], atol=0.3)


def test_first_and_last_frames_get_their_neighbours_flow():
    # motions: 0->1 by (+2, 0), 1->2 by (0, +3), 2->3 by (-2, 0)
    frames = shifted_frames([(2, 0), (0, 3), (-2, 0)])
    flow = compute_flow(frames)
    assert flow.shape == (4, H, W, 2) and flow.dtype == np.float32
    means = centre_mean(flow)
    np.testing.assert_allclose(means[0], [2, 0], atol=0.3)  # first frame: 0 -> 1, not zero (VEC's quirk fixed)
    np.testing.assert_allclose(means[1], [0, 3], atol=0.3)  # frame t: t -> t+1
    np.testing.assert_allclose(means[2], [-2, 0], atol=0.3)
    np.testing.assert_array_equal(flow[3], flow[2])  # last frame: N-2 -> N-1


def test_single_frame_video_gets_zero_flow():
    frames = shifted_frames([])
    flow = list(iter_flow(frames))
    assert len(flow) == 1 and flow[0].shape == (H, W, 2) and not flow[0].any()


def test_reduced_size_flow_is_rescaled_to_frame_pixels():
    frames = shifted_frames([(4, 2)])
    flow = pair_flow(frames[0], frames[1], FlowSettings(size=(W // 2, H // 2)))
    assert flow.shape == (H, W, 2)
    np.testing.assert_allclose(centre_mean(flow), [4, 2], atol=0.5)  # not the half-size (2, 1)


def test_flow_cache_is_float16_memory_mapped_and_reused(tmp_path):
    frames = shifted_frames([(1, 0), (1, 0), (1, 0)])
    folder = tmp_path / "video"
    folder.mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    flow = flow_for_video(folder, tmp_path / "cache")
    assert isinstance(flow, np.memmap) and flow.dtype == np.float16 and flow.shape == (4, H, W, 2)
    assert not flow.flags.writeable
    np.testing.assert_allclose(flow.astype(np.float32), compute_flow(frames), atol=0.01)
    cache_file = flow_cache_file(folder, tmp_path / "cache")
    stamp = cache_file.stat().st_mtime_ns
    flow_for_video(folder, tmp_path / "cache")
    assert cache_file.stat().st_mtime_ns == stamp  # read, not recomputed
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache_file.name]  # no temporary left behind
    other = flow_cache_file(folder, tmp_path / "cache", FlowSettings(method="farneback"))
    assert other != cache_file


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="'dis' or 'farneback'"):
        FlowSettings(method="tvl1")
    with pytest.raises(ValueError, match="preset"):
        FlowSettings(preset="slow")
