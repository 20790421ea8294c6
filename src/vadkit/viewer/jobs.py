"""Background scoring of uploaded videos: one worker thread, a queue, progress a page can poll.

A *scorer* is any callable ``scorer(video_path, detector, out_dir, progress=callback)`` that writes a scored-video
folder ``out_dir/<name>/`` (with ``result.json`` last) and returns that folder (or anything naming it, see
``_result_folder``). ``callback(done, total=None)`` reports progress: a fraction in [0, 1] when ``total`` is
``None``, else ``done`` of ``total`` steps. The default scorer is ``vadkit.inference.score_video``, imported only
when the first job runs.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

Scorer = Callable[..., Any]
PROGRESS_NAMES = ("progress", "on_progress", "progress_callback")


@dataclass
class Job:
    """One uploaded video waiting for, or going through, scoring.

    ``state`` is ``"queued"``, ``"running"``, ``"done"`` or ``"error"``; ``progress`` is a fraction in [0, 1];
    ``result`` is the id of the scored-video folder once done; ``error`` a one-line message on failure.
    """

    id: str
    name: str
    video: str
    state: str = "queued"
    progress: float = 0.0
    result: Optional[str] = None
    error: Optional[str] = None
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None

    def public(self) -> dict:
        data = asdict(self)
        data.pop("video")  # the server-side path is nobody's business
        return data


def default_scorer(video: Path, detector: Any, out_dir: Path, progress: Callable[..., None]) -> Any:
    """``vadkit.inference.score_video``, passing the progress callback when it takes one."""
    from vadkit.inference import score_video

    try:
        parameters = inspect.signature(score_video).parameters
    except (TypeError, ValueError):
        parameters = {}
    extra = {name: progress for name in PROGRESS_NAMES if name in parameters}
    return score_video(video, detector, out_dir, **extra)


class JobQueue:
    """Runs scoring jobs one at a time in a daemon thread.

    Args:
        scorer: see the module docstring.
        detector: passed through to the scorer unchanged (a run folder, a model name, or a loaded detector).
        out_dir: where the scorer writes result folders.
        ref_of: maps a finished result folder to the id the catalog lists it under (``None`` if not listable).
    """

    def __init__(self, scorer: Scorer, detector: Any, out_dir: Path,
                 ref_of: Callable[[Path], Optional[str]]) -> None:
        self.scorer = scorer
        self.detector = detector
        self.out_dir = Path(out_dir)
        self.ref_of = ref_of
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None

    # -- public ---------------------------------------------------------------------------------------------
    def submit(self, video: Path, name: str) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], name=name, video=str(video))
        with self._lock:
            self._jobs[job.id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="vadkit-viewer-scoring", daemon=True)
                self._thread.start()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Optional[dict]:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.public()

    def list(self) -> list[dict]:
        with self._lock:
            return [job.public() for job in sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)]

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the job it is running (queued jobs are dropped)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def wait(self, job_id: str, timeout: float = 30.0) -> dict:
        """Block until the job is done or failed (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None:
                raise KeyError(f"no job {job_id!r}")
            if job["state"] in ("done", "error"):
                return job
            time.sleep(0.02)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s")

    # -- worker ---------------------------------------------------------------------------------------------
    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            for key, value in changes.items():
                setattr(job, key, value)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            self._run(job_id)

    def _run(self, job_id: str) -> None:
        with self._lock:
            video = Path(self._jobs[job_id].video)
        self._update(job_id, state="running", started=time.time())

        def progress(done: float, total: Optional[float] = None) -> None:
            fraction = float(done) / float(total) if total else float(done)
            self._update(job_id, progress=min(max(fraction, 0.0), 1.0))

        try:
            returned = self.scorer(video, self.detector, self.out_dir, progress=progress)
            folder = _result_folder(returned, self.out_dir, video)
            ref = self.ref_of(folder) if folder is not None else None
            if ref is None:
                raise RuntimeError(f"the scorer finished but wrote no result.json under {self.out_dir}")
            self._update(job_id, state="done", progress=1.0, result=ref, finished=time.time())
        except Exception as err:  # a failed job is reported, never kills the worker
            message = f"{type(err).__name__}: {err}".strip()
            traceback.print_exc()
            self._update(job_id, state="error", error=message.splitlines()[0][:500], finished=time.time())


def _result_folder(returned: Any, out_dir: Path, video: Path) -> Optional[Path]:
    """The folder holding the new ``result.json``: what the scorer returned, else ``out_dir/<video stem>``."""
    candidates = []
    if isinstance(returned, (str, Path)):
        candidates.append(Path(returned))
    else:
        for attr in ("folder", "path", "out_dir"):
            value = getattr(returned, attr, None)
            if isinstance(value, (str, Path)):
                candidates.append(Path(value))
        if isinstance(returned, dict) and isinstance(returned.get("name"), str):
            candidates.append(out_dir / returned["name"])
    candidates.append(out_dir / video.stem)
    for candidate in candidates:
        if candidate.is_file() and candidate.name == "result.json":
            candidate = candidate.parent
        if (candidate / "result.json").is_file():
            return candidate
    return None
