import numpy as np
import pytest

from vadkit.io import open_video, write_video
from vadkit.report.annotate import FrameAnnotator, annotate_frames, panel_height, timeline_image


def gray_frames(n=30, h=120, w=160):
    return [np.full((h, w, 3), 100, np.uint8) for _ in range(n)]


def test_annotated_mp4_keeps_every_frame_and_marks_abnormal_ones(tmp_path):
    n, h, w = 30, 120, 160
    smoothed = np.r_[np.full(10, 0.1), np.full(10, 0.9), np.full(10, 0.1)]
    abnormal = smoothed >= 0.5
    path = write_video(tmp_path / "annotated.mp4", annotate_frames(gray_frames(n, h, w), smoothed, 0.5, abnormal, 25.0),
                       fps=25.0)
    video = open_video(path)
    assert video.num_frames == n and (video.width, video.height) == (w, h + panel_height(h))
    frames = video.read()
    corner = frames[:, 2, 2].astype(int)  # (n, 3): inside the border on abnormal frames
    assert (corner[10:20, 0] > 170).all() and (corner[10:20, 1] < 90).all()  # red
    assert (np.abs(corner[:10] - 100) < 20).all() and (np.abs(corner[20:] - 100) < 20).all()  # untouched gray
    centre = frames[:, h // 2, w // 2].astype(int)
    assert (np.abs(centre - 100) < 12).all()  # the picture itself is not painted over
    bar = frames[:, h + 3:h + panel_height(h) // 2 - 1].astype(int)  # the score bar: red fill above the threshold
    red = (bar[..., 0] > 160) & (bar[..., 1] < 90) & (bar[..., 2] < 90)
    assert red[15].mean() > 0.25 and red[5].mean() < 0.05


def test_annotator_checks_sizes_and_draws_a_cursor():
    smoothed = np.linspace(0, 1, 50)
    annotator = FrameAnnotator(smoothed, 0.5, smoothed >= 0.5, 25.0, 64, 48)
    out = annotator(0, np.zeros((48, 64, 3), np.uint8))
    assert out.shape == (48 + panel_height(48), 64, 3) and annotator.output_size == (64, 48 + panel_height(48))
    last = annotator(49, np.zeros((48, 64, 3), np.uint8))
    strip_first, strip_last = out[-3, :], last[-3, :]
    assert strip_first[:3].max() == 255 and strip_last[-3:].max() == 255  # the white cursor moves left to right
    with pytest.raises(ValueError, match="expected 64x48"):
        annotator(0, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(IndexError):
        annotator(50, np.zeros((48, 64, 3), np.uint8))


def test_timeline_shades_events():
    smoothed = np.r_[np.zeros(50), np.ones(50)]
    image = timeline_image(smoothed, 0.5, smoothed >= 0.5, 100, 20)
    assert image.shape == (20, 100, 3)
    assert image[6, 25, 0] < image[6, 75, 0]  # the second half (an event) is shaded red
