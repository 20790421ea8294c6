"""Background scoring of uploaded videos: one worker thread, a queue, progress a page can poll.

A *scorer* is any callable ``scorer(video_path, detector, out_dir, progress=callback)`` that writes a scored-video
folder ``out_dir/<name>/`` (with ``result.json`` last) and returns that folder (or anything naming it, see
``_result_folder``). ``callback(done, total=None)`` reports progress: a fraction in [0, 1] when ``total`` is
``None``, else ``done`` of ``total`` steps. The default scorer, ``default_scorer``, runs
``vadkit.inference.score_video`` (imported only when the first job runs).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

Scorer = Callable[..., Any]


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
    """Score with ``vadkit.inference.score_video`` into ``out_dir/<video stem>/``.

    ``detector`` is a fitted detector, a ``LoadedModel``, or a run folder / ``model.pt`` / bundled model name
    (``None``: ``vadkit.inference.DEFAULT_MODEL``), loaded once and kept for later jobs.
    """
    from vadkit import inference

    if detector is None or isinstance(detector, (str, Path)):
        detector = _load_model(str(detector if detector is not None else inference.DEFAULT_MODEL))
    tasks = ProgressTasks(progress, expected_tasks=2)  # scoring pass, then the annotated-video pass
    return inference.score_video(video, detector, Path(out_dir) / video.stem, name=video.stem, progress=tasks)


@functools.lru_cache(maxsize=4)
def _load_model(name_or_path: str) -> Any:
    from vadkit.inference import resolve_model

    return resolve_model(name_or_path)


class ProgressTasks:
    """The part of rich's ``Progress`` the scoring pipeline calls, folded into one fraction for a callback.

    Each task counts for an equal share of ``max(expected_tasks, tasks added)``; the fraction never goes back.
    """

    def __init__(self, callback: Callable[[float], None], expected_tasks: int = 1) -> None:
        self.callback = callback
        self.expected = max(int(expected_tasks), 1)
        self.tasks: list[list[float]] = []  # [completed, total] per task
        self.reported = 0.0

    def add_task(self, description: str = "", total: Optional[float] = None, completed: float = 0, **_: Any) -> int:
        self.tasks.append([float(completed), float(total or 0)])
        self._report()
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.tasks[task_id][0] += float(advance)
        self._report()

    def update(self, task_id: int, *, completed: Optional[float] = None, total: Optional[float] = None,
               advance: Optional[float] = None, **_: Any) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task[1] = float(total)
        if completed is not None:
            task[0] = float(completed)
        if advance is not None:
            task[0] += float(advance)
        self._report()

    def _report(self) -> None:
        shares = [min(done / total, 1.0) if total > 0 else 0.0 for done, total in self.tasks]
        fraction = sum(shares) / max(self.expected, len(self.tasks))
        if fraction > self.reported:
            self.reported = fraction
            self.callback(fraction)


class QueueFullError(RuntimeError):
    """The scoring queue holds ``max_pending`` jobs already."""


class JobQueue:
    """Runs scoring jobs one at a time in a daemon thread.

    Args:
        scorer: see the module docstring.
        detector: passed through to the scorer unchanged (a run folder, a model name, or a loaded detector).
        out_dir: where the scorer writes result folders.
        ref_of: maps a finished result folder to the id the catalog lists it under (``None`` if not listable).
        max_pending: jobs queued or running at once; more is refused (:class:`QueueFullError`).
        max_finished: finished jobs remembered for ``get`` / ``list`` (the oldest are forgotten; their results stay
            in the catalog), so a server that runs for months does not grow with every upload.
    """

    def __init__(self, scorer: Scorer, detector: Any, out_dir: Path,
                 ref_of: Callable[[Path], Optional[str]], max_pending: int = 8, max_finished: int = 500) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if max_finished < 1:
            raise ValueError(f"max_finished must be >= 1, got {max_finished}")
        self.max_pending, self.max_finished = max_pending, max_finished
        self.scorer = scorer
        self.detector = detector
        self.out_dir = Path(out_dir)
        self.ref_of = ref_of
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None

    # -- public ---------------------------------------------------------------------------------------------
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return sum(job.state in ("queued", "running") for job in self._jobs.values())

    def full(self) -> bool:
        return self.pending() >= self.max_pending

    def busy_videos(self) -> set[Path]:
        """The uploaded files of jobs queued or running (never expired)."""
        with self._lock:
            return {Path(job.video) for job in self._jobs.values() if job.state in ("queued", "running")}

    def submit(self, video: Path, name: str) -> Job:
        """Queue a job; :class:`QueueFullError` when ``max_pending`` jobs are already queued or running."""
        job = Job(id=uuid.uuid4().hex[:12], name=name, video=str(video))
        with self._lock:
            if sum(j.state in ("queued", "running") for j in self._jobs.values()) >= self.max_pending:
                raise QueueFullError(f"{self.max_pending} uploads are already waiting to be scored; try again later")
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
    def _forget_old_jobs(self) -> None:
        """Drop the oldest finished jobs beyond ``max_finished`` (the caller holds the lock)."""
        finished = [job for job in self._jobs.values() if job.state in ("done", "error")]
        for job in sorted(finished, key=lambda j: j.created)[:max(0, len(finished) - self.max_finished)]:
            del self._jobs[job.id]

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
        with self._lock:
            self._forget_old_jobs()


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
