"""Receiving an uploaded video: streamed to disk with a size limit, then checked to really be a video.

The multipart body is parsed as it arrives; the file part goes straight to ``<uploads>/.incoming/<random>.part``
(a hidden folder the viewer never lists or serves), so an upload over the limit is cut off as soon as it passes
the limit, and nothing over it ever lands on disk. A complete file is then opened with PyAV (the bytes, not the
name, decide whether it is a video) and renamed to a safe generated name ``<stem>-<random><suffix>``.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Optional

from vadkit.io import VIDEO_EXTENSIONS

FIELD_NAME = "file"
MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file part
INCOMING = ".incoming"
MIN_FRAMES = 2  # one decodable frame is a still image, not a video
MAX_PIXELS = 3840 * 2160  # larger frames are refused (a tiny file can hold huge frames)


class UploadError(Exception):
    """A refused upload: ``status`` is the HTTP status to answer with (400, 413, 415; 503 when the server is busy
    receiving others, to be tried again later)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SavedUpload:
    """A received file: where it lies, the name the user gave it, its size in bytes."""

    path: Path
    original_name: str
    size: int


class IncomingLimits:
    """Bounds the uploads being received at once and the bytes they hold in ``.incoming`` together (a slow client
    holds its place and its bytes until its upload ends). An upload past either bound is refused with 503.

    An upload announcing its length (``Content-Length``) reserves it at the start; one that does not is counted
    as its bytes arrive."""

    def __init__(self, max_uploads: int, max_bytes: int) -> None:
        if max_uploads < 1 or max_bytes < 1:
            raise ValueError(f"expected at least one upload and one byte in progress, got {max_uploads} uploads "
                             f"and {max_bytes} bytes")
        self.max_uploads, self.max_bytes = max_uploads, max_bytes
        self.active = self.bytes = 0
        self._lock = threading.Lock()

    def enter(self, announced: int) -> "_Slot":
        """A place for one upload announcing ``announced`` bytes (0: unknown), or ``UploadError(503)``."""
        with self._lock:
            if self.active >= self.max_uploads:
                raise UploadError(503, f"{self.max_uploads} uploads are already being received; try again later")
            if self.bytes + announced > self.max_bytes:
                raise UploadError(503, f"uploads in progress hold {_megabytes(self.bytes)} of the "
                                       f"{_megabytes(self.max_bytes)} allowed; try again later")
            self.active += 1
            self.bytes += announced
        return _Slot(self, announced)


class _Slot:
    """One upload's place in :class:`IncomingLimits`: its charge is the larger of what it announced and received."""

    def __init__(self, limits: IncomingLimits, announced: int) -> None:
        self.limits, self.charge, self.received = limits, announced, 0

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` more written to disk, or ``UploadError(503)`` when all uploads would hold too much."""
        self.received += nbytes
        extra = max(self.received - self.charge, 0)
        if extra:
            limits = self.limits
            with limits._lock:
                if limits.bytes + extra > limits.max_bytes:
                    raise UploadError(503, f"uploads in progress would hold more than the "
                                           f"{_megabytes(limits.max_bytes)} allowed; try again later")
                limits.bytes += extra
            self.charge += extra

    def leave(self) -> None:
        with self.limits._lock:
            self.limits.active -= 1
            self.limits.bytes -= self.charge
        self.charge = 0


def safe_stem(filename: str, max_length: int = 40) -> str:
    """A file-system- and URL-safe stem from a user's file name (never empty, never hidden)."""
    stem = Path(filename.replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")
    return stem[:max_length] or "upload"


def safe_suffix(filename: str) -> str:
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if suffix in VIDEO_EXTENSIONS else ".mp4"


class _MultipartSink:
    """python-multipart callbacks that keep the first ``file`` part, counting its bytes against the limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.filename: Optional[str] = None
        self.pending: list[bytes] = []
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        is_file = params.get(b"name") == FIELD_NAME.encode() and b"filename" in params
        self._in_file = is_file and self.filename is None
        if self._in_file:
            self.filename = params[b"filename"].decode("utf-8", "replace") or "upload"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise UploadError(413, f"upload larger than the limit of {_megabytes(self.max_bytes)}")
        self.pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._in_file = False


async def receive_upload(headers, stream: AsyncIterator[bytes], uploads: Path, max_bytes: int,
                         limits: IncomingLimits | None = None) -> SavedUpload:
    """Stream a ``multipart/form-data`` body with a ``file`` field to ``uploads``; validate it as a video.

    Args:
        headers: the request headers (``content-type``, optionally ``content-length``).
        stream: the request body, chunk by chunk.
        uploads: folder the video is saved in (created if missing).
        max_bytes: the largest file accepted.
        limits: the bounds on all uploads in progress together (none when ``None``).

    Raises:
        UploadError: 400 (not a multipart form with a ``file`` field), 413 (over ``max_bytes``), 415 (not a video),
            503 (``limits`` reached: too many uploads in progress, or too many bytes).
    """
    import python_multipart
    from python_multipart.multipart import parse_options_header
    from starlette.concurrency import run_in_threadpool

    content_type, params = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(400, f"expected a multipart/form-data body with a {FIELD_NAME!r} field, "
                               f"got content type {content_type.decode('latin-1') or '(none)'!r}")
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + MULTIPART_SLACK:
        raise UploadError(413, f"upload of {_megabytes(int(length))} is larger than the limit of "
                               f"{_megabytes(max_bytes)}")

    announced = min(int(length), max_bytes) if length is not None and length.isdigit() else 0
    slot = limits.enter(announced) if limits is not None else None
    incoming = uploads / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    part = incoming / f"{uuid.uuid4().hex}.part"
    sink = _MultipartSink(max_bytes)
    parser = python_multipart.MultipartParser(params[b"boundary"], sink.callbacks())
    handle: Optional[BinaryIO] = None
    try:
        handle = open(part, "wb")
        async for chunk in stream:
            parser.write(chunk)
            if sink.pending:
                data, sink.pending = b"".join(sink.pending), []
                if slot is not None:
                    slot.add(len(data))
                await run_in_threadpool(handle.write, data)
        parser.finalize()
        handle.close()
        if sink.filename is None:
            raise UploadError(400, f"the form has no file field named {FIELD_NAME!r}")
        if sink.size == 0:
            raise UploadError(415, "the uploaded file is empty, not a video")
        await run_in_threadpool(check_video, part)
        final = _unique_name(uploads, sink.filename)
        os.replace(part, final)
        return SavedUpload(path=final, original_name=sink.filename, size=sink.size)
    except python_multipart.exceptions.MultipartParseError as err:
        raise UploadError(400, f"malformed multipart body: {err}") from err
    finally:
        if handle is not None and not handle.closed:
            handle.close()
        if part.exists():
            part.unlink()
        if slot is not None:
            slot.leave()


def check_video(path: Path) -> None:
    """Raise ``UploadError(415)`` unless PyAV finds a video stream with at least two decodable frames."""
    from vadkit.io import VideoReadError, open_video

    try:
        with open_video(path, backend="pyav") as source:
            if source.num_frames < MIN_FRAMES:
                raise UploadError(415, f"not a video: found {source.num_frames} frame(s), "
                                       f"expected at least {MIN_FRAMES}")
            if source.width * source.height > MAX_PIXELS:
                raise UploadError(413, f"frames of {source.width}x{source.height} are larger than the viewer accepts "
                                       f"(at most {MAX_PIXELS / 1e6:.1f} megapixels, e.g. 3840x2160)")
            next(iter(source.frames(0, 1)))
    except VideoReadError as err:
        raise UploadError(415, f"not a video file that can be decoded ({_reason(err, path)})") from err
    except (StopIteration, IndexError) as err:
        raise UploadError(415, "not a video: no frame could be decoded") from err


def _reason(err: Exception, path: Path) -> str:
    """The decoder's message without the server-side path."""
    return str(err).replace(str(path), "the upload")


def _unique_name(uploads: Path, filename: str) -> Path:
    return uploads / f"{safe_stem(filename)}-{uuid.uuid4().hex[:8]}{safe_suffix(filename)}"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size} bytes"
