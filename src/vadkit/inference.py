"""Scoring a person's own videos with a fitted detector: ``vadkit score``.

For each video the pipeline

1. decodes it once, streaming: feature detectors get I3D snippet features extracted with the settings their
   training features were made with; frame detectors (``needs == "frames"``) read the video themselves;
2. asks the detector for ``(num_frames,)`` scores, smooths them (Gaussian, ``smoothing_sigma`` frames) and finds
   the anomaly events (:func:`vadkit.report.events.find_events`) above the detector's threshold
   (:func:`detector_threshold`);
3. writes the scored-video folder: ``scores.csv``, ``plot.png``, ``thumbs/event-<i>.jpg``, ``annotated.mp4``
   (a second streaming decode), ``report.html`` and, last, ``result.json``; a folder without ``result.json`` is
   unfinished.

Nothing holds a whole video in memory: frames stream through the extractor and the video writer; only per-frame
scores and per-snippet features are kept.

Models (``--model``): a run folder (with ``model.pt``), a ``model.pt`` path, or the name of a bundled model in
``vadkit/assets/models/<name>.pt`` (with an optional ``<name>.json`` beside it holding ``protocol``,
``trained_on`` and ``extraction``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from vadkit.engine.detectors import Detector, VideoItem, load_detector
from vadkit.features.store import atomic_write_bytes, atomic_write_json
from vadkit.io import VideoReadError, FRAME_EXTENSIONS, is_video_file, list_frame_files, natural_key, open_video
from vadkit.report.events import Event, event_mask, find_events
from vadkit.scoring import gaussian_smooth

BUNDLED_DIR = Path(__file__).resolve().parent / "assets" / "models"
DEFAULT_MODEL = "ped2-knn"
FORMAT_VERSION = 1

SIGMOID_DETECTORS = ("arnet", "aed")  # detectors whose scores are probabilities
Z_99 = 2.3263478740408408  # the 99th percentile of a standard normal


# ---------------------------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------------------------
def detector_threshold(detector: Detector) -> float:
    """The score at or above which a (smoothed) frame counts as abnormal, for events.

    In order:

    1. ``detector.threshold_`` when the detector has one (the k-NN detector's calibrated threshold: the
       ``1 - false_alarm_rate`` quantile of held-out normal snippet scores);
    2. detectors with sigmoid outputs (AR-Net, AED): 0.5;
    3. reconstruction detectors with training error statistics (``train_mean_`` / ``train_std_``, e.g. sEnDec):
       the error ``z`` of the 99th percentile of a normal distribution fitted to the training errors, i.e.
       ``Z_99 = 2.326`` for z-scored outputs (``normalisation: train-zscore``) and
       ``train_mean_ + Z_99 * train_std_`` for raw errors.

    Raises:
        ValueError: the detector offers none of these; pass a threshold by hand (``--threshold``).
    """
    threshold = getattr(detector, "threshold_", None)
    if threshold is not None and math.isfinite(float(threshold)):
        return float(threshold)
    if detector.name in SIGMOID_DETECTORS:
        return 0.5
    mean, std = getattr(detector, "train_mean_", None), getattr(detector, "train_std_", None)
    if mean is not None and std is not None:
        if detector.args.get("normalisation", "train-zscore") == "train-zscore":
            return Z_99
        return float(mean + Z_99 * std)
    raise ValueError(f"detector {detector.name!r} has no threshold of its own (no threshold_, not a sigmoid model, "
                     f"no training error statistics): give one with --threshold")


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A fitted detector and what a report needs to say about it.

    Attributes:
        detector: the fitted detector.
        source: the run folder, ``model.pt`` path or bundled model name it came from.
        run_dir: the run folder, when there is one.
        protocol: the protocol card (dict) of the training run, or ``{}``.
        trained_on: one line on the training data.
        extraction: the extraction settings (dict) of the training features; ``None`` = vadkit's defaults.
        crops: how multi-crop features are collapsed (``mean`` / ``first``).
    """

    detector: Detector
    source: str
    run_dir: Path | None = None
    protocol: dict = field(default_factory=dict)
    trained_on: str = ""
    extraction: dict | None = None
    crops: str = "mean"
    _extractor: Any = field(default=None, repr=False)

    @property
    def threshold(self) -> float:
        return detector_threshold(self.detector)

    def info(self) -> dict:
        """The ``model`` block of ``result.json``."""
        d = self.detector
        method = str(self.protocol.get("method", ""))
        if not method.split(":", 1)[-1].strip():  # no card, or a card that names only the detector
            method = f"{d.name}: " + ", ".join(f"{k}={v}" for k, v in d.args.items()
                                               if k in ("model", "k", "metric", "center", "clip_length"))
        return {"name": d.name, "source": self.source, "method": method, "trained_on": self.trained_on}

    def extractor(self, batch_size: int = 4):
        """The snippet extractor matching the training features (built once)."""
        if self._extractor is None:
            from vadkit.features.extract import ExtractionSettings, SnippetExtractor

            settings = ExtractionSettings(**{k: v for k, v in (self.extraction or {}).items()
                                             if k in ExtractionSettings.__dataclass_fields__})
            extractor = SnippetExtractor(settings, batch_size=batch_size)
            _check_weights(self.extraction, extractor.manifest_settings(), self.source)
            self._extractor = extractor
        return self._extractor


def _check_weights(trained: dict | None, now: dict, source: str) -> None:
    want, have = (trained or {}).get("weights_sha256"), now.get("weights_sha256")
    if want and have and want != have:
        raise ValueError(f"model {source} was trained on features of I3D weights sha256 {want[:12]}…, but the "
                         f"installed weights are {have[:12]}…: the scores would be meaningless")


def list_bundled_models() -> list[str]:
    """Names of the models shipped in ``vadkit/assets/models``."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))


def resolve_model(name_or_path: str | Path) -> LoadedModel:
    """Load a detector from a run folder, a ``model.pt`` file or a bundled model name.

    Raises:
        FileNotFoundError: nothing by that name; the message lists the bundled models.
    """
    path = Path(name_or_path)
    sidecar: dict = {}
    if path.exists():
        file = path / "model.pt" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"{path} is a folder without model.pt: expected a run folder of `vadkit train` "
                                    f"or `vadkit fit-normal`")
        run_dir = file.parent if (file.parent / "config.yaml").is_file() else None
        source = str((run_dir or file).resolve())
    else:
        file = BUNDLED_DIR / f"{name_or_path}.pt"
        if not file.is_file():
            names = list_bundled_models()
            listed = ", ".join(names) if names else "none are installed"
            raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a run folder, a model.pt file nor a "
                                    f"bundled model (bundled: {listed})")
        run_dir, source = None, str(name_or_path)
        if file.with_suffix(".json").is_file():
            sidecar = json.loads(file.with_suffix(".json").read_text())
    detector = load_detector(file)
    protocol, crops, store_settings = dict(sidecar.get("protocol", {})), sidecar.get("crops", "mean"), None
    if run_dir is not None:
        protocol, crops, store_settings = _run_context(run_dir)
    extraction = (getattr(detector, "extraction_", None) or detector.args.get("extraction") or sidecar.get("extraction")
                  or store_settings)
    trained_on = (detector.args.get("trained_on") or sidecar.get("trained_on")
                  or " ".join(str(protocol.get(k, "")) for k in ("dataset", "split")).strip())
    return LoadedModel(detector=detector, source=source, run_dir=run_dir, protocol=protocol, trained_on=trained_on,
                       extraction=extraction, crops=crops)


def _run_context(run_dir: Path) -> tuple[dict, str, dict | None]:
    """``(protocol card, crops mode, feature store settings)`` of a run folder (what exists of them)."""
    import yaml

    protocol = {}
    for name in ("protocol.json", "metrics.json"):
        if (run_dir / name).is_file():
            data = json.loads((run_dir / name).read_text())
            protocol = data if name == "protocol.json" else data.get("protocol", {})
            if protocol:
                break
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    data = config.get("data") or {}
    settings = None
    features = data.get("features")
    if features:
        manifest = Path(features) / "manifest.json"
        if not manifest.is_absolute() and not manifest.is_file():
            manifest = run_dir / manifest
        if manifest.is_file():
            settings = json.loads(manifest.read_text()).get("settings")
    return protocol, data.get("crops", "mean"), settings


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------
def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in FRAME_EXTENSIONS for p in path.iterdir() if p.is_file())


def find_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand the command line's inputs into videos: a video file, a frame folder (a folder holding images), or a
    folder whose video files and frame folders (one level down) are taken in natural order.

    Raises:
        FileNotFoundError: an input does not exist, or a folder holds no video.
    """
    videos: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no video or folder at {path}")
        if path.is_file():
            videos.append(path)
        elif is_frame_folder(path):
            videos.append(path)
        else:
            found = [p for p in sorted(path.iterdir(), key=lambda p: natural_key(p.name))
                     if not p.name.startswith(".") and ((p.is_file() and is_video_file(p)) or is_frame_folder(p))]
            if not found:
                raise FileNotFoundError(f"{path} holds no video files ({', '.join(('.mp4', '.avi', '...'))}) and no "
                                        f"frame folders")
            videos.extend(found)
    return videos


def video_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Folder names for the videos: the file stem or folder name, ``-2``, ``-3`` … where names repeat."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        base = video_name(p) or "video"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        while name in names:
            seen[base] += 1
            name = f"{base}-{seen[base]}"
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------------------------
def make_progress(enabled: bool = True):
    """A rich progress display with a frames/s column (or a silent stand-in)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class FramesPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:6.1f} frames/s" if speed else "  ... frames/s", style="cyan")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), FramesPerSecond(),
                    TimeElapsedColumn(), disable=not enabled)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------------------
def _clean(values: np.ndarray) -> list[float | None]:
    """Floats for JSON (6 significant digits); NaN/inf become ``null``."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def frame_scores(model: LoadedModel, video, name: str, progress=None, batch_size: int = 4) -> np.ndarray:
    """``(num_frames,)`` raw scores of an opened video (one streaming decode for feature detectors)."""
    detector = model.detector
    task = progress.add_task(f"scoring {name}", total=video.num_frames) if progress is not None else None
    if detector.needs == "features":
        extractor = model.extractor(batch_size)
        stride = extractor.settings.stride

        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(task, n * stride)

        features = extractor.extract(video, on_snippets=advance)  # (S, F) or (S, crops, F)
        if features.ndim == 3:
            features = features.mean(axis=1) if model.crops == "mean" else features[:, 0]
        item = VideoItem(id=name, num_frames=video.num_frames, path=Path(video.path), fps=video.fps,
                         load_features=lambda: features)
    elif detector.needs == "frames":
        item = VideoItem(id=name, num_frames=video.num_frames, path=Path(video.path), fps=video.fps)
    else:
        raise ValueError(f"detector {detector.name!r} needs {detector.needs!r}; expected 'features' or 'frames'")
    scores = np.asarray(detector.score(item), dtype=np.float64)
    if scores.shape != (video.num_frames,):
        raise RuntimeError(f"{detector.name} gave {scores.shape} scores for {name} with {video.num_frames} frames")
    if progress is not None:
        progress.update(task, completed=video.num_frames)
    return scores


def scores_csv(scores: np.ndarray, smoothed: np.ndarray, threshold: float, fps: float) -> bytes:
    """``frame,time_s,score,smoothed,abnormal`` (abnormal: ``smoothed >= threshold``; empty cells for no score)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "time_s", "score", "smoothed", "abnormal"])
    for i, (s, m) in enumerate(zip(scores.tolist(), smoothed.tolist())):
        writer.writerow([i, f"{i / fps:.4f}", f"{s:.6g}" if math.isfinite(s) else "",
                         f"{m:.6g}" if math.isfinite(m) else "", int(math.isfinite(m) and m >= threshold)])
    return buffer.getvalue().encode()


def jpeg(frame: np.ndarray, height: int = 180, quality: int = 85) -> bytes:
    """RGB frame → JPEG bytes, resized to ``height`` pixels high (aspect kept)."""
    h, w = frame.shape[:2]
    if h != height:
        frame = cv2.resize(frame, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def _render(video, out_dir: Path, smoothed: np.ndarray, threshold: float, events: list[Event], name: str,
            write_annotated: bool, progress=None) -> dict[str, bytes]:
    """Second streaming pass: the annotated mp4 (optional) and the event thumbnails. Returns the thumbnails."""
    from vadkit.io import write_video
    from vadkit.report.annotate import FrameAnnotator

    peaks = {e.peak_frame: e.thumbnail for e in events}
    thumbs: dict[str, bytes] = {}
    if not write_annotated:
        for e in events:  # increasing frame order: the decoder only moves forward
            thumbs[e.thumbnail] = jpeg(next(iter(video.frames(e.peak_frame, e.peak_frame + 1))))
        return thumbs
    abnormal = event_mask(events, video.num_frames)
    annotator = FrameAnnotator(smoothed, threshold, abnormal, video.fps, video.width, video.height)
    task = progress.add_task(f"writing {name}/annotated.mp4", total=video.num_frames) if progress is not None else None

    def frames():
        for index, frame in enumerate(video.frames()):
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            if index in peaks:
                thumbs[peaks[index]] = jpeg(frame)
            yield annotator(index, frame)
            if progress is not None:
                progress.advance(task)

    write_video(out_dir / "annotated.mp4", frames(), fps=video.fps)
    return thumbs


def score_video(path: str | Path, model: LoadedModel | Detector, out_dir: str | Path, *, name: str | None = None,
                smoothing_sigma: float = 3.0, min_event_frames: int = 8, merge_gap: int = 5,
                threshold: float | None = None, write_annotated: bool = True, progress=None,
                batch_size: int = 4) -> dict:
    """Score one video and write its scored-video folder ``out_dir`` (see the module docstring).

    Args:
        path: a video file or a folder of frames.
        model: a :class:`LoadedModel` (from :func:`resolve_model`) or a fitted detector.
        out_dir: the video's own output folder (created; a previous ``result.json`` there is removed first).
        name: the video's name in the report (default: the folder name of ``out_dir``).
        smoothing_sigma: Gaussian sigma in frames applied before thresholding (0: none).
        min_event_frames: shortest event kept; merge_gap: gaps shorter than this are bridged.
        threshold: overrides :func:`detector_threshold`.
        write_annotated: write ``annotated.mp4`` (the second decode pass).
        progress: a rich ``Progress`` from :func:`make_progress`, or ``None`` for none.

    Returns:
        the ``result.json`` content.
    """
    start = time.perf_counter()
    if isinstance(model, Detector):
        model = LoadedModel(detector=model, source=type(model).__name__,
                            extraction=getattr(model, "extraction_", None) or model.args.get("extraction"))
    out_dir = Path(out_dir)
    name = name or out_dir.name
    _prepare_folder(out_dir)
    video = open_video(path)
    warnings_ = list(video.warnings)
    try:
        try:
            scores = frame_scores(model, video, name, progress, batch_size)
        except VideoReadError as err:
            if not err.frames_read:
                raise
            # a file that breaks part-way: score what could be decoded, and say so
            warnings_.append(f"{err}; scored the first {err.frames_read} of {video.num_frames} frames")
            video = video.truncated(err.frames_read)
            scores = frame_scores(model, video, name, progress, batch_size)
        thr = float(threshold) if threshold is not None else model.threshold
        smoothed = gaussian_smooth(scores, smoothing_sigma)
        events = find_events(smoothed, thr, video.fps, min_frames=min_event_frames, merge_gap=merge_gap)
        for i, e in enumerate(events):
            e.thumbnail = f"thumbs/event-{i}.jpg"
        atomic_write_bytes(out_dir / "scores.csv", scores_csv(scores, smoothed, thr, video.fps))
        from vadkit.report.plots import plot_scores

        plot_scores(scores, smoothed, thr, events, video.fps, out_dir / "plot.png",
                    title=f"{name}: {model.detector.name} ({len(events)} event{'s' if len(events) != 1 else ''})")
        thumbs = _render(video, out_dir, smoothed, thr, events, name, write_annotated, progress)
    finally:
        video.close()
    for rel, data in thumbs.items():
        atomic_write_bytes(out_dir / rel, data)
    files = {"csv": "scores.csv", "plot": "plot.png", "report": "report.html"}
    if write_annotated:
        files["video"] = "annotated.mp4"
    result = {
        "format": FORMAT_VERSION, "video": str(Path(path).resolve()), "name": name,
        "num_frames": video.num_frames, "fps": float(video.fps), "width": video.width, "height": video.height,
        "duration_s": video.num_frames / video.fps, "model": model.info(), "threshold": thr,
        "smoothing_sigma": smoothing_sigma, "min_event_frames": min_event_frames, "merge_gap": merge_gap,
        "scores": _clean(scores), "smoothed": _clean(smoothed), "events": [e.to_dict() for e in events],
        "files": files, "protocol": model.protocol, "warnings": warnings_,
    }
    from vadkit.report.html import render_report

    seconds = time.perf_counter() - start  # the report shows it: measured before the report itself (milliseconds)
    result.update(seconds=round(seconds, 3), frames_per_s=round(video.num_frames / max(seconds, 1e-9), 2))
    report = render_report(result, (out_dir / "plot.png").read_bytes(), thumbs)
    atomic_write_bytes(out_dir / "report.html", report.encode())
    atomic_write_json(out_dir / "result.json", result)  # last: its presence marks the folder finished
    return result


def _prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir``; remove a previous result (``result.json`` first, so the folder reads as unfinished)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").unlink(missing_ok=True)
    for stale in ("scores.csv", "plot.png", "annotated.mp4", "report.html"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "thumbs", ignore_errors=True)


def score_videos(inputs: Iterable[str | Path], model: LoadedModel | str | Path, out_root: str | Path,
                 progress: bool = True, errors: list | None = None, **options) -> list[dict]:
    """Score every video of ``inputs`` (files, frame folders, folders of videos) into ``out_root/<name>/``.

    Args:
        errors: when a list is given, a video that cannot be read or scored is recorded there as
            ``(path, message)`` and the others go on; otherwise the first failure is raised.
        options: passed to :func:`score_video`.

    Returns:
        the ``result.json`` of each video scored, in input order.
    """
    from vadkit.io import VideoReadError

    videos = find_videos(inputs)
    if not isinstance(model, LoadedModel):
        model = resolve_model(model)
    out_root = Path(out_root)
    results = []
    with make_progress(progress) as bar:
        for path, name in zip(videos, unique_names(videos)):
            try:
                results.append(score_video(path, model, out_root / name, name=name,
                                           progress=bar if progress else None, **options))
            except (VideoReadError, ValueError, RuntimeError) as err:
                if errors is None:
                    raise
                errors.append((path, str(err)))
    return results


def export_model(run_dir: str | Path, destination: str | Path) -> Path:
    """Package a run folder's model for bundling: ``<destination>.pt`` (the detector) and ``<destination>.json``
    (protocol card, training data, extraction settings), the pair :func:`resolve_model` reads by name when placed
    in ``vadkit/assets/models``. Returns the ``.pt`` path.
    """
    loaded = resolve_model(run_dir)
    if loaded.run_dir is None:
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml beside model.pt)")
    destination = Path(destination)
    pt = destination.with_suffix(".pt")
    atomic_write_bytes(pt, (loaded.run_dir / "model.pt").read_bytes())
    atomic_write_json(destination.with_suffix(".json"), {
        "protocol": loaded.protocol, "trained_on": loaded.trained_on, "extraction": loaded.extraction,
        "crops": loaded.crops, "run": loaded.run_dir.name})
    return pt
