"""``vadkit watch``: score live streams as they record, raise events within seconds, survive drops.

One process, any number of sources, one model. The pipeline, each stage bounded:

    reader thread per source:  decode (io.stream, reconnecting) -> resize -> SnippetWindow (the same class that
                               makes snippets for files) -> bounded snippet queue
                               (frame detectors: frames -> PNG files of the current segment -> bounded segment queue)
                               + a ring buffer of recent frames (JPEG) for event clips and thumbnails
    scorer (main thread):      snippets of all sources batched into one I3D forward pass -> the detector (per
                               source) -> frame scores -> streaming Gaussian smoothing -> event tracker -> outputs
                               (frame detectors: each finished segment scored as one video -> the same smoothing,
                               events and outputs)

**Skip policy.** When the scorer falls behind a live source (a camera, or a file played ``realtime``), the reader
finds its queue full (``queue_snippets`` snippets, ``queue_segments`` segments) and drops the new snippet or segment
whole: its frames get no score and are counted in ``skipped_frames`` (``status.json``); nothing waits in an
unbounded queue. A file read as fast as possible waits for the scorer instead (nothing is lost by waiting).

**Outputs** under ``OUT/<stream>/``: ``scores/NNNNNN.jsonl`` (one chunk every ``chunk_s`` seconds, each written
atomically: a crash loses at most one chunk; rows ``{"frame", "time", "score", "smoothed"}`` and ``{"gap": ...}``
where the source was lost), ``events/NNNN.json`` with ``NNNN.mp4`` (pre- and post-roll) and ``NNNN.jpg``,
``status.json`` and ``latest.jpg`` (refreshed every second, for the viewer). Each event is printed as a JSON line
when it opens and when it closes, and can be POSTed to a webhook (:class:`Webhook`, never blocking the pipeline).

**Detectors.** Every registered detector watches. A feature detector scores snippet features one at a time when it
declares ``stream_context = 1`` (k-NN: each snippet's score depends on that snippet only, so live scores equal file
scores). Other feature detectors (AR-Net, AED) look at the last ``context`` snippets and score the newest one (an
approximation of scoring the whole video, bounded in time and memory; AR-Net's ``arnet_single`` scores each snippet
on its own, so its live scores equal file scores too). Frame detectors (``inputs == "frames"``: sEnDec, STATE, the
objects detector) score the stream in **segments** of ``segment_s`` seconds: the reader writes each segment's frames
losslessly (PNG, fast compression, resized as `vadkit score` resizes) into ``OUT/<stream>/.segments/NNNNNN/``
as they arrive (bounded memory), and the scorer scores each finished segment as one video with the same
``detector.score`` call `vadkit score` makes, keeping the detector's per-video caches (boxes, flow, cubes) inside
the segment folder (:meth:`~vadkit.detectors.Detector.caches_in`), which is deleted after. A segment ends after
``segment_s`` seconds, at a gap and at the end of the source, so a file shorter than a segment is one segment and
gets exactly `vadkit score`'s frame scores. Each segment is one video to the detector: sEnDec's windows, STATE's
cubes and the objects detector's smoothing do not reach across a segment boundary. What a detector carries from one
segment to the next it keeps in the stream's own state (:meth:`~vadkit.detectors.Detector.streaming`): ``boxes:
background`` (STATE, the objects detector) uses a running background, the median of a bounded ring of the stream's
recent frames fed segment by segment (:class:`~vadkit.features.boxes.regions.RunningBackground`), where `vadkit
score` uses the whole video's median. At most ``queue_segments`` finished segments wait on disk.

**Delay.** A snippet is scored after its last frame arrived; a frame detector's frame after its segment ended (up to
``segment_s`` seconds, plus the time to score the segment); smoothing waits ``radius = int(4 sigma + 0.5)`` more
frames; an event opens once ``min_event_frames`` smoothed frames are above the threshold.
"""

from __future__ import annotations

import collections
import json
import queue
import shutil
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vadkit.detectors import VideoItem, collapse_crops
from vadkit.features.extract import SnippetWindow
from vadkit.inference.bundle import LoadedModel
from vadkit.inference.pipeline import scoring_size
from vadkit.io.files import atomic_write_bytes, atomic_write_json, json_safe
from vadkit.io.stream import Frame, Gap, StreamError, kind_of, stream_frames, stream_name
from vadkit.report.events import Event, EventTracker
from vadkit.scoring import DEFAULT_SMOOTHING_SIGMA, StreamingGaussian

JPEG_QUALITY = 80
RING_MAX_SIDE = 640  # frames kept for clips are shrunk to this longest side
PNG_COMPRESSION = 1  # segment frames: lossless, fast (level 1 of 9)
SEGMENTS = ".segments"  # under each stream's folder: the frames of the segments waiting to be scored


@dataclass
class WatchOptions:
    """Settings of a watch run (defaults are `vadkit score`'s where both have them)."""

    realtime: bool = False
    loop: bool = False
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA
    min_event_frames: int = 8
    merge_gap: int = 5
    threshold: float | None = None
    context: int = 32  # snippets seen by detectors that score a whole sequence
    batch_size: int = 8  # snippets per I3D forward pass, across streams
    queue_snippets: int = 8  # per stream: snippets waiting for the scorer before new ones are dropped
    segment_s: float = 10.0  # frame detectors: seconds of frames scored together as one video
    queue_segments: int = 2  # frame detectors, per stream: finished segments waiting (on disk) before new ones drop
    backpressure: bool | None = None  # wait for the scorer instead of skipping (None: for files not read in real time)
    pre_roll_s: float = 3.0
    post_roll_s: float = 3.0
    max_clip_s: float = 60.0
    chunk_s: float = 2.0
    status_s: float = 1.0
    timeout_s: float = 10.0
    max_retries: int | None = None
    webhook: str | None = None
    write_clips: bool = True
    print_events: bool = True


# ---------------------------------------------------------------------------------------------------------------
# Webhook
# ---------------------------------------------------------------------------------------------------------------
class Webhook:
    """POSTs JSON to a URL from a background thread: retries with exponential back-off (``tries`` attempts), a
    bounded queue (the oldest message is dropped, and counted, when it is full), never blocking the caller."""

    def __init__(self, url: str, tries: int = 5, backoff: float = 1.0, timeout: float = 5.0, maxsize: int = 1000):
        self.url, self.tries, self.backoff, self.timeout = url, tries, backoff, timeout
        self.queue: collections.deque = collections.deque(maxlen=maxsize)
        self.dropped = self.sent = self.failed = 0
        self.failures: collections.deque = collections.deque(maxlen=20)  # the latest failed deliveries, reported
        self._last_error = ""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vadkit-webhook")
        self._thread.start()

    def post(self, message: dict) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(message)
        self._wake.set()

    def _send(self, message: dict) -> bool:
        import urllib.request

        data = json.dumps(json_safe(message)).encode()
        for attempt in range(self.tries):
            try:
                request = urllib.request.Request(self.url, data=data, method="POST",
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if response.status < 300:
                        return True
                self._last_error = f"HTTP status {response.status}"
            except Exception as err:  # noqa: BLE001 - any failure is retried, then counted and reported
                self._last_error = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            if self._stop.wait(self.backoff * 2 ** attempt):
                return False
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while self.queue and not self._stop.is_set():
                message = self.queue.popleft()
                if self._send(message):
                    self.sent += 1
                else:
                    self._failed(message)

    def _failed(self, message: dict) -> None:
        """Count a delivery that failed after every try, keep it for ``status.json`` and say so on stderr."""
        self.failed += 1
        failure = {"type": message.get("type"), "stream": message.get("stream"),
                   "start_frame": message.get("start_frame"),
                   "error": self._last_error or "stopped before it could be sent", "at": _iso(time.time())}
        with self._lock:
            self.failures.append(failure)
        sys.stderr.write(f"webhook: delivery to {_without_credentials(self.url)} failed after {self.tries} tries "
                         f"({failure['error']}): {failure['type']} of stream {failure['stream']} at frame "
                         f"{failure['start_frame']}\n")
        sys.stderr.flush()

    def report(self) -> dict:
        """What ``status.json`` says of the webhook: counts and the latest failed deliveries."""
        return {"url": _without_credentials(self.url), "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped, "recent_failures": self._recent()}

    def _recent(self) -> list[dict]:
        with self._lock:
            return list(self.failures)

    def close(self, wait_s: float = 5.0) -> None:
        """Give queued messages up to ``wait_s`` seconds, then stop."""
        end = time.monotonic() + wait_s
        while self.queue and time.monotonic() < end:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=wait_s)
        self._last_error = "not sent before the watch stopped"
        while self.queue:  # what the time given could not deliver is a failed delivery too
            self._failed(self.queue.popleft())


# ---------------------------------------------------------------------------------------------------------------
# One source
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Snippet:
    crops: np.ndarray  # (crops, L, S, S, C)
    first: int  # first frame index
    last: int  # last frame index
    arrival: float  # monotonic arrival of its last frame


@dataclass
class _Segment:
    """A frame detector's unit of a stream: frames ``first … last`` as PNG files in ``folder / "frames"``."""

    folder: Path
    first: int  # first frame index
    last: int  # last frame index
    arrival: float  # monotonic arrival of its last frame

    @property
    def num_frames(self) -> int:
        return self.last - self.first + 1

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class _SegmentWriter:
    """Writes a stream's frames into the folder of the current segment as they arrive; :meth:`push` returns the
    segment once it holds ``segment_s`` seconds of frames, :meth:`cut` the unfinished one (at a gap or the end)."""

    def __init__(self, root: Path, segment_s: float) -> None:
        self.root, self.segment_s = root, segment_s
        self.number = 0
        self.folder: Path | None = None
        self.first = self.last = -1
        self.size: tuple[int, int] | None = None

    def push(self, frame: Frame, fps: float) -> _Segment | None:
        if self.folder is None:
            self.folder = self.root / f"{self.number:06d}"
            shutil.rmtree(self.folder, ignore_errors=True)
            (self.folder / "frames").mkdir(parents=True)
            self.number += 1
            self.first = frame.index
            h, w = frame.image.shape[:2]
            self.size = scoring_size(w, h)
        image = frame.image if self.size is None else cv2.resize(frame.image, self.size, interpolation=cv2.INTER_AREA)
        name = self.folder / "frames" / f"{frame.index - self.first:06d}.png"
        if not cv2.imwrite(str(name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION,
                                                                                 PNG_COMPRESSION]):
            raise OSError(f"cannot write segment frame {name}")
        self.last, self.arrival = frame.index, frame.monotonic
        if self.last - self.first + 1 >= max(1, round(self.segment_s * fps)):
            return self.cut()
        return None

    def cut(self) -> _Segment | None:
        if self.folder is None:
            return None
        segment = _Segment(self.folder, self.first, self.last, self.arrival)
        self.folder = None
        return segment


@dataclass
class _Stream:
    name: str
    source: str
    out: Path
    queue: queue.Queue
    fps: float = 25.0
    state: str = "connecting"
    frames: int = 0
    skipped: int = 0
    gaps: list = field(default_factory=list)
    queue_max_seen: int = 0
    error: str | None = None
    ring: collections.deque = field(default_factory=collections.deque)  # (index, jpeg bytes, wall time, monotonic)
    latest: tuple | None = None
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_dropped: int = -1  # last frame of the latest snippet dropped by the skip policy

    def ring_items(self) -> list:
        with self.lock:
            return list(self.ring)

    def arrivals(self) -> dict[int, tuple[float, float]]:
        """frame index -> (wall time, monotonic time) of the frames still in the ring."""
        return {i: (wall, mono) for i, _, wall, mono in self.ring_items()}


class Watcher:
    """Watch ``sources`` with ``model`` (see the module docstring). ``run()`` returns when every source ended or
    ``stop`` was set; then every open event is closed and every file is complete."""

    def __init__(self, sources: list[str], model: LoadedModel, out: str | Path, options: WatchOptions = WatchOptions(),
                 stop: threading.Event | None = None, emit: Callable[[dict], None] | None = None) -> None:
        detector = model.detector
        if not sources:
            raise ValueError("give at least one source (an rtsp/http URL, a /dev/video device or a file)")
        if not options.segment_s > 0 or options.queue_segments < 1:
            raise ValueError(f"segment_s must be > 0 and queue_segments >= 1, got {options.segment_s} and "
                             f"{options.queue_segments}")
        self.model, self.options, self.out = model, options, Path(out)
        self.detector = detector
        self.segmented = detector.inputs == "frames"  # frame detectors score segments, feature detectors snippets
        model.ready(options.batch_size)
        self.extractor = None if self.segmented else model.extractor(options.batch_size)
        self.settings = None if self.segmented else self.extractor.settings
        self.threshold = float(options.threshold if options.threshold is not None else detector.threshold_)
        self.context = int(getattr(detector, "stream_context", None) or options.context)
        self.stop = stop or threading.Event()
        self.emit = emit or self._print
        self.webhook = Webhook(options.webhook) if options.webhook else None
        names = _unique([stream_name(s) for s in sources])
        bound = options.queue_segments if self.segmented else options.queue_snippets
        self.streams = [_Stream(name=n, source=s, out=self.out / n, queue=queue.Queue(maxsize=bound))
                        for n, s in zip(names, sources)]
        self._scorers = {s.name: _StreamScorer(self, s) for s in self.streams}
        self._threads: list[threading.Thread] = []

    # -- readers ------------------------------------------------------------------------------------------------
    def _reader(self, stream: _Stream) -> None:
        o = self.options
        window, size, ring_size = None, None, ()  # ring_size (): not known yet; None: frames kept as they are
        wait = o.backpressure if o.backpressure is not None else (kind_of(stream.source) == "file" and not o.realtime)
        segments = _SegmentWriter(stream.out / SEGMENTS, o.segment_s) if self.segmented else None
        keep = max(1, int((o.pre_roll_s + o.post_roll_s + o.max_clip_s) * 30))  # frames kept, re-set once fps is known

        def on_fps(fps: float) -> None:
            nonlocal keep
            stream.fps = fps
            keep = max(1, int((o.pre_roll_s + o.post_roll_s + o.max_clip_s) * fps) + 1)

        try:
            for item in stream_frames(stream.source, realtime=o.realtime, loop=o.loop, timeout_s=o.timeout_s,
                                      max_retries=o.max_retries, stop=self.stop, on_fps=on_fps):
                if isinstance(item, Gap):
                    stream.gaps.append(item)
                    stream.state = "connected"
                    window, ring_size = None, ()  # no snippet spans a gap (and the size may change)
                    if segments is not None:  # nor a segment
                        self._put_segment(stream, segments.cut(), wait)
                    self._put(stream, item, block=True)
                    continue
                stream.state = "connected"
                frame: Frame = item
                if ring_size == ():
                    ring_size = _shrunk(frame.image.shape[1], frame.image.shape[0], RING_MAX_SIDE)
                if window is None and segments is None:
                    h, w = frame.image.shape[:2]
                    size = self.settings.frame_size(w, h)
                    window = SnippetWindow(self.settings)
                    window_first = frame.index
                stream.frames += 1
                small = frame.image if ring_size is None else cv2.resize(frame.image, ring_size,
                                                                         interpolation=cv2.INTER_AREA)
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                with stream.lock:
                    stream.ring.append((frame.index, data.tobytes() if ok else b"", frame.arrival, frame.monotonic))
                    while len(stream.ring) > keep:
                        stream.ring.popleft()
                    stream.latest = stream.ring[-1]
                if segments is not None:
                    self._put_segment(stream, segments.push(frame, stream.fps), wait)
                    continue
                snippet = window.push(cv2.resize(frame.image, size, interpolation=cv2.INTER_LINEAR))
                if snippet is not None:
                    last = window_first + window.frames_seen - 1
                    item = _Snippet(snippet, last - self.settings.snippet_len + 1, last, frame.monotonic)
                    if not self._put(stream, item, block=wait):
                        stream.skipped += self.settings.stride
                        stream.last_dropped = item.last
            stream.state = "stopped" if self.stop.is_set() else "ended"
        except StreamError as err:
            stream.state, stream.error = "failed", str(err)
        except Exception as err:  # noqa: BLE001 - reported in status.json and on stderr, the others go on
            stream.state, stream.error = "failed", f"{type(err).__name__}: {err}"
        finally:
            if segments is not None:
                self._put_segment(stream, segments.cut(), block=True)  # the frames since the last segment
            self._put(stream, None, block=True)  # end of this stream

    def _put_segment(self, stream: _Stream, segment: _Segment | None, block: bool) -> None:
        """Queue a finished segment; one the queue has no room for is dropped whole (the skip policy)."""
        if segment is not None and not self._put(stream, segment, block=block):
            segment.discard()
            stream.skipped += segment.num_frames
            stream.last_dropped = segment.last

    def _put(self, stream: _Stream, item, block: bool) -> bool:
        while True:
            try:
                stream.queue.put(item, block=block, timeout=0.2 if block else None)
                stream.queue_max_seen = max(stream.queue_max_seen, stream.queue.qsize())
                return True
            except queue.Full:
                if not block:
                    return False
                if self.stop.is_set() and item is not None:
                    return False

    # -- the scorer ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        for stream in self.streams:
            stream.out.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(stream.out / SEGMENTS, ignore_errors=True)  # the frames of an interrupted earlier run
            thread = threading.Thread(target=self._reader, args=(stream,), daemon=True, name=f"vadkit-read-{stream.name}")
            thread.start()
            self._threads.append(thread)
        last_status = 0.0
        try:
            while not all(s.done for s in self.streams):
                batch = self._gather()
                if batch:
                    self._score(batch)
                now = time.monotonic()
                if now - last_status >= self.options.status_s:
                    for scorer in self._scorers.values():
                        scorer.periodic()
                    last_status = now
        finally:
            self.stop.set()
            for thread in self._threads:
                thread.join(timeout=self.options.timeout_s + 5)
            for stream in self.streams:  # what is still queued after a stop
                while True:
                    try:
                        item = stream.queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, _Snippet):
                        self._score([(stream, item)])
                    elif isinstance(item, _Segment):
                        self._scorers[stream.name].segment(item)
                    elif isinstance(item, Gap):
                        self._scorers[stream.name].gap(item)
            for scorer in self._scorers.values():
                scorer.finish()
            for stream in self.streams:
                shutil.rmtree(stream.out / SEGMENTS, ignore_errors=True)
            if self.webhook is not None:
                self.webhook.close()
                for scorer in self._scorers.values():  # status.json with the deliveries that failed at the end
                    scorer._write_status(final=True)
        return {s.name: self._scorers[s.name].summary() for s in self.streams}

    def _gather(self) -> list[tuple[_Stream, _Snippet]]:
        """Up to ``batch_size`` snippets, round-robin over the streams; control items handled on the way."""
        batch: list[tuple[_Stream, _Snippet]] = []
        deadline = time.monotonic() + 0.05
        while len(batch) < self.options.batch_size:
            took = False
            for stream in self.streams:
                if stream.done:
                    continue
                try:
                    item = stream.queue.get_nowait()
                except queue.Empty:
                    continue
                took = True
                if item is None:
                    if batch:
                        self._score(batch)
                        batch = []
                    stream.done = True
                    self._scorers[stream.name].end_of_source()
                elif isinstance(item, (Gap, _Segment)):
                    if batch:
                        self._score(batch)
                        batch = []
                    if isinstance(item, Gap):
                        self._scorers[stream.name].gap(item)
                    else:
                        self._scorers[stream.name].segment(item)
                else:
                    batch.append((stream, item))
                if len(batch) >= self.options.batch_size:
                    break
            if not took:
                if batch or time.monotonic() > deadline or all(s.done for s in self.streams):
                    break
                time.sleep(0.005)
        return batch

    def _score(self, batch: list[tuple[_Stream, _Snippet]]) -> None:
        features = self.extractor.forward([snippet.crops for _, snippet in batch])  # (B, crops, 1024)
        for (stream, snippet), f in zip(batch, features):
            self._scorers[stream.name].snippet(snippet, collapse_crops(f[None], self.detector.crops_)[0])

    @staticmethod
    def _print(message: dict) -> None:
        sys.stdout.write(json.dumps(json_safe(message)) + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------------------
# Per-stream scoring state: detector context, frame scores, smoothing, events, files
# ---------------------------------------------------------------------------------------------------------------
class _StreamScorer:
    def __init__(self, watcher: Watcher, stream: _Stream) -> None:
        self.w, self.s = watcher, stream
        o = watcher.options
        self.context: collections.deque = collections.deque(maxlen=watcher.context)
        self.smoother = StreamingGaussian(o.smoothing_sigma)
        self.tracker: EventTracker | None = None
        self.frame_total: dict[int, float] = {}  # frame -> (sum, count) of overlapping snippet scores
        self.frame_count: dict[int, int] = {}
        self.final_upto = None  # frames below this index have their final raw score
        self.series_next = None  # next frame index to smooth in this series (scores without a gap)
        self.last_score = None
        self.last_snippet: _Snippet | _Segment | None = None  # the latest snippet (or segment) scored
        self.rows: list[dict] = []
        self.chunk_index = 0
        self.chunk_started = time.monotonic()
        self.events_written = 0
        self.pending_clips: list[tuple[int, Event]] = []
        self.latencies: list[float] = []
        self.open_number: int | None = None
        self.scored_frames = 0
        self.last_smoothed = None
        self._pending_raw: collections.deque = collections.deque()  # (frame, raw score) waiting for smoothing
        self.carried: dict = {}  # what the detector carries from one segment of this stream to the next

    # -- scores ---------------------------------------------------------------------------------------------------
    def snippet(self, snippet: _Snippet, feature: np.ndarray) -> None:
        g = self.w.detector.geometry
        if self.last_snippet is not None and snippet.first > self.last_snippet.first + g.stride:
            self._settle(upto=self.last_snippet.last + 1)  # a dropped snippet (skip policy): close the series
            self.context.clear()
        self._start_series(snippet.first)
        self.context.append(feature)
        score = self._score_newest()
        for f in range(snippet.first, snippet.last + 1):
            self.frame_total[f] = self.frame_total.get(f, 0.0) + score
            self.frame_count[f] = self.frame_count.get(f, 0) + 1
        self.last_snippet = snippet
        self._release(upto=snippet.first + g.stride)  # frames before the next snippet's start are final
        self.last_score = score

    def _start_series(self, first: int) -> None:
        if self.series_next is None:
            self.series_next = first
            self.tracker = EventTracker(self.w.threshold, self.s.fps, self.w.options.min_event_frames,
                                        self.w.options.merge_gap, first_frame=first)

    def segment(self, segment: _Segment) -> None:
        """A frame detector's finished segment: scored as one video, with the call `vadkit score` makes, its caches
        kept in the segment's folder; the folder is deleted after."""
        if self.last_snippet is not None and segment.first != self.last_snippet.last + 1:
            self._settle(upto=self.last_snippet.last + 1)  # a dropped segment (skip policy): close the series
        item = VideoItem(id=f"{self.s.name}/segment-{segment.folder.name}", num_frames=segment.num_frames,
                         path=segment.folder / "frames", fps=self.s.fps)
        try:
            with self.w.detector.streaming(self.carried, segment.folder / "cache"):
                values = self.w.detector.score(item).values
        except Exception as err:  # noqa: BLE001 - one segment that cannot be scored never stops the stream
            self.s.error = f"frames {segment.first}-{segment.last} not scored: {type(err).__name__}: {err}"
            sys.stderr.write(f"{self.s.name}: {self.s.error}\n")
            self.s.skipped += segment.num_frames
            values = None
        finally:
            segment.discard()
        if values is None:
            self._settle(upto=self.last_snippet.last + 1 if self.last_snippet is not None else None)
            self.last_snippet = None
            return
        self._start_series(segment.first)
        scored = np.flatnonzero(np.isfinite(values))
        upto = segment.first + (int(scored[-1]) + 1 if scored.size else 0)  # a dropped tail stays unscored
        for f in range(segment.first, upto):
            self.frame_total[f], self.frame_count[f] = float(values[f - segment.first]), 1
        self.last_snippet = segment
        self._release(upto=upto)

    def _score_newest(self) -> float:
        g = self.w.detector.geometry
        features = np.stack(list(self.context))  # (K, F)
        k = features.shape[0]
        num_frames = (k - 1) * g.stride + g.snippet_len
        item = VideoItem(id=self.s.name, num_frames=num_frames, load_features=lambda: features,
                         extraction=self.w.detector.extraction_)
        values = self.w.detector.score(item).values
        newest = values[(k - 1) * g.stride:]
        return float(np.nanmean(newest))

    def _release(self, upto: int) -> None:
        """Frames ``series_next … upto-1`` have their final raw scores: smooth them and track events."""
        if self.series_next is None or upto <= self.series_next:
            return
        frames = range(self.series_next, upto)
        raw = np.array([self.frame_total.pop(f) / self.frame_count.pop(f) for f in frames])
        self.series_next = upto
        self._advance(frames.start, raw, self.smoother.push(raw))

    def _advance(self, first_raw: int, raw: np.ndarray, smoothed: np.ndarray) -> None:
        """Queue raw scores of frames ``first_raw…``; write rows and track events for the smoothed values, which
        belong to the oldest queued frames."""
        for i, value in enumerate(raw.tolist()):
            self._pending_raw.append((first_raw + i, value))
        if len(smoothed):
            self._smoothed(smoothed, self.s.arrivals())

    def _smoothed(self, smoothed: np.ndarray, arrivals: dict) -> None:
        for sm in smoothed.tolist():
            frame, value = self._pending_raw.popleft()
            wall = arrivals.get(frame, (time.time(), None))[0]
            self.rows.append({"frame": frame, "time": round(wall, 3), "score": value, "smoothed": sm})
            self.scored_frames += 1
            self.last_smoothed = sm
        for kind, event in self.tracker.push(smoothed):
            self._event(kind, event, arrivals)

    def _settle(self, upto: int | None = None) -> None:
        """End the current series: frames up to ``upto`` (default: every frame with a score) are released, the
        smoother flushed (the end padded as the batch version pads it) and the open event closed."""
        if self.series_next is None:
            return
        if upto is None:
            upto = max(self.frame_total) + 1 if self.frame_total else self.series_next
        self._release(upto)
        arrivals = self.s.arrivals()
        rest = self.smoother.flush()
        if len(rest):
            self._smoothed(rest, arrivals)
        for kind, event in self.tracker.finish():
            self._event(kind, event, arrivals)
        self.frame_total.clear()
        self.frame_count.clear()
        self.series_next = None
        self.tracker = None

    # -- control ---------------------------------------------------------------------------------------------------
    def gap(self, gap: Gap) -> None:
        self._settle(upto=(self.last_snippet.last + 1) if self.last_snippet else None)
        self.context.clear()
        self.carried.clear()  # a reopened camera may look elsewhere, hours later: its background starts afresh
        self.last_snippet = None
        self.rows.append({"gap": {"start": gap.start, "end": gap.end, "after_frame": gap.after_frame,
                                  "reason": gap.reason, "attempts": gap.attempts}})
        self._flush_rows()

    def end_of_source(self) -> None:
        """The source ended (a file): frames after the last snippet take its score (``tail: extend``); a frame
        detector's last segment was cut at the end and scored whole."""
        if self.w.segmented:
            self._settle()
            return
        if self.last_snippet is not None and self.s.frames:
            ring = self.s.ring_items()
            last_frame = ring[-1][0] if ring else self.last_snippet.last
            extend = (self.w.detector.args.get("tail", "extend") == "extend"
                      and self.s.last_dropped < self.last_snippet.last)  # not when the tail's snippet was dropped
            if extend:  # the frames after the last full snippet (fewer than a stride)
                stop = min(last_frame, self.last_snippet.first + self.w.detector.geometry.stride
                           + self.w.detector.geometry.snippet_len - 1)
                for f in range(self.last_snippet.last + 1, stop + 1):
                    self.frame_total[f], self.frame_count[f] = self.last_score, 1
            self._settle(upto=None if extend else self.last_snippet.last + 1)

    def finish(self) -> None:
        self._settle(upto=(self.last_snippet.last + 1) if self.last_snippet else None)
        self._write_clips(final=True)
        self._flush_rows()
        self._write_status(final=True)

    def periodic(self) -> None:
        self._write_clips(final=False)
        if time.monotonic() - self.chunk_started >= self.w.options.chunk_s:
            self._flush_rows()
        self._write_status(final=False)

    # -- events ---------------------------------------------------------------------------------------------------
    def _event(self, kind: str, event: Event, arrivals: dict) -> None:
        start_arrival = arrivals.get(event.start_frame)
        message = {"type": "event_open" if kind == "open" else "event", "stream": self.s.name, "source": self.s.source,
                   "start": _iso(start_arrival[0]) if start_arrival else None,
                   "end": _iso(arrivals[event.end_frame][0]) if kind == "close" and event.end_frame in arrivals else None,
                   "start_frame": event.start_frame, "end_frame": event.end_frame if kind == "close" else None,
                   "peak_score": event.peak_score, "peak_frame": event.peak_frame, "threshold": self.w.threshold,
                   "emitted": _iso(time.time())}
        if kind == "open":
            self.open_number = self.events_written
            now = time.monotonic()
            if start_arrival and start_arrival[1] is not None:
                message["latency_s"] = round(now - start_arrival[1], 3)  # from the event's first frame
                self.latencies.append(message["latency_s"])
            newest = arrivals.get(self.last_snippet.last) if self.last_snippet is not None else None
            if newest and newest[1] is not None:  # from the frame that completed the deciding snippet
                message["processing_s"] = round(now - newest[1], 3)
        else:
            number = self.open_number if self.open_number is not None else self.events_written
            self.open_number = None
            self.events_written = number + 1
            base = self.s.out / "events" / f"{number:04d}"
            message.update(number=number, json=str(base.with_suffix(".json")))
            if self.w.options.write_clips:
                message.update(clip=str(base.with_suffix(".mp4")), thumbnail=str(base.with_suffix(".jpg")))
                self.pending_clips.append((number, event))
            atomic_write_json(base.with_suffix(".json"), {**message, "event": event.to_dict()})
        self.w.emit(message)
        if self.w.webhook is not None:
            self.w.webhook.post(message)

    def _write_clips(self, final: bool) -> None:
        from vadkit.io import write_video

        if not self.pending_clips:
            return
        o = self.w.options
        ring = self.s.ring_items()
        latest = ring[-1][0] if ring else -1
        keep = []
        for number, event in self.pending_clips:
            first = event.start_frame - int(o.pre_roll_s * self.s.fps)
            last = event.end_frame + int(o.post_roll_s * self.s.fps)
            if latest < last and not final:
                keep.append((number, event))
                continue
            frames = [(i, data) for i, data, _, _ in ring if first <= i <= last and data]
            base = self.s.out / "events" / f"{number:04d}"
            peak = next((data for i, data in frames if i == event.peak_frame), frames[-1][1] if frames else None)
            if peak:
                atomic_write_bytes(base.with_suffix(".jpg"), peak)
            if frames:
                decoded = (cv2.cvtColor(cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                           for _, d in frames)
                write_video(base.with_suffix(".mp4"), decoded, fps=self.s.fps)
        self.pending_clips = keep

    # -- files ----------------------------------------------------------------------------------------------------
    def _flush_rows(self) -> None:
        self.chunk_started = time.monotonic()
        if not self.rows:
            return
        text = "".join(json.dumps(json_safe(r)) + "\n" for r in self.rows)
        atomic_write_bytes(self.s.out / "scores" / f"{self.chunk_index:06d}.jsonl", text.encode())
        self.chunk_index += 1
        self.rows = []

    def _write_status(self, final: bool) -> None:
        s = self.s
        if s.latest is not None:
            atomic_write_bytes(s.out / "latest.jpg", s.latest[1])
        open_event = self.tracker.open_event if self.tracker is not None else None
        atomic_write_json(s.out / "status.json", {
            "stream": s.name, "source": s.source, "state": "stopped" if final and s.state in ("connected", "connecting") else s.state,
            "error": s.error, "fps": s.fps, "frames": s.frames, "scored_frames": self.scored_frames,
            "skipped_frames": s.skipped, "gaps": len(s.gaps), "queue_bound": s.queue.maxsize,
            "queue_max_seen": s.queue_max_seen, "events": self.events_written,
            "open_event": open_event.to_dict() if open_event else None, "last_smoothed": self.last_smoothed,
            "threshold": self.w.threshold, "model": self.w.model.info(), "updated": _iso(time.time()),
            "score_chunks": self.chunk_index, "webhook": self.w.webhook.report() if self.w.webhook else None})

    def summary(self) -> dict:
        s = self.s
        return {"stream": s.name, "source": s.source, "state": s.state, "error": s.error, "frames": s.frames,
                "scored_frames": self.scored_frames, "skipped_frames": s.skipped, "gaps": len(s.gaps),
                "events": self.events_written, "queue_max_seen": s.queue_max_seen, "queue_bound": s.queue.maxsize,
                "median_open_latency_s": float(np.median(self.latencies)) if self.latencies else None,
                "folder": str(s.out), "webhook": self.w.webhook.report() if self.w.webhook else None}


def _shrunk(width: int, height: int, side: int) -> tuple[int, int] | None:
    longest = max(width, height)
    if longest <= side:
        return None
    scale = side / longest
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part or a query (which may hold a token), for messages."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")) if parts.hostname else url


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def watch(sources: list[str], model: LoadedModel, out: str | Path, options: WatchOptions = WatchOptions(),
          stop: threading.Event | None = None, emit: Callable[[dict], None] | None = None) -> dict:
    """Watch ``sources`` until they end or ``stop`` is set; returns a summary per stream."""
    for source in sources:
        if kind_of(source) == "file" and not Path(source).exists():
            raise FileNotFoundError(f"{source}: no such file (expected a file, a /dev/video device or an rtsp/http URL)")
    return Watcher(sources, model, out, options, stop, emit).run()
