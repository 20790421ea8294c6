"""The box-source interface shared by STATE and the objects detector, and the running background of `vadkit watch`:
one stream cut into segments, each scored as one video, carries its background from segment to segment."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from vadkit.features.boxes.regions import RunningBackground, median_background
from vadkit.features.boxes.sources import BOX_SOURCES, RUNNING, box_cache_root, make_box_source
from vadkit.io import open_video

H, W, SIDE, Y = 120, 160, 16, 50


def square_x(t: int) -> int:
    return 10 + (2 * t) % 120


def stream_frame(t: int, scene: np.ndarray) -> np.ndarray:
    """A still textured scene with a bright square moving right, RGB ``(H, W, 3)`` uint8."""
    frame = scene.copy()
    x = square_x(t)
    frame[Y:Y + SIDE, x:x + SIDE] = 220
    return frame


def write_segments(root: Path, segments: int, length: int) -> list[Path]:
    """The stream as `vadkit watch` writes it: one PNG frame folder per segment."""
    scene = np.random.default_rng(0).integers(30, 80, (H, W, 1), dtype=np.uint8).repeat(3, axis=2)
    folders = []
    for s in range(segments):
        folder = root / f"{s:06d}" / "frames"
        folder.mkdir(parents=True)
        for i in range(length):
            cv2.imwrite(str(folder / f"{i:06d}.png"), stream_frame(s * length + i, scene)[..., ::-1])
        folders.append(folder)
    return folders


def covers_square(boxes: np.ndarray, t: int, slack: int = 3) -> bool:
    x = square_x(t)
    return any(b[0] <= x + slack and b[1] <= Y + slack and b[2] >= x + SIDE - slack and b[3] >= Y + SIDE - slack
               and (b[2] - b[0]) < 3 * SIDE for b in boxes)


def test_a_watched_stream_gets_background_boxes_around_the_moving_square_from_its_second_segment(tmp_path):
    length = 20
    folders = write_segments(tmp_path / "segments", 5, length)
    source = make_box_source("background", thresholds="ped2")
    stream: dict = {}
    for s, folder in enumerate(folders):
        with open_video(folder) as video:
            boxes = source.boxes(video, tmp_path / "cache" / str(s), stream)
        assert len(boxes) == length
        if s >= 1:
            missed = [t for t in range(length) if not covers_square(boxes[t], s * length + t)]
            assert not missed, (s, missed)
    running = stream[RUNNING]
    assert isinstance(running, RunningBackground) and running.seen == 5 * length
    assert not (tmp_path / "cache" / "1" / "boxes").exists()  # boxes that depend on the stream's past are not cached


def test_the_running_background_keeps_bounded_memory_and_follows_a_new_frame_size():
    running = RunningBackground(samples=4, every=2)
    for t in range(1000):
        running.add(np.full((H, W, 3), t % 256, np.uint8))
    assert len(running.ring) == 4 and running.nbytes == 4 * H * W
    running.add(np.zeros((60, 80, 3), np.uint8))  # t = 1000: sampled, another size
    assert len(running.ring) == 1 and running.background().shape == (60, 80)
    with pytest.raises(ValueError, match="samples and every"):
        RunningBackground(samples=0)


def test_outside_a_stream_background_boxes_use_the_whole_videos_median(tmp_path):
    """`vadkit score` on a file: no stream state, the video's median frame (today's behaviour), cached."""
    (folder,) = write_segments(tmp_path / "segments", 1, 30)
    source = make_box_source("background", thresholds="ped2")
    with open_video(folder) as video:
        boxes = source.boxes(video, tmp_path / "cache")
        from vadkit.features.boxes.video import extract_boxes

        expected = extract_boxes(video, "ped2", regions="background")
        assert median_background(video).shape == (H, W)
    assert all(np.array_equal(a, b) for a, b in zip(boxes, expected))
    assert list((tmp_path / "cache" / "boxes").glob("*.npz"))


def test_every_box_source_is_made_by_name_and_checks_its_arguments(tmp_path):
    assert set(BOX_SOURCES) == {"motion", "background", "vec", "onnx", "hog", "yolox"}
    with pytest.raises(ValueError, match="boxes must be one of"):
        make_box_source("edges")
    with pytest.raises(ValueError, match="boxes_dir"):
        make_box_source("vec")
    with pytest.raises(ValueError, match="detector_file"):
        make_box_source("onnx")
    with pytest.raises(ValueError, match="fallback must be one of"):
        make_box_source("yolox", fallback="edges")
    with pytest.raises(ValueError, match="detect_every"):
        make_box_source("hog", detect_every=0)
    assert make_box_source("yolox", detect_every=2, fallback="none").cache_options() == {"detect_every": 2,
                                                                                      "fallback": "none"}
    assert box_cache_root(None, "state") == Path("~/.cache/vadkit/state").expanduser()
    assert box_cache_root(str(tmp_path), "state") == tmp_path


def test_box_files_fall_back_to_motion_boxes_with_one_warning(tmp_path):
    source = make_box_source("vec", boxes_dir=str(tmp_path), box_file="none_{split}.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kinds = [source.for_video("test/x", tmp_path / "x", 10).kind for _ in range(3)]
    assert kinds == ["motion"] * 3
    assert sum("using motion boxes" in str(w.message) for w in caught) == 1


def test_the_old_module_still_gives_the_same_names():
    import vadkit.features.objects as old
    from vadkit.features.boxes import files, regions, video

    assert old.load_boxes is files.load_boxes and old.extract_boxes is video.extract_boxes
    assert old.motion_boxes is regions.motion_boxes


def test_the_object_detectors_carry_a_running_background_only_inside_streaming(tmp_path):
    from vadkit.detectors import VideoItem, build_detector
    from vadkit.io import open_video_frames

    (folder,) = write_segments(tmp_path / "segments", 1, 12)
    item = VideoItem(id="cam/segment-0", num_frames=12, path=folder)
    objects = build_detector("objects", boxes="background", cache_dir=str(tmp_path / "objects"))
    state: dict = {}
    with open_video_frames(folder, 12, item.id) as video:
        objects._boxes(item, video)  # `vadkit score`: nothing carried
        with objects.streaming(state):
            source, boxes = objects._boxes(item, video)
    assert source.kind == "background" and len(boxes) == 12
    assert state[RUNNING].seen == 12 and objects._stream is None
    cubes = build_detector("state", boxes="background", cache_dir=str(tmp_path / "state"))
    carried: dict = {}
    with cubes.streaming(carried):
        cubes._cubes(item)
    assert carried[RUNNING].seen == 12
