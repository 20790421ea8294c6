"""Feature extraction and scoring scaled out on a Ray cluster: ``vadkit extract --ray`` and ``vadkit score --ray``.

The unit of work is one video. Each worker is a Ray actor that loads the network once (a
:class:`~vadkit.features.extract.SnippetExtractor`, or the model named by ``--model`` with its extractor) and then
takes videos one after another; Ray places the actors on the cluster's nodes (``num_cpus`` = the torch threads of
one worker), restarts an actor whose process or node died (``max_restarts``) and runs the video it was on again
(``max_task_retries``). The driver only hands the next video to a worker that is free and collects what comes back.

Where results land (the same as without Ray):

- ``extract``: the worker returns the features (a float32 array) and **the driver writes them** with
  :meth:`FeatureStore.write` (atomic ``.npy``, then the manifest entry under the store's lock). The store therefore
  needs no shared file system, nothing a killed worker was doing ever reaches it, and a rerun skips what the
  manifest lists (so a killed driver resumes where it stopped).
- ``score``: the worker scores the video into a temporary folder on its own node with
  :func:`~vadkit.inference.pipeline.score_video` and returns the folder's files; the driver writes them into
  ``out_root/<name>/`` (names from :func:`~vadkit.io.inputs.unique_names`), ``result.json`` last.

The videos (and a ``weights`` checkpoint) are read by the workers: every node needs them at the same path (a shared
file system, or the same copy everywhere). Features are bit-identical to a local run with the same settings, the
same backend and the same torch threads, on the same kind of CPU.

A video that fails (unreadable, or one that kills its worker ``retries + 1`` times) is listed with its error; the
others go on. Long videos are not split: a video is the smallest unit, so one long video runs on one worker.

Ray is optional: ``pip install 'vadkit[ray]'``; without it these functions raise :class:`RayNotInstalledError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from vadkit.io.files import atomic_write_bytes, json_default
from vadkit.progress import progress_bar

INSTALL_HINT = "Ray is not installed: pip install 'vadkit[ray]'"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray uses 127.0.0.1 for its node address
LOCAL = "local"  # the address that starts a local cluster (``address=None`` does the same)


class RayNotInstalledError(RuntimeError):
    """``--ray`` was asked for but Ray cannot be imported (a RuntimeError: the CLI prints it as one line)."""

    def __init__(self, message: str = INSTALL_HINT) -> None:
        super().__init__(message)


def import_ray():
    """The ``ray`` module, or :class:`RayNotInstalledError` saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise RayNotInstalledError() from err
    return ray


def looks_like_address(text: str) -> bool:
    """``auto``, ``local``, ``ray://...`` or ``host:port`` (a port of digits)."""
    if text in ("auto", LOCAL) or text.startswith("ray://"):
        return True
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and "/" not in host)


# ---------------------------------------------------------------------------------------------------------------
# Joining or starting a cluster
# ---------------------------------------------------------------------------------------------------------------
def require_ray(address: str | None = None):
    """Import Ray for a job at ``address`` (:class:`RayNotInstalledError` without it).

    For a local cluster imported here first, Ray is told to bind its services to the loopback address: a local
    cluster serves this machine only (Ray reads this when it is imported; the processes ``ray.init`` starts inherit
    it, and :func:`ray_cluster` removes it again once they are started).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if address in (None, "", LOCAL) and "ray" not in sys.modules and LOOPBACK_ENV not in os.environ:
        os.environ[LOOPBACK_ENV] = "0"
        _loopback_set.append(True)
    return import_ray()


_loopback_set: list = []  # require_ray set LOOPBACK_ENV (ray_cluster removes it once the local cluster runs)


@contextlib.contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of the block; yields the ``ray`` module.

    Args:
        address: ``None`` or ``"local"``: start a local cluster (this machine only, no dashboard; bound to the
            loopback address when this is the process's first use of Ray), stopped at the end; ``"auto"``: join
            the cluster ``ray start`` runs on this machine (or ``$RAY_ADDRESS``); ``"host:port"``: join that
            cluster's head. When this process is already connected
            (``ray.init`` called before), that connection is used and left open.
        num_cpus: CPUs of a local cluster (default: all of this machine's).
    """
    local = address in (None, "", LOCAL)
    ray = require_ray(address)
    try:
        if ray.is_initialized():
            owner = False
        else:
            owner = True
            common = {"log_to_driver": False, "logging_level": logging.WARNING}  # one progress bar; logs in Ray's files
            if local:
                ray.init(address=LOCAL, num_cpus=num_cpus, include_dashboard=False, **common)
            else:
                _check_reachable(address)
                try:
                    ray.init(address=address, **common)
                except ConnectionError as err:
                    raise ConnectionError(f"cannot join the Ray cluster at {address!r}: {err}") from err
    finally:
        if _loopback_set:
            os.environ.pop(LOOPBACK_ENV, None)  # the local cluster's processes have it; nothing later inherits it
            _loopback_set.clear()
    try:
        yield ray
    finally:
        if owner:
            ray.shutdown()


def _auto_address() -> str | None:
    """The address ``auto`` stands for: ``$RAY_ADDRESS``, else the one ``ray start`` wrote on this machine."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    try:
        return (Path(temp) / "ray" / "ray_current_cluster").read_text().strip() or None
    except OSError:
        return None


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once when nothing listens at a ``host:port`` address, or at the one ``auto`` stands for (a cluster
    that has stopped leaves its address behind; Ray itself retries it for many minutes)."""
    if address == "auto":
        address = _auto_address() or ""
    if not looks_like_address(address) or address in ("auto", LOCAL) or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConnectionError(f"no Ray cluster answers at {address} ({err}); start one there with `ray start --head "
                              f"--port={port}`, or use --ray alone for a local one") from err


def _default_workers(ray, threads: int, gpus_per_worker: float = 0.0) -> int:
    """Workers the cluster holds: its CPUs // ``threads``, and, with GPUs, at most its GPUs // ``gpus_per_worker``."""
    resources = ray.cluster_resources()
    workers = max(1, int(resources.get("CPU", 1)) // max(1, threads))
    if gpus_per_worker > 0:
        gpus = float(resources.get("GPU", 0))
        if gpus < gpus_per_worker:
            raise ValueError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {gpus:g} GPU(s)")
        workers = min(workers, int(gpus // gpus_per_worker))
    return max(1, workers)


def _worker_device(gpus_per_worker: float) -> str:
    """A worker given GPUs by Ray sees only those (``CUDA_VISIBLE_DEVICES``): it runs on ``cuda``."""
    return "cuda" if gpus_per_worker > 0 else "cpu"


def _worker_info() -> dict:
    import ray

    return {"pid": os.getpid(), "host": socket.gethostname(), "ip": ray.util.get_node_ip_address(),
            "node": ray.get_runtime_context().get_node_id()}


def _message(err: BaseException) -> str:
    """One line for an error: a worker's exception as ``Type: message`` (the last such line of Ray's traceback text),
    otherwise the first line."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt): ", line)]
    return raised[-1] if raised else (lines[0] if lines else type(err).__name__)


# ---------------------------------------------------------------------------------------------------------------
# The workers (Ray actors; plain classes here so that importing this module needs no Ray)
# ---------------------------------------------------------------------------------------------------------------
class _ExtractWorker:
    """Holds one :class:`SnippetExtractor` (the network is loaded once) and extracts whole videos."""

    def __init__(self, settings: dict, weights: str | None, batch_size: int, threads: int,
                 backend: str | None, device: str = "cpu") -> None:
        import torch

        from vadkit.features.extract import ExtractionSettings, SnippetExtractor

        torch.set_num_threads(threads)
        options = {} if backend is None else {"backend": backend}
        self.extractor = SnippetExtractor(ExtractionSettings(**settings), weights=weights, batch_size=batch_size,
                                          threads=threads, device=device, **options)
        self.manifest = self.extractor.manifest_settings()
        self.info = {**_worker_info(), "threads": torch.get_num_threads()}

    def ready(self) -> dict:
        return {**self.info, "manifest": self.manifest, "backend": getattr(self.extractor, "backend", None)}

    def extract(self, video_id: str, path: str) -> dict:
        from vadkit.datasets.layouts import frame_rate
        from vadkit.io import open_video

        start = time.perf_counter()
        try:
            video = open_video(path, fps=frame_rate(path)[0])  # a frame folder: its layout's rate (UCSD 10 fps)
            try:
                features = self.extractor.extract(video)
            finally:
                video.close()
        except Exception as err:  # noqa: BLE001 - a bad video is reported, the worker goes on
            return {"video_id": video_id, "error": _message(err), "worker": self.info}
        return {"video_id": video_id, "features": features, "num_frames": video.num_frames, "fps": video.fps,
                "backend": getattr(self.extractor, "backend", None), "manifest": self.manifest,
                "device": self.extractor.device_record(),
                "seconds": time.perf_counter() - start, "worker": self.info}


class _ScoreWorker:
    """Holds one loaded model (resolved here from its name or path, once) and scores whole videos."""

    def __init__(self, model: str, backend: str | None, batch_size: int, threads: int, device: str = "cpu") -> None:
        import torch

        from vadkit.inference.bundle import resolve_model

        torch.set_num_threads(threads)
        self.model = resolve_model(model, device=device, **({} if backend is None else {"backend": backend}))
        ready = getattr(self.model, "ready", None)
        if ready is not None:
            ready(batch_size)  # the networks load now, not on the first video
        elif self.model.detector.inputs == "features":
            self.model.extractor(batch_size)
        self.info = {**_worker_info(), "threads": torch.get_num_threads()}
        _remove_old_scratch()
        info = self.model.info()
        self.backend = info.get("feature_backend") or info.get("backend")  # what "auto" resolved to here

    def ready(self) -> dict:
        return {**self.info, "backend": self.backend}

    def score(self, path: str, name: str, options: dict) -> dict:
        from vadkit.inference.pipeline import score_video

        start = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        try:
            out_dir = scratch / "out"
            result = score_video(path, self.model, out_dir, name=name, **options)
            files = {p.relative_to(out_dir).as_posix(): p.read_bytes()
                     for p in sorted(out_dir.rglob("*")) if p.is_file()}
        except Exception as err:  # noqa: BLE001 - a bad video is reported, the worker goes on
            return {"name": name, "error": _message(err), "worker": self.info}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {"name": name, "result": result, "files": files, "seconds": time.perf_counter() - start,
                "worker": self.info}


SCRATCH_PREFIX = "vadkit-ray-score-"


def _remove_old_scratch(older_than_s: float = 3600.0) -> None:
    """Remove the scratch folders of score workers killed more than an hour ago on this node."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        with contextlib.suppress(OSError):
            if folder.is_dir() and now - folder.stat().st_mtime > older_than_s:
                shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Handing videos to the workers
# ---------------------------------------------------------------------------------------------------------------
def _run_on_workers(ray, actor_class: type, init_args: tuple, num_workers: int, threads: int, retries: int,
                    items: Sequence[tuple], submit: Callable[[Any, tuple], Any],
                    on_ready: Callable[[dict], list | None], on_result: Callable[[tuple, dict], None],
                    on_failure: Callable[[tuple, str], None], on_wait: Callable[[], None],
                    rest_args: Callable[[dict], tuple] | None = None, num_gpus: float = 0.0) -> None:
    """Start ``num_workers`` actors and give each free one the next item until all are done.

    With ``rest_args``, one actor starts first and the others with ``rest_args(its ready() answer)``: the backend
    ``auto`` is resolved once, by the first worker, and the others run the backend it chose (every video of a job
    on the same runtime; no two workers measuring the backends against each other at the same time).

    Ray does the rest: it places the actors (``num_cpus=threads`` and ``num_gpus`` each), restarts one whose process or node died,
    and runs the call it was on again (``max_task_retries=retries``). A call that still fails (the video killed its
    worker ``retries + 1`` times) goes to ``on_failure``; so does every item left when every worker died.
    ``on_ready`` gets the first worker's ``ready()`` answer before any item is handed out; when it returns a list,
    that list replaces ``items``.

    Raises:
        RuntimeError: no worker could be started (the first constructor's error).
    """
    actor = ray.remote(actor_class).options(num_cpus=threads, num_gpus=num_gpus, max_restarts=max(4, (retries + 1) * len(items)),
                                            max_task_retries=retries)
    actors = [actor.remote(*init_args) for _ in range(1 if rest_args else num_workers)]
    joining = {a.ready.remote(): a for a in actors}  # a worker takes videos once it answers (network loaded)
    inflight: dict[Any, tuple[Any, tuple]] = {}
    queue = list(items)[::-1]
    idle: list = []
    first_ready, last_error = False, None

    def dispatch() -> None:
        while idle and queue:
            worker, item = idle.pop(0), queue.pop()
            inflight[submit(worker, item)] = (worker, item)

    try:
        while queue or inflight:
            refs = list(joining) + list(inflight)
            if not refs:  # every worker is gone and none can be started
                if not first_ready:
                    raise RuntimeError(f"no Ray worker could start: {last_error}")
                for item in reversed(queue):
                    on_failure(item, f"no Ray worker could run it: {last_error or 'all workers died'}")
                return
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0.5)
            for ref in done:
                if ref in joining:
                    worker = joining.pop(ref)
                    try:
                        answer = ray.get(ref)
                    except ray.exceptions.RayError as err:  # its constructor failed: the actor is dead
                        last_error = _message(err)
                        continue
                    if not first_ready:
                        first_ready = True
                        replaced = on_ready(answer)
                        if replaced is not None:
                            queue[:] = list(replaced)[::-1]
                        if rest_args is not None and len(queue) > 1:
                            args = rest_args(answer)
                            for _ in range(min(num_workers, len(queue)) - 1):
                                actors.append(actor.remote(*args))
                                joining[actors[-1].ready.remote()] = actors[-1]
                    idle.append(worker)
                    dispatch()
                    continue
                worker, item = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died on it retries + 1 times
                    last_error = _message(err)
                    on_failure(item, f"its worker died {retries + 1} time(s) on it ({last_error})")
                    joining[worker.ready.remote()] = worker  # takes videos again once restarted; dropped if dead
                    continue
                idle.append(worker)
                dispatch()  # the worker is busy again before the driver writes (and before on_result runs)
                on_result(item, outcome)
            on_wait()
    finally:
        for a in actors:
            with contextlib.suppress(Exception):  # the connection may be gone already (an interrupt)
                ray.kill(a, no_restart=True)


# ---------------------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------------------
def extract_videos_ray(videos: Sequence[tuple[str, str | os.PathLike]], store_root: str | os.PathLike,
                       settings=None, weights: str | os.PathLike | None = None, batch_size: int = 4,
                       threads: int = 1, address: str | None = None, progress: bool = True,
                       num_workers: int | None = None, backend: str | None = None, retries: int = 2,
                       on_video: Callable[[str, dict], None] | None = None, gpus_per_worker: float = 0.0) -> dict:
    """Extract every ``(video_id, path)`` into the feature store at ``store_root`` on a Ray cluster, skipping the
    videos the store already holds. The store is the one :func:`vadkit.features.extract.extract_videos` writes.

    Args:
        settings: an :class:`ExtractionSettings` (default: the default settings).
        weights, batch_size, backend: as for :class:`SnippetExtractor` (``backend=None``: its default).
        threads: torch threads of each worker (and the CPUs Ray reserves for it).
        address: ``None``/``"local"`` starts a local cluster; ``"auto"`` or ``"host:port"`` joins one
            (see :func:`ray_cluster`).
        num_workers: workers (actors) to start (default: the cluster's CPUs // ``threads``, at most one per video).
        retries: times a video is run again after its worker died on it.
        on_video: called in the driver after each video is written, with ``(video_id, worker)``, the worker's
            ``{"pid", "host", "ip", "node", "threads"}``.
        gpus_per_worker: GPUs each worker asks Ray for (``num_gpus``; fractions share a GPU); above 0 the workers
            run their network on CUDA, one network per worker.

    Returns:
        ``{"done", "skipped", "failed", "frames", "seconds", "store", "workers"}``: ``failed`` lists
        ``(video_id, message)``; ``seconds`` runs from the first worker ready to the last video written.
    """
    from vadkit.features.extract import ExtractionSettings
    from vadkit.features.store import FeatureStore

    require_ray(address)  # before anything else: without Ray, say how to install it
    settings = settings or ExtractionSettings()
    videos = [(vid, Path(p)) for vid, p in videos]
    report: dict[str, Any] = {"done": [], "skipped": [], "failed": [], "frames": 0, "seconds": 0.0,
                              "store": str(Path(store_root)), "workers": 0}
    if not videos:
        return report
    state: dict[str, Any] = {}

    with ray_cluster(address) as ray, progress_bar("{task.description}", progress) as bar:
        workers = num_workers or _default_workers(ray, threads, gpus_per_worker)
        task = bar.add_task("videos", total=len(videos), info="starting Ray workers")

        def on_ready(answer: dict) -> list:  # the first worker's network: the store's settings
            store = FeatureStore(store_root, answer["manifest"])
            state.update(store=store, start=time.perf_counter(), settings=store.settings)
            report["store"] = str(store.root)
            report["skipped"] = [vid for vid, _ in videos if store.has(vid)]
            bar.update(task, advance=len(report["skipped"]))
            return [(vid, path) for vid, path in videos if not store.has(vid)]

        def submit(worker, item):
            vid, path = item
            return worker.extract.remote(vid, os.path.abspath(path))

        def on_result(item: tuple, outcome: dict) -> None:
            vid, path = item
            if "error" in outcome:
                on_failure(item, outcome["error"])
                return
            store = state["store"]
            found = json.loads(json.dumps(outcome["manifest"], default=json_default))
            if found != state["settings"]:
                want = state["settings"]
                differ = sorted(k for k in set(found) | set(want) if found.get(k) != want.get(k))
                on_failure(item, f"worker on {outcome['worker']['host']} makes other features ({', '.join(differ)})")
                return
            extra = {"source": str(path)}
            if outcome.get("backend") is not None:
                extra["backend"] = outcome["backend"]
            extra.update(outcome.get("device") or {})
            store.write(vid, outcome["features"], num_frames=outcome["num_frames"], fps=outcome["fps"], **extra)
            report["done"].append(vid)
            report["frames"] += int(outcome["num_frames"])
            bar.advance(task)
            if on_video is not None:
                on_video(vid, outcome["worker"])

        def on_failure(item: tuple, message: str) -> None:
            report["failed"].append((item[0], message))
            bar.advance(task)

        def on_wait() -> None:
            if "start" in state:
                rate = report["frames"] / max(time.perf_counter() - state["start"], 1e-9)
                failed = f", {len(report['failed'])} failed" if report["failed"] else ""
                bar.update(task, info=f"{rate:.1f} frames/s on {workers} Ray worker(s){failed}")

        workers = max(1, min(workers, len(_not_listed(videos, store_root))))  # no idle worker for finished videos
        report["workers"] = workers
        init = (asdict(settings), None if weights is None else str(Path(weights).resolve()), batch_size, threads,
                backend, _worker_device(gpus_per_worker))
        staged = (lambda answer: init[:4] + (answer["backend"],) + init[5:]) if backend in (None, "auto") else None
        _run_on_workers(ray, _ExtractWorker, init, workers, threads, retries, videos, submit, on_ready, on_result,
                        on_failure, on_wait, rest_args=staged, num_gpus=gpus_per_worker)
        if "start" in state:
            report["seconds"] = time.perf_counter() - state["start"]  # not the cluster's shutdown
        on_wait()
    return report


def _not_listed(videos: list[tuple[str, Path]], store_root) -> list[tuple[str, Path]]:
    """The videos a store's manifest does not list yet (read without its settings: only to size the job; the
    skipping itself waits until the store is opened with the workers' settings)."""
    manifest = Path(store_root) / "manifest.json"
    try:
        listed = set(json.loads(manifest.read_text()).get("videos", {})) if manifest.is_file() else set()
    except (OSError, ValueError, AttributeError):
        listed = set()
    return [v for v in videos if v[0] not in listed]


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
# what score_video does by default, for comparing an earlier result's options with a rerun's
_SCORE_DEFAULTS = {"smoothing_sigma": 3.0, "min_event_frames": 8, "merge_gap": 5, "threshold": None,
                   "write_annotated": True}


def finished_result(out_dir: Path, video: str | os.PathLike, source: str, options: dict,
                    model_threshold: float | None = None) -> dict | None:
    """The ``result.json`` in ``out_dir`` when it scored ``video`` with the model ``source`` and the same options,
    after the model was last written; else None (so the video is scored again)."""
    from vadkit.io.inputs import printable

    file = out_dir / "result.json"
    try:
        result = json.loads(file.read_text())
        written = file.stat().st_mtime
    except (OSError, ValueError):
        return None
    wanted = {**_SCORE_DEFAULTS, **{k: v for k, v in options.items() if k in _SCORE_DEFAULTS}}
    if (result.get("video") != printable(str(Path(video).resolve()))
            or (result.get("model") or {}).get("source") != source
            or any(result.get(k) != wanted[k] for k in ("smoothing_sigma", "min_event_frames", "merge_gap"))
            or result.get("threshold") != (float(wanted["threshold"]) if wanted["threshold"] is not None
                                            else model_threshold)
            or ("video" in (result.get("files") or {})) != bool(wanted["write_annotated"])
            or (options.get("fps") is not None and result.get("fps") != float(options["fps"]))):
        return None
    model_path = Path(source)
    if model_path.exists():  # a run folder or model file refitted since: score again
        newest = max([model_path.stat().st_mtime] + [p.stat().st_mtime for p in model_path.glob("*.pt")])
        if newest > written:
            return None
    return result


def score_videos_ray(inputs: Iterable[str | os.PathLike], model: Any, out_root: str | os.PathLike,
                     address: str | None = None, threads: int = 1, num_workers: int | None = None,
                     progress: bool = True, errors: list | None = None, backend: str | None = None,
                     retries: int = 2, on_video: Callable[[str, dict], None] | None = None, rescore: bool = False,
                     gpus_per_worker: float = 0.0, skipped: list | None = None, **options) -> list[dict]:
    """Score every video of ``inputs`` into ``out_root/<name>/`` on a Ray cluster: the same folders, names and
    files as :func:`vadkit.inference.pipeline.score_videos`.

    Args:
        model: a run folder, a model file or a bundled model's name (each worker resolves it once); a
            :class:`LoadedModel` from one of those is accepted too (its ``source`` is sent).
        address, threads, num_workers, retries, on_video: as for :func:`extract_videos_ray` (``on_video`` gets the
            video's name).
        errors: a video that cannot be read or scored is recorded here as ``(path, message)`` and the others go
            on; without a list, the failures are raised together at the end (every other video is scored first).
        backend: the runtime of the model's networks (``None``: :func:`resolve_model`'s default).
        gpus_per_worker: as for :func:`extract_videos_ray`.
        skipped: as for :func:`vadkit.inference.pipeline.score_videos` (entries of a folder that are not videos).
        options: passed to :func:`score_video` (``smoothing_sigma``, ``threshold``, ``write_annotated``,
            ``batch_size`` ...; not ``progress``).

        rescore: score every video again; by default a rerun skips the videos whose folder already holds a
            ``result.json`` of the same video, model and options written after the model (a job interrupted by a
            killed driver resumes where it stopped).

    Returns:
        the ``result.json`` of each video scored (or skipped as finished), in input order.
    """
    from vadkit.inference.bundle import LoadedModel, resolve_model
    from vadkit.inference.pipeline import _prepare_folder
    from vadkit.io.inputs import find_videos, unique_names

    require_ray(address)  # before anything else: without Ray, say how to install it
    source = model.source if isinstance(model, LoadedModel) else str(model)
    try:
        model_threshold = resolve_model(source).detector.threshold_  # fails at once on a name or path that is no model
    except FileNotFoundError:
        if isinstance(model, LoadedModel):
            raise ValueError(f"scoring on Ray needs a model the workers can load by name or path; {source!r} is "
                             f"neither (pass the run folder, model file or bundled name)") from None
        raise
    options.pop("progress", None)
    batch_size = int(options.get("batch_size", 4))
    videos = find_videos(inputs, skipped)
    names = unique_names(videos)
    out_root = Path(out_root)
    results: dict[str, dict] = {}
    failed: list[tuple[Path, str]] = []
    if not videos:
        return []
    items = list(zip(videos, names))
    for video, name in list(items):
        done = None if rescore else finished_result(out_root / name, video, source, options, model_threshold)
        if done is not None:
            results[name] = done
    todo = [(video, name) for video, name in items if name not in results]
    if not todo:
        return [results[name] for _, name in items]

    with ray_cluster(address) as ray, progress_bar("{task.description}", progress) as bar:
        workers = max(1, min(num_workers or _default_workers(ray, threads, gpus_per_worker), len(todo)))
        task = bar.add_task("videos", total=len(items), completed=len(items) - len(todo),
                            info="starting Ray workers")
        state: dict[str, Any] = {"frames": 0}

        def on_ready(answer: dict) -> None:
            state["start"] = time.perf_counter()

        def submit(worker, item):
            path, name = item
            return worker.score.remote(os.path.abspath(path), name, options)

        def on_result(item: tuple, outcome: dict) -> None:
            path, name = item
            if "error" in outcome:
                on_failure(item, outcome["error"])
                return
            out_dir = out_root / name
            _prepare_folder(out_dir)  # a previous result goes first (result.json first of all)
            files = outcome["files"]
            for rel, data in files.items():
                if rel != "result.json":
                    atomic_write_bytes(out_dir / rel, data)
            atomic_write_bytes(out_dir / "result.json", files["result.json"])  # last: the folder is finished
            results[name] = outcome["result"]
            state["frames"] += int(outcome["result"]["num_frames"])
            bar.advance(task)
            if on_video is not None:
                on_video(name, outcome["worker"])

        def on_failure(item: tuple, message: str) -> None:
            path, name = item
            out_dir = out_root / name
            if out_dir.is_dir():
                _prepare_folder(out_dir)  # as locally: a failed score leaves no earlier result that looks current
            failed.append((path, message))
            bar.advance(task)

        def on_wait() -> None:
            if "start" in state:
                rate = state["frames"] / max(time.perf_counter() - state["start"], 1e-9)
                more = f", {len(failed)} failed" if failed else ""
                bar.update(task, info=f"{rate:.1f} frames/s on {workers} Ray worker(s){more}")

        init = (source, backend, batch_size, threads, _worker_device(gpus_per_worker))
        staged = (lambda answer: init[:1] + (answer["backend"],) + init[2:]) if backend in (None, "auto") else None
        _run_on_workers(ray, _ScoreWorker, init, workers, threads, retries, todo, submit, on_ready, on_result,
                        on_failure, on_wait, rest_args=staged, num_gpus=gpus_per_worker)
        on_wait()
    if errors is not None:
        errors.extend(failed)
    elif failed:
        listed = "; ".join(f"{p}: {m}" for p, m in failed)
        raise RuntimeError(f"{len(failed)} of {len(items)} video(s) could not be scored: {listed}")
    return [results[name] for _, name in items if name in results]
