"""Live pages: the viewer reading a ``vadkit watch --out`` folder while the watcher writes it.

A watch folder holds one subfolder per stream (see ``vadkit.inference.watch``): ``status.json`` and ``latest.jpg``
(rewritten about every second), ``scores/NNNNNN.jsonl`` (numbered chunks, each written once, atomically; rows
``{"frame", "time", "score", "smoothed"}`` or ``{"gap": ...}``) and ``events/NNNN.json|.jpg|.mp4`` (a closed event;
its clip and thumbnail follow after the post-roll). Everything here only reads those files, so the viewer and the
watcher can run in different processes, or on different machines sharing a disk.

Routes (added by :func:`add_live_routes`)::

    GET /api/live                       the streams: their status
    GET /api/live/{stream}              status, the last ``seconds`` of scores, recent events, the frame's URL
    GET /api/live/{stream}/events       server-sent events: ``status``, ``scores`` (new rows), ``event`` (a closed
                                        event, sent again once its thumbnail exists) and ``frame`` (a new
                                        latest.jpg); each carries an ``id`` ("chunk.event") so that a reconnecting
                                        EventSource resumes where it stopped

Files (the frame, thumbnails, clips) are served by the catalog under ``/files/live/{stream}/...``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any, AsyncIterator, Optional

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from vadkit.io.files import json_safe
from vadkit.viewer.catalog import UnsafePathError, file_url

LIVE_KEY = "live"  # the catalog root of the watch folder
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STATUS_FILE = "status.json"
FRAME_FILE = "latest.jpg"
POLL_S = 0.25  # how often the event stream looks at the folder
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
STREAM_LIFETIME_S = 600.0  # one response at most this long; the browser's EventSource reconnects and resumes
RECENT_EVENTS = 20


class WatchFolder:
    """Reads a ``vadkit watch`` output folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def folder(self, stream: str) -> Path:
        """The stream's folder; UnsafePathError for a name that is not a plain folder name, FileNotFoundError for a
        stream this folder does not hold."""
        if not STREAM_NAME.match(stream):
            raise UnsafePathError(f"not a stream name: {stream[:100]!r} (expected letters, digits, '.', '_', '-')")
        folder = self.root / stream
        if not (folder / STATUS_FILE).is_file() or folder.is_symlink():
            raise FileNotFoundError(f"no stream {stream!r} in {self.root} (expected {stream}/{STATUS_FILE})")
        return folder

    def streams(self) -> list[dict]:
        """Every stream's status (sorted by name), with its page's data URL."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and STREAM_NAME.match(p.name)):
            status = _read_json(folder / STATUS_FILE)
            if status is not None:
                found.append(self._summary(folder.name, status))
        return found

    def _summary(self, stream: str, status: dict) -> dict:
        keys = ("source", "state", "error", "fps", "frames", "scored_frames", "skipped_frames", "gaps", "events",
                "open_event", "last_smoothed", "threshold", "updated", "score_chunks", "queue_bound", "queue_max_seen")
        summary = {"id": stream, "name": stream, **{k: status.get(k) for k in keys}}
        summary["model"] = (status.get("model") or {}).get("name") if isinstance(status.get("model"), dict) else None
        summary["age_s"] = self.age(stream)
        return summary

    def age(self, stream: str) -> Optional[float]:
        """Seconds since the watcher last rewrote the status (a stream whose watcher died grows old)."""
        try:
            return round(time.time() - (self.root / stream / STATUS_FILE).stat().st_mtime, 1)
        except OSError:
            return None

    def status(self, stream: str) -> dict:
        folder = self.folder(stream)
        status = _read_json(folder / STATUS_FILE)
        if status is None:
            raise FileNotFoundError(f"{folder / STATUS_FILE}: not readable JSON")
        return self._summary(stream, status)

    def frame_url(self, stream: str) -> Optional[str]:
        path = self.folder(stream) / FRAME_FILE
        try:
            version = path.stat().st_mtime_ns
        except OSError:
            return None
        return f"{file_url(f'{LIVE_KEY}/{stream}/{FRAME_FILE}')}?v={version}"

    # -- scores -----------------------------------------------------------------------------------------------------
    def chunk(self, stream: str, number: int) -> Optional[list[dict]]:
        """Rows of score chunk ``number`` (None when it is not written yet)."""
        path = self.folder(stream) / "scores" / f"{number:06d}.jsonl"
        try:
            text = path.read_text()
        except OSError:
            return None
        rows = []
        for line in text.splitlines():
            try:
                rows.append(json_safe(json.loads(line)))
            except ValueError:
                continue  # never expected (chunks are written atomically): skip, do not break the page
        return rows

    def recent_rows(self, stream: str, seconds: float, chunks: int) -> list[dict]:
        """The rows of the last ``seconds`` of scored frames (by the stream's frame rate), read from the newest of the
        first ``chunks`` chunks backwards: bounded, however long the watcher has run."""
        fps = float(self.status(stream).get("fps") or 25.0)
        wanted = max(1, int(seconds * fps))
        rows: list[dict] = []
        frames = 0
        number = chunks - 1
        while number >= 0 and frames < wanted:
            chunk = self.chunk(stream, number) or []
            rows[:0] = chunk
            frames += sum(1 for r in chunk if "frame" in r)
            number -= 1
        scored = [i for i, r in enumerate(rows) if "frame" in r]
        if len(scored) > wanted:
            rows = rows[scored[-wanted]:]
        return rows

    # -- events -----------------------------------------------------------------------------------------------------
    def event(self, stream: str, number: int) -> Optional[dict]:
        """Closed event ``number`` with the URLs of its thumbnail and clip once they exist (None: not written)."""
        base = self.folder(stream) / "events" / f"{number:04d}"
        saved = _read_json(base.with_suffix(".json"))
        if saved is None:
            return None
        event = {**(saved.get("event") or {}), "number": number, "start": saved.get("start"), "end": saved.get("end"),
                 "emitted": saved.get("emitted")}
        for key, suffix in (("thumbnail_url", ".jpg"), ("clip_url", ".mp4")):
            if base.with_suffix(suffix).is_file():
                event[key] = file_url(f"{LIVE_KEY}/{stream}/events/{base.name}{suffix}")
        return event

    def recent_events(self, stream: str, count: int, last: int = RECENT_EVENTS) -> list[dict]:
        """The newest ``last`` of the first ``count`` closed events, newest first."""
        events = (self.event(stream, n) for n in range(count - 1, max(-1, count - 1 - last), -1))
        return [e for e in events if e is not None]

    def page(self, stream: str, seconds: float) -> dict:
        """What a live page starts from: the status, recent scores and events, and where the event stream resumes."""
        status = self.status(stream)
        chunks, events = int(status.get("score_chunks") or 0), int(status.get("events") or 0)
        return {**status, "rows": self.recent_rows(stream, seconds, chunks),
                "recent_events": self.recent_events(stream, events), "frame_url": self.frame_url(stream),
                "resume": {"chunk": chunks, "event": events}}


# ---------------------------------------------------------------------------------------------------------------
# The event stream
# ---------------------------------------------------------------------------------------------------------------
def sse(kind: str, data: Any, event_id: Optional[str] = None) -> str:
    """One server-sent event (``data`` as one JSON line)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, allow_nan=False, default=str)}\n\n"


def resume_point(last_event_id: Optional[str], chunk: Optional[int], event: Optional[int],
                 status: dict) -> tuple[int, int]:
    """Where an event stream starts: the browser's Last-Event-ID ("chunk.event") after a reconnection, else the
    query's ``chunk``/``event``, else now."""
    if last_event_id:
        match = re.fullmatch(r"(\d+)\.(\d+)", last_event_id.strip())
        if match:
            return int(match.group(1)), int(match.group(2))
    return (int(status.get("score_chunks") or 0) if chunk is None else chunk,
            int(status.get("events") or 0) if event is None else event)


async def live_events(folder: WatchFolder, stream: str, request: Request, chunk: int, event: int,
                      lifetime_s: float = STREAM_LIFETIME_S) -> AsyncIterator[str]:
    """Follow one stream's folder: yield what changed, until the client leaves or ``lifetime_s`` passes."""
    status_version = frame_version = None
    waiting_thumbnails: dict[int, float] = {}  # closed events whose thumbnail is not written yet: since when
    started = last_sent = time.monotonic()
    yield "retry: 1000\n\n"
    while time.monotonic() - started < lifetime_s:
        if await request.is_disconnected():
            return
        sent = []
        while (rows := folder.chunk(stream, chunk)) is not None:  # new score chunks, in order
            chunk += 1
            sent.append(sse("scores", {"chunk": chunk - 1, "rows": rows}, f"{chunk}.{event}"))
        while (closed := folder.event(stream, event)) is not None:  # new closed events
            event += 1
            if "thumbnail_url" not in closed:
                waiting_thumbnails[closed["number"]] = time.monotonic()
            sent.append(sse("event", closed, f"{chunk}.{event}"))
        for number, since in list(waiting_thumbnails.items()):  # the clip follows after the post-roll
            again = folder.event(stream, number)
            if again is not None and "thumbnail_url" in again:
                del waiting_thumbnails[number]
                sent.append(sse("event", again))
            elif time.monotonic() - since > 120:
                del waiting_thumbnails[number]
        version = _mtime(folder.root / stream / STATUS_FILE)
        if version != status_version:
            status_version = version
            try:
                sent.append(sse("status", folder.status(stream)))
            except FileNotFoundError:
                pass  # replaced at this instant; the next look reads it
        version = _mtime(folder.root / stream / FRAME_FILE)
        if version is not None and version != frame_version:
            frame_version = version
            sent.append(sse("frame", {"url": folder.frame_url(stream)}))
        if not sent and time.monotonic() - last_sent > HEARTBEAT_S:
            sent.append(": keep-alive\n\n")
        if sent:
            last_sent = time.monotonic()
            yield "".join(sent)
        await asyncio.sleep(POLL_S)


def add_live_routes(app: FastAPI, folder: WatchFolder) -> None:
    """The live routes, reading ``folder`` (the catalog serves its files under ``/files/live/...``)."""

    @app.get("/api/live")
    def live_streams() -> list:
        return folder.streams()

    @app.get("/api/live/{stream}")
    def live_stream(stream: str, seconds: float = 60.0) -> dict:
        return folder.page(stream, min(max(seconds, 1.0), 3600.0))

    @app.get("/api/live/{stream}/events")
    async def live_stream_events(stream: str, request: Request, chunk: Optional[int] = None,
                                 event: Optional[int] = None) -> StreamingResponse:
        status = folder.status(stream)  # 403/404 before the stream starts
        start_chunk, start_event = resume_point(request.headers.get("last-event-id"), chunk, event, status)
        return StreamingResponse(live_events(folder, stream, request, max(0, start_chunk), max(0, start_event)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _read_json(path: Path) -> Optional[dict]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return json_safe(value) if isinstance(value, dict) else None



def _mtime(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
