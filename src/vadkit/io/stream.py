"""Live sources: RTSP / HTTP (MJPEG, HLS) cameras, V4L2 devices and files read as a stream, with reconnection.

:func:`stream_frames` yields :class:`Frame` items (RGB uint8, a running index, the wall-clock arrival time) and
:class:`Gap` items when the source dropped or stalled and was reopened. The index keeps counting across
reconnections, so a gap is a jump in wall time, never invented frames.

- ``rtsp://`` / ``rtsps://``: TCP transport (no lost UDP packets behind NAT), an open/read timeout;
- ``http(s)://``: whatever FFmpeg reads there (MJPEG, HLS), with the same timeout;
- ``/dev/video*``: V4L2;
- a file: as fast as it decodes, or paced at its own frame rate (``realtime``), once or looped (``loop``).

A dropped stream is reopened with capped exponential back-off (1 s, 2 s, 4 s … ``max_backoff``), forever unless
``max_retries`` says otherwise; a corrupt packet costs the frames it carried, not the stream.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")


class StreamError(RuntimeError):
    """A source that cannot be opened or read (the message names it)."""


@dataclass
class Frame:
    index: int  # running frame index of the stream (counts across reconnections)
    image: np.ndarray  # (H, W, 3) uint8 RGB
    arrival: float  # wall-clock time (time.time()) the frame was decoded
    monotonic: float  # time.monotonic() at decoding, for latencies


@dataclass
class Gap:
    start: float  # wall-clock time the source was lost
    end: float  # wall-clock time frames came again
    after_frame: int  # the last frame index before the gap (-1: none yet)
    reason: str
    attempts: int


def kind_of(source: str) -> str:
    """``network``, ``device`` or ``file``."""
    if source.lower().startswith(NETWORK_SCHEMES):
        return "network"
    if source.startswith("/dev/video"):
        return "device"
    return "file"


def stream_name(source: str) -> str:
    """A folder-safe name for a source (``rtsp://host:8554/cam1`` -> ``host-8554-cam1``)."""
    import re

    text = source.split("://", 1)[-1] if "://" in source else Path(source).stem
    text = text.split("@", 1)[-1]  # never a password in a folder name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "stream"


def open_options(source: str, timeout_s: float) -> tuple[dict, str | None]:
    """PyAV ``options`` and ``format`` for a source."""
    kind = kind_of(source)
    micro = str(int(timeout_s * 1e6))
    if kind == "network":
        options = {"timeout": micro}  # FFmpeg >= 5: socket I/O timeout in microseconds (open and read)
        if source.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        elif source.lower().startswith(("http://", "https://")):
            options.update(reconnect="0", rw_timeout=micro)
        return options, None
    if kind == "device":
        return {}, "v4l2"
    return {}, None


class _Watchdog:
    """Closes a container that has produced nothing for ``timeout`` seconds (a stalled source whose socket stays
    open): the blocked read then fails and the stream is reopened."""

    GRACE = 1.0  # FFmpeg's own read timeout (the same length) usually ends the read first, more cleanly

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last = time.monotonic()
        self.fired = False
        self._container = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vadkit-stream-watchdog")
        self._thread.start()

    def watch(self, container) -> None:
        with self._lock:
            self._container, self.fired = container, False
        self.feed()

    def take(self):
        """The watched container, no longer watched (None when the watchdog has closed it)."""
        with self._lock:
            container, self._container = self._container, None
        return container

    def feed(self) -> None:
        self.last = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.last

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            if self.silent_for() <= self.timeout + self.GRACE:
                continue
            container = self.take()
            if container is not None:
                self.fired = True  # before the close, which is what makes the blocked read fail
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - closing a broken container
                    pass

    def stop(self) -> None:
        self._stop.set()


def _decode(source: str, timeout_s: float, realtime: bool, stop: threading.Event, watchdog: _Watchdog
            ) -> Iterator[tuple[np.ndarray, float]]:
    """Frames of one opening of ``source`` (RGB, and the source's fps)."""
    import av

    options, fmt = open_options(source, timeout_s)
    try:
        container = av.open(source, options=options, format=fmt, timeout=(timeout_s, timeout_s))
    except Exception as err:  # noqa: BLE001 - PyAV raises many types
        raise StreamError(f"cannot open {source}: {err}") from err
    if kind_of(source) != "file":  # a file never stalls (and a slow consumer must not be taken for a stall)
        watchdog.watch(container)
    stream = None
    try:
        if not container.streams.video:
            raise StreamError(f"{source}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        started, first_pts = time.monotonic(), None
        for packet in container.demux(stream):
            if stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a corrupt packet: its frames are lost, the stream goes on
            for frame in frames:
                watchdog.feed()
                if realtime:
                    t = float(frame.time) if frame.time is not None else None
                    if first_pts is None:
                        first_pts = t or 0.0
                    due = started + ((t - first_pts) if t is not None else 0.0)
                    delay = due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                yield frame.to_ndarray(format="rgb24"), fps
    except StreamError:
        raise
    except Exception as err:  # noqa: BLE001 - a dropped connection surfaces as any FFmpeg error
        if stop.is_set():
            return
        silent = watchdog.fired or (isinstance(err, av.error.ExitError) and watchdog.silent_for() >= 0.9 * timeout_s)
        lost = StreamError(f"{source}: {'no data for %.0f s' % timeout_s if silent else err}")
        if watchdog.take() is not None and stream is not None:
            # the frames the decoder still holds (its reordering and thread delay) arrived before the loss
            yield from ((frame.to_ndarray(format="rgb24"), fps) for frame in _drain(stream))
        raise lost from err
    finally:
        container = watchdog.take() or container
        try:
            container.close()
        except Exception:  # noqa: BLE001
            pass


def _drain(stream) -> list:
    """The frames a decoder still holds after its input broke off (an empty list when it cannot say)."""
    try:
        return list(stream.codec_context.decode(None))
    except Exception:  # noqa: BLE001 - a decoder left in a bad state by the loss has nothing to give
        return []


def stream_frames(source: str, *, realtime: bool = False, loop: bool = False, timeout_s: float = 10.0,
                  max_retries: int | None = None, backoff: float = 1.0, max_backoff: float = 30.0,
                  stop: threading.Event | None = None, on_fps=None) -> Iterator[Frame | Gap]:
    """Frames of ``source`` as they arrive, with :class:`Gap` records where it was lost and reopened.

    Args:
        realtime: pace a file at its own frame rate (network sources and devices are paced by themselves).
        loop: a file starts again at its end (network sources are always reopened when they end).
        timeout_s: open and read timeout; a source that delivers nothing for this long is reopened.
        max_retries: reopen attempts in a row before giving up (``None``: forever; a file that ends without
            ``loop`` simply ends).
        backoff, max_backoff: first wait before reopening and its cap (doubling in between).
        stop: set it to end the iteration (checked between frames and during waits).
        on_fps: called with the source's frame rate each time it is opened.

    Raises:
        StreamError: the source could not be opened ``max_retries + 1`` times in a row (or, for a file, at all).
    """
    stop = stop or threading.Event()
    kind = kind_of(source)
    if kind == "file" and not Path(source).exists():
        raise StreamError(f"{source}: no such file (expected a file, a /dev/video device or an rtsp/http URL)")
    watchdog = _Watchdog(timeout_s)
    index, failures, lost_at, reason = 0, 0, None, ""
    try:
        while not stop.is_set():
            got_frames = False
            try:
                for image, fps in _decode(source, timeout_s, realtime, stop, watchdog):
                    if not got_frames:
                        got_frames = True
                        if on_fps is not None:
                            on_fps(fps)
                        if lost_at is not None:
                            yield Gap(start=lost_at, end=time.time(), after_frame=index - 1, reason=reason,
                                      attempts=failures)
                            lost_at = None
                        failures = 0
                    yield Frame(index=index, image=image, arrival=time.time(), monotonic=time.monotonic())
                    index += 1
                if stop.is_set():
                    return
                if kind == "file" and not loop:
                    return
                if kind == "file":
                    continue  # looped file: start again (no gap: nothing was lost)
                reason = "the stream ended"
            except StreamError as err:
                if kind == "file" and index == 0:
                    raise
                reason = str(err)
            if lost_at is None:
                lost_at = time.time()
            failures += 1 if not got_frames else 0
            if max_retries is not None and failures > max_retries:
                raise StreamError(f"{source}: gave up after {failures} failed attempts to reopen ({reason})")
            wait = min(max_backoff, backoff * 2 ** max(0, failures - 1))
            if stop.wait(wait):
                return
    finally:
        watchdog.stop()
