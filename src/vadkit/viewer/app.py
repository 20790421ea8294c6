"""The viewer's web server: a JSON API over the catalog, file serving with HTTP ranges, uploads, a static page.

Routes::

    GET  /                      the page (static/index.html; plain ES modules, no build step)
    GET  /api/info              folders, detector, upload limit
    GET  /api/videos            scored videos (summaries)
    GET  /api/videos/{id}       one scored video: its result.json with file URLs
    GET  /api/runs              evaluation runs (summaries)
    GET  /api/runs/{id}         one run: metrics, protocol card, plot URLs
    GET  /files/{id}/{file}     a file inside a folder (Range requests answered with 206, for seeking in video)
    POST /api/upload            multipart ``file`` -> 202 and a job (413 over the limit, 415 not a video)
    GET  /api/jobs, /api/jobs/{job}   scoring jobs: state and progress fraction
    GET  /api/live...           with ``watch_dir``: live pages of a ``vadkit watch`` folder (vadkit.viewer.live)

Every request must name an allowed host in its ``Host`` header (the loopback names and the address the server was
started on, plus ``allowed_hosts``): a web page the user visits cannot reach the viewer by pointing its own domain at
127.0.0.1 (DNS rebinding); others get 421. Writes from another origin get 403. At most ``max_pending`` uploads wait
for scoring (503 with ``Retry-After`` beyond it). Uploaded videos and their result folders are deleted
``keep_uploads_hours`` after they were written (checked at start and before every upload; files of queued or running
jobs are kept).
"""

from __future__ import annotations

import shutil
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from vadkit.viewer.catalog import BrokenFileError, Catalog, UnsafePathError
from vadkit.viewer.jobs import JobQueue, QueueFullError, Scorer, default_scorer
from vadkit.viewer.live import LIVE_KEY, WatchFolder, add_live_routes
from vadkit.viewer.upload import IncomingLimits, UploadError, receive_upload

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 500 * 1000 * 1000
UPLOADS = "uploads"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_PENDING = 8
DEFAULT_KEEP_UPLOADS_HOURS = 24.0
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
               "script-src 'self'; frame-ancestors 'none'")


def create_app(runs: str | Path, *, scores: str | Path | None = None, detector: Any = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, scorer: Optional[Scorer] = None,
               allowed_hosts: Iterable[str] = (), max_pending: int = DEFAULT_MAX_PENDING,
               keep_uploads_hours: float = DEFAULT_KEEP_UPLOADS_HOURS,
               watch_dir: str | Path | None = None, max_uploading: int | None = None,
               max_incoming_bytes: int | None = None) -> FastAPI:
    """Build the viewer app.

    Args:
        runs: folder of evaluation runs and scored videos; uploads are saved and scored under ``runs/uploads``.
        scores: an optional second folder of scored videos (``vadkit score --out``).
        detector: what uploads are scored with, passed to the scorer as is (a run folder or a model name).
        max_upload_bytes: larger uploads are refused with 413.
        scorer: ``scorer(video, detector, out_dir, progress=callback)``; default ``vadkit.inference.score_video``.
        allowed_hosts: host names accepted in the ``Host`` header besides the loopback names (e.g. the address the
            server listens on, or a name users reach it by).
        max_pending: uploads queued or being scored at most.
        max_uploading: uploads being received at once (default ``max_pending``); more get 503 with Retry-After.
        max_incoming_bytes: bytes the uploads being received may hold on disk together (default twice
            ``max_upload_bytes``); an upload that would pass it gets 503 with Retry-After and is removed.
        keep_uploads_hours: uploads and their results are deleted this long after they were written.
        watch_dir: a ``vadkit watch --out`` folder: a live page per stream (its frame, scores and events as the
            watcher writes them).
    """
    if max_upload_bytes <= 0:
        raise ValueError(f"max_upload_bytes must be positive, got {max_upload_bytes}")
    if keep_uploads_hours <= 0:
        raise ValueError(f"keep_uploads_hours must be positive, got {keep_uploads_hours}")
    hosts = {h.strip("[]").lower() for h in (*LOOPBACK_HOSTS, *allowed_hosts) if h}
    runs = Path(runs).expanduser()
    roots = {"runs": runs}
    if scores is not None:
        roots["scores"] = Path(scores).expanduser()
    if watch_dir is not None:
        roots[LIVE_KEY] = Path(watch_dir).expanduser()
    catalog = Catalog(roots)
    uploads = runs / UPLOADS

    def ref_of(folder: Path) -> Optional[str]:
        real, real_runs = folder.resolve(), runs.resolve()
        if real_runs not in real.parents:
            return None
        return f"runs/{real.relative_to(real_runs).as_posix()}"

    jobs = JobQueue(scorer or default_scorer, detector, uploads, ref_of, max_pending=max_pending)
    incoming = IncomingLimits(max_uploading or max_pending, max_incoming_bytes or 2 * max_upload_bytes)

    def expire() -> None:
        expire_uploads(uploads, keep_uploads_hours * 3600.0, keep=jobs.busy_videos())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        expire()
        yield
        jobs.close()

    app = FastAPI(title="vadkit viewer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog, app.state.jobs, app.state.uploads = catalog, jobs, uploads

    @app.middleware("http")
    async def same_origin_writes(request: Request, call_next):
        """Refuse a request for another host name (DNS rebinding: a site whose name resolves to 127.0.0.1), and a
        write sent by a page from another origin (a site the user visits posting to localhost)."""
        host = request.headers.get("host", "")
        if host_name(host) not in hosts:
            return JSONResponse({"detail": f"host {host[:100]!r} is not served here (allowed: {', '.join(sorted(hosts))}"
                                           f"; start `vadkit serve --allow-host NAME` to add one)"}, status_code=421)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"detail": f"cross-origin {request.method} from {origin} refused"}, status_code=403)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.exception_handler(UnsafePathError)
    async def unsafe_path(_: Request, err: UnsafePathError):
        return JSONResponse({"detail": str(err)}, status_code=403)

    @app.exception_handler(BrokenFileError)
    async def broken_file(_: Request, err: BrokenFileError):
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(FileNotFoundError)
    async def not_found(_: Request, err: FileNotFoundError):
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(UploadError)
    async def upload_refused(_: Request, err: UploadError):
        retry = {"Retry-After": "30"} if err.status == 503 else None
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=retry)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    def info() -> dict:
        return {"folders": {key: str(root.path) for key, root in catalog.roots.items()},
                "uploads": str(uploads), "detector": detector_label(detector),
                "max_upload_bytes": max_upload_bytes, "max_pending": max_pending,
                "keep_uploads_hours": keep_uploads_hours, "live": watch_dir is not None}

    @app.get("/api/videos")
    def videos() -> list:
        return catalog.videos()

    @app.get("/api/videos/{ref:path}")
    def video(ref: str) -> dict:
        return catalog.video(ref)

    @app.get("/api/runs")
    def run_list() -> list:
        return catalog.runs()

    @app.get("/api/runs/{ref:path}")
    def run(ref: str) -> dict:
        return catalog.run(ref)

    @app.api_route("/files/{ref:path}", methods=["GET", "HEAD"])
    def files(ref: str) -> FileResponse:
        path, media_type = catalog.resolve_file(ref)
        headers = {"Cache-Control": "no-cache"}
        if media_type.startswith("text/html"):
            headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        return FileResponse(path, media_type=media_type, headers=headers)

    if watch_dir is not None:
        add_live_routes(app, WatchFolder(watch_dir))

    def queue_full(message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=503, headers={"Retry-After": "30"})

    @app.post("/api/upload", status_code=202)
    async def upload(request: Request):
        if jobs.full():  # before reading the body: a full queue costs the client nothing to learn
            return queue_full(f"{max_pending} uploads are already waiting to be scored; try again later")
        expire()
        saved = await receive_upload(request.headers, request.stream(), uploads, max_upload_bytes, incoming)
        try:
            job = jobs.submit(saved.path, saved.original_name)
        except QueueFullError as err:  # filled while this upload arrived
            saved.path.unlink(missing_ok=True)
            return queue_full(str(err))
        return {"job": job.public(), "size": saved.size}

    @app.get("/api/jobs")
    def job_list() -> list:
        return jobs.list()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict:
        found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return found

    return app


def detector_label(detector: Any) -> Optional[str]:
    """How the page names what uploads are scored with (``None``: the scorer's default)."""
    if detector is None or isinstance(detector, (str, Path)):
        return None if detector is None else str(detector)
    return str(getattr(detector, "source", None) or getattr(detector, "name", None) or type(detector).__name__)


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (``127.0.0.1:8000`` -> ``127.0.0.1``, ``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def expire_uploads(uploads: Path, keep_seconds: float, keep: Iterable[Path] = (), now: float | None = None) -> list[Path]:
    """Delete uploaded videos and result folders in ``uploads`` last written more than ``keep_seconds`` ago (never
    those in ``keep``, nor the ``.incoming`` folder of uploads in progress). Returns what was deleted."""
    if not uploads.is_dir():
        return []
    now = time.time() if now is None else now
    kept = {Path(p).resolve() for p in keep}
    removed = []
    for entry in uploads.iterdir():
        if entry.name == ".incoming" or entry.resolve() in kept or entry.is_symlink():
            continue
        try:
            newest = max([entry.stat().st_mtime] + [p.stat().st_mtime for p in entry.rglob("*")] if entry.is_dir()
                         else [entry.stat().st_mtime])
        except OSError:
            continue
        if now - newest > keep_seconds:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
