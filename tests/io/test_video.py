import cv2
import numpy as np
import pytest

from vadkit.io import VideoNotFoundError, VideoReadError, list_frame_files, open_video, open_video_frames, write_video


def moving_square_frames(n=12, h=48, w=64):
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[10:26, 2 + 3 * i:18 + 3 * i] = (250, 30, 30)  # a red square moving right
        frames.append(f)
    return frames


def test_frame_folder_sorted_numerically(tmp_path):
    for i in (0, 2, 10, 1):
        f = np.full((8, 6, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    (tmp_path / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frame_files(tmp_path)] == ["0.png", "1.png", "2.png", "10.png"]
    video = open_video(tmp_path)
    assert (video.num_frames, video.width, video.height) == (4, 6, 8)
    assert [int(f[0, 0, 0]) for f in video] == [0, 20, 40, 200]
    assert video.read(1, 3).shape == (2, 8, 6, 3)


def test_write_then_read_mp4_roundtrip(tmp_path):
    frames = moving_square_frames()
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    video = open_video(path)
    assert video.num_frames == 12 and video.fps == pytest.approx(10) and (video.width, video.height) == (64, 48)
    decoded = video.read()
    assert decoded.shape == (12, 48, 64, 3)
    assert np.abs(decoded.astype(int) - np.stack(frames).astype(int)).mean() < 6  # lossy codec
    # the square's red centre is where it was written
    assert decoded[5, 18, 2 + 15 + 8, 0] > 180
    assert not list(tmp_path.glob(".clip*"))  # no temporary file left behind


def test_frame_range_resize_and_gray(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square_frames(), fps=10)
    full = open_video(path).read()
    video = open_video(path, size=(32, 24), gray=True)
    part = video.read(4, 9)
    assert part.shape == (5, 24, 32)
    expected = cv2.cvtColor(cv2.resize(full[4], (32, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    assert np.array_equal(part[0], expected)
    # a backwards request reopens the decoder and still returns the right frames
    assert np.array_equal(video.read(0, 2)[1], cv2.cvtColor(cv2.resize(full[1], (32, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY))
    with pytest.raises(IndexError, match="outside the video's 12 frames"):
        video.read(10, 13)


def test_avi_with_opencv_backend_and_packet_count(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for f in moving_square_frames(9):
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    pyav, ocv = open_video(path), open_video(path, backend="opencv")
    assert pyav.num_frames == ocv.num_frames == 9 == len(list(pyav))
    assert np.abs(pyav.read(3, 4).astype(int) - ocv.read(3, 4).astype(int)).mean() < 2


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(VideoNotFoundError, match="nowhere.mp4"):
        open_video(tmp_path / "nowhere.mp4")
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 20)
    with pytest.raises(VideoReadError, match="broken.avi"):
        open_video(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty.mp4"):
        open_video(empty)
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(VideoReadError, match="no frames found"):
        open_video(folder)
    (folder / "000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoReadError, match="000.jpg"):
        open_video(folder)


def test_real_avenue_sample(shared_data):
    video = open_video(shared_data / "avenue_sample" / "Avenue Dataset" / "testing_videos" / "21.avi")
    assert (video.num_frames, video.width, video.height) == (76, 640, 360)
    assert video.fps == pytest.approx(25)
    assert sum(1 for _ in video) == 76


def test_open_video_frames_keeps_a_prefix_and_refuses_a_short_video(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((8, 10, 3), 40 * i, np.uint8))
    with open_video_frames(folder, 3) as video:
        frames = video.read()
    assert frames.shape == (3, 8, 10, 3) and frames[-1].mean() == 80
    with pytest.raises(ValueError, match="video cam1: expected 7 frames, .*clip has 5"):
        open_video_frames(folder, 7, "cam1")
