"""Read videos and frame folders through one interface; write mp4 files.

``open_video(path)`` returns a :class:`VideoSource` for a video file (decoded with PyAV, OpenCV as fallback) or a
folder of frames (jpg/png/tif/bmp, sorted numerically). Frames are ``np.uint8`` arrays, RGB ``(H, W, 3)`` or, with
``gray=True``, ``(H, W)``. Nothing is loaded until it is asked for, so a long video never sits in memory whole.
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
DEFAULT_FOLDER_FPS = 25.0


class VideoReadError(RuntimeError):
    """A video or frame folder could not be read. The message names the file.

    Attributes:
        frames_read: for a video that broke while decoding, how many frames were decoded before the break
            (``None`` when it could not be opened at all).
    """

    def __init__(self, message: str, frames_read: int | None = None) -> None:
        super().__init__(message)
        self.frames_read = frames_read


class VideoNotFoundError(VideoReadError, FileNotFoundError):
    """The video file or frame folder does not exist."""


def natural_key(name: str) -> tuple:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (numbers compared as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts)


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder``, sorted numerically by name."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".")]  # skips ._001.tif
    return sorted(files, key=lambda p: natural_key(p.name))


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


class VideoSource(ABC):
    """A video you can ask for its length, frame rate and size, and iterate lazily.

    Attributes:
        path: the file or folder read.
        num_frames: number of frames.
        fps: frames per second (a frame folder has no rate of its own: ``DEFAULT_FOLDER_FPS`` unless given).
        width, height: size of the frames returned (after the optional resize).
    """

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    warnings: list[str]

    def __init__(self, size: tuple[int, int] | None = None, gray: bool = False,
                 interpolation: int = cv2.INTER_AREA) -> None:
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise ValueError(f"size must be (width, height) with positive values, got {size!r}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.warnings = []
        self.gray = gray
        self.interpolation = interpolation

    # -- to implement ---------------------------------------------------------------------------------------
    @abstractmethod
    def _raw_frames(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """Yield RGB uint8 frames ``(H0, W0, 3)`` at native size for indices ``start <= i < stop``."""

    # -- public ---------------------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def __len__(self) -> int:
        return self.num_frames

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames ``start <= i < stop`` one at a time (resized / gray as configured)."""
        start, stop = self._check_range(start, stop)
        for frame in self._raw_frames(start, stop):
            yield self._postprocess(frame)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start <= i < stop`` as one array ``(N, H, W, 3)`` (or ``(N, H, W)`` gray)."""
        start, stop = self._check_range(start, stop)
        out = list(self.frames(start, stop))
        if len(out) != stop - start:
            raise VideoReadError(f"{self.path}: expected frames {start}..{stop - 1}, decoded only {len(out)}")
        if not out:
            shape = (0, self.height, self.width) if self.gray else (0, self.height, self.width, 3)
            return np.zeros(shape, np.uint8)
        return np.stack(out)

    def close(self) -> None:
        """Release decoder resources (the source stays usable; it reopens on demand)."""

    def truncated(self, num_frames: int) -> "VideoSource":
        """A view of the first ``num_frames`` frames (e.g. of a file that breaks after them)."""
        if not 0 < num_frames <= self.num_frames:
            raise ValueError(f"{self.path}: cannot keep {num_frames} of {self.num_frames} frames")
        return _PrefixSource(self, num_frames)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, frames={self.num_frames}, fps={self.fps:g}, "
                f"size={self.width}x{self.height})")

    # -- helpers --------------------------------------------------------------------------------------------
    def _set_size(self, native_width: int, native_height: int) -> None:
        self.native_size = (native_width, native_height)
        self.width, self.height = self.size if self.size is not None else (native_width, native_height)

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.num_frames if stop is None else stop
        if not 0 <= start <= stop <= self.num_frames:
            raise IndexError(f"{self.path}: frame range [{start}, {stop}) outside the video's {self.num_frames} frames")
        return start, stop

    def _postprocess(self, frame: np.ndarray) -> np.ndarray:
        if self.size is not None and (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=self.interpolation)
        if self.gray:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return frame


class _PrefixSource(VideoSource):
    """The first frames of another source."""

    def __init__(self, base: VideoSource, num_frames: int) -> None:
        self.__dict__.update(base.__dict__)
        self._base = base
        self.num_frames = num_frames
        self.warnings = list(base.warnings)

    def _raw_frames(self, start: int, stop: int) -> Iterator[np.ndarray]:
        return self._base._raw_frames(start, stop)

    def close(self) -> None:
        self._base.close()


class FrameFolderSource(VideoSource):
    """A folder of image files, one per frame, sorted numerically."""

    def __init__(self, folder: str | os.PathLike, fps: float | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = Path(folder)
        if not self.path.is_dir():
            raise VideoNotFoundError(f"frame folder not found: {self.path}")
        self.files = list_frame_files(self.path)
        if not self.files:
            raise VideoReadError(f"{self.path}: no frames found (expected files ending in {', '.join(FRAME_EXTENSIONS)})")
        self.num_frames = len(self.files)
        self.fps = float(fps) if fps else DEFAULT_FOLDER_FPS
        first = self._load(self.files[0])
        self._set_size(first.shape[1], first.shape[0])

    @staticmethod
    def _load(file: Path) -> np.ndarray:
        from vadkit.io.images import header_problem

        try:
            data = file.read_bytes()
        except OSError as err:
            raise VideoReadError(f"cannot read image {file}: {err.strerror or err}") from None
        problem = header_problem(data)  # before decoding: OpenCV allocates what a header announces
        if problem:
            raise VideoReadError(f"cannot decode image {file}: {problem}")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise VideoReadError(f"cannot decode image {file} (missing, empty or corrupt)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _raw_frames(self, start: int, stop: int) -> Iterator[np.ndarray]:
        for file in self.files[start:stop]:
            yield self._load(file)


class PyAVSource(VideoSource):
    """A video file decoded with PyAV (FFmpeg). Sequential reads reuse one open decoder."""

    def __init__(self, file: str | os.PathLike, fps: float | None = None, **kwargs) -> None:
        import av  # lazily: PyAV is only needed for video files

        super().__init__(**kwargs)
        self.path = Path(file)
        self._av = av
        self._container = None
        self._iterator: Iterator[np.ndarray] | None = None
        self._position = 0
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoReadError(f"{self.path}: the file has no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                self.fps = float(fps) if fps else (float(rate) if rate else DEFAULT_FOLDER_FPS)
                self._set_size(stream.codec_context.width, stream.codec_context.height)
                declared = int(stream.frames or 0)
                self.num_frames = self._count_frames(container)
                if declared > self.num_frames:
                    self.warnings.append(f"{self.path}: the file declares {declared} frames but only "
                                         f"{self.num_frames} can be read (truncated?)")
        except VideoReadError:
            raise
        except Exception as err:  # PyAV raises many error types for broken files
            raise VideoReadError(f"cannot read video {self.path}: {err}") from err
        if self.num_frames == 0 or self.width == 0:
            raise VideoReadError(f"cannot read video {self.path}: no decodable frames")

    @staticmethod
    def _count_frames(container) -> int:
        """Count the frames by demuxing packets, without decoding them.

        The container's own frame count is often absent or wrong; one non-empty packet per frame holds for the
        codecs of surveillance and benchmark video (H.264, MPEG-4, MJPEG, XviD) and is checked against decoding in
        the tests. Decoding later verifies the count and raises if the video ends early.
        """
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)

    def _open_at_start(self) -> None:
        self.close()
        self._container = self._av.open(str(self.path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._iterator = (f.to_ndarray(format="rgb24") for f in self._container.decode(stream))
        self._position = 0

    def _raw_frames(self, start: int, stop: int) -> Iterator[np.ndarray]:
        if self._iterator is None or start < self._position:
            self._open_at_start()
        try:
            while self._position < stop:
                frame = next(self._iterator)
                self._position += 1
                if self._position > start:
                    yield frame
        except StopIteration:
            raise VideoReadError(f"{self.path}: ended after {self._position} frames, expected {self.num_frames}",
                                 frames_read=self._position) from None
        except self._av.error.FFmpegError as err:
            raise VideoReadError(f"cannot decode video {self.path} at frame {self._position}: {err}",
                                 frames_read=self._position) from err

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._iterator = None
        self._position = 0


class OpenCVSource(VideoSource):
    """A video file decoded with OpenCV, the fallback when PyAV cannot open it."""

    def __init__(self, file: str | os.PathLike, fps: float | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = Path(file)
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise VideoReadError(f"cannot open video {self.path} with OpenCV")
        rate = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps else (rate if rate and rate > 0 else DEFAULT_FOLDER_FPS)
        count, width, height = 0, 0, 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            height, width = frame.shape[:2]
        capture.release()
        if count == 0:
            raise VideoReadError(f"cannot read video {self.path}: no decodable frames")
        self.num_frames = count
        self._set_size(width, height)

    def _raw_frames(self, start: int, stop: int) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            for index in range(stop):
                ok, frame = capture.read()
                if not ok:
                    raise VideoReadError(f"{self.path}: ended after {index} frames, expected {self.num_frames}",
                                         frames_read=index)
                if index >= start:
                    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


def open_video(path: str | os.PathLike, *, size: tuple[int, int] | None = None, gray: bool = False,
               fps: float | None = None, backend: str = "auto") -> VideoSource:
    """Open a video file or a folder of frames.

    Args:
        path: a video file (mp4, avi, ...) or a folder of images.
        size: optional ``(width, height)`` every frame is resized to.
        gray: return ``(H, W)`` grayscale frames instead of ``(H, W, 3)`` RGB.
        fps: override the frame rate (a frame folder has none of its own).
        backend: ``"auto"`` (PyAV, then OpenCV), ``"pyav"`` or ``"opencv"`` for video files.

    Raises:
        VideoNotFoundError: nothing exists at ``path``.
        VideoReadError: the file cannot be decoded; the message names it.
    """
    path = Path(path)
    if not path.exists():
        raise VideoNotFoundError(f"video not found: {path}")
    options = dict(size=size, gray=gray, fps=fps)
    if path.is_dir():
        return FrameFolderSource(path, **options)
    if backend not in ("auto", "pyav", "opencv"):
        raise ValueError(f"backend must be 'auto', 'pyav' or 'opencv', got {backend!r}")
    if path.stat().st_size == 0:
        raise VideoReadError(f"cannot read video {path}: the file is empty")
    if backend == "opencv":
        return OpenCVSource(path, **options)
    try:
        return PyAVSource(path, **options)
    except VideoReadError as pyav_error:
        if backend == "pyav":
            raise
        try:
            return OpenCVSource(path, **options)
        except VideoReadError:
            raise pyav_error from None


def open_video_frames(path: str | os.PathLike, num_frames: int, name: str | None = None,
                      **options) -> VideoSource:
    """Open a video expected to give ``num_frames`` frames (a record's length, or the decodable prefix of a file
    that breaks part-way): a longer video is cut to its first ``num_frames`` frames, a shorter one refused.

    Raises:
        ValueError: the video has fewer frames than expected (names the video and both counts).
    """
    source = open_video(path, **options)
    if source.num_frames == num_frames:
        return source
    if source.num_frames < num_frames:
        source.close()
        raise ValueError(f"video {name or path}: expected {num_frames} frames, {path} has {source.num_frames}")
    return source.truncated(num_frames)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 25.0,
                codec: str = "libx264", crf: int = 20) -> Path:
    """Write RGB uint8 frames ``(H, W, 3)`` (or gray ``(H, W)``) to an mp4 file, atomically.

    Odd frame sizes are padded by one pixel (H.264 needs even sizes). The file appears under its final name
    only when complete.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named like the atomic writes of io.files (".<name>.XXXX"), so that a cleanup finds what a kill left
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".mp4", dir=path.parent)
    os.close(handle)
    written = 0
    try:
        with av.open(tmp_name, mode="w") as container:
            stream = None
            for frame in frames:
                frame = _as_rgb(frame)
                if stream is None:
                    height, width = frame.shape[0] + frame.shape[0] % 2, frame.shape[1] + frame.shape[1] % 2
                    stream = _add_stream(container, codec, fps, width, height, crf)
                frame = _pad_to(frame, stream.height, stream.width)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
                written += 1
            if stream is None:
                raise ValueError(f"no frames given to write to {path}")
            for packet in stream.encode():
                container.mux(packet)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _add_stream(container, codec: str, fps: float, width: int, height: int, crf: int):
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    try:
        stream = container.add_stream(codec, rate=rate)
    except Exception:  # an FFmpeg build without libx264
        stream = container.add_stream("mpeg4", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if stream.codec_context.name == "libx264":
        stream.options = {"crf": str(crf), "preset": "veryfast"}
    return stream


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A uint8 frame ``(H, W)`` or RGB ``(H, W, 3)`` as grey ``(H, W)``; other dtypes and shapes are refused."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"frames must be (H, W) or (H, W, 3), got shape {frame.shape}")


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    raise ValueError(f"frames must be (H, W) or (H, W, 3), got shape {frame.shape}")


def _pad_to(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    if frame.shape[0] > height or frame.shape[1] > width:
        raise ValueError(f"all frames must have one size: expected {width}x{height}, got {frame.shape[1]}x{frame.shape[0]}")
    return np.pad(frame, ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)), mode="edge")
