"""Scoring a person's own videos with a fitted detector: ``vadkit score``.

For each video the pipeline

1. decodes it, streaming: feature detectors get I3D snippet features extracted with the settings their
   training features were made with; frame detectors (``inputs == "frames"``) read the video themselves;
2. asks the detector for its :class:`~vadkit.detectors.FrameScores`, smooths them (Gaussian, ``smoothing_sigma``
   frames) and finds the anomaly events (:func:`vadkit.report.events.find_events`) at or above the detector's own
   fitted threshold (the same one ``vadkit evaluate`` and the viewer use; ``threshold=`` overrides it);
3. writes the scored-video folder: ``scores.csv``, ``events.csv``, ``plot.png``, ``thumbs/event-<i>.jpg``, ``annotated.mp4``
   (a second streaming decode), ``report.html`` and, last, ``result.json``; a folder without ``result.json`` is
   unfinished.

Nothing holds a whole video in memory: frames stream through the extractor and the video writer; only per-frame
scores and per-snippet features are kept.

Models (``--model``): a run folder (with ``model.pt``), a model file, or the name of a bundled model
(:mod:`vadkit.inference.bundle`).
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from vadkit.detectors import Detector, FrameObjects, FrameScores, VideoItem, collapse_crops
from vadkit.inference.bundle import LoadedModel, resolve_model
from vadkit.io import VideoReadError, open_video
from vadkit.io.files import atomic_write_bytes, atomic_write_json
from vadkit.io.inputs import find_videos, printable, unique_names
from vadkit.progress import progress_bar
from vadkit.report.events import Event, event_mask, find_events
from vadkit.scoring import DEFAULT_SMOOTHING_SIGMA, gaussian_smooth

FORMAT_VERSION = 1
MAX_SCORING_SIDE = 1280  # frames larger than this (longest side) are resized at decoding


# ---------------------------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------------------------
def make_progress(enabled: bool = True):
    """The scoring progress display (frames/s)."""
    return progress_bar("{task.description}", enabled, unit="frames")


# ---------------------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------------------
def _clean(values: np.ndarray) -> list[float | None]:
    """Floats for JSON (6 significant digits); NaN/inf become ``null``."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def frame_scores(model: LoadedModel, video, name: str, progress=None, batch_size: int = 4
                 ) -> tuple[FrameScores, FrameObjects | None]:
    """The frame scores of an opened video (one streaming decode for feature detectors), and, from detectors that
    can say, each frame's most abnormal object."""
    detector = model.ready(batch_size).detector
    task = progress.add_task(f"scoring {name}", total=video.num_frames, info="") if progress is not None else None
    if detector.inputs == "features":
        extractor = model.extractor(batch_size)
        stride = extractor.settings.stride

        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(task, n * stride)

        features = collapse_crops(extractor.extract(video, on_snippets=advance), detector.crops_)  # (S, F)
        item = VideoItem(id=name, num_frames=video.num_frames, path=Path(video.path), fps=video.fps,
                         load_features=lambda: features, extraction=extractor.manifest_settings())
    else:
        item = VideoItem(id=name, num_frames=video.num_frames, path=Path(video.path), fps=video.fps)
    # the per-video disk caches (boxes, flow, attributes, cubes) of a video scored once live as long as this call:
    # a viewer or a batch that scores thousands of uploads leaves nothing behind in a cache folder
    with tempfile.TemporaryDirectory(prefix="vadkit-scoring-") as cache, detector.caches_in(cache):
        scores, objects = detector.score_explained(item)
    if progress is not None:
        progress.update(task, completed=video.num_frames)
    return scores, objects


def explain_events(events: list[Event], objects: FrameObjects | None, scores: np.ndarray,
                   size: tuple[int, int]) -> list[dict]:
    """The events as ``result.json`` holds them; with frame objects, each names its object: the frame inside the
    event where the raw score (an object's) is highest, that object's box (in ``size`` pixels), its attribute
    scores and the reason in words."""
    out = []
    for e in events:
        entry = e.to_dict()
        if objects is not None:
            inside = np.arange(e.start_frame, e.end_frame + 1)
            has_box = np.isfinite(objects.boxes[inside]).all(axis=1) & np.isfinite(scores[inside])
            if has_box.any():
                frame = int(inside[has_box][np.argmax(scores[inside][has_box])])
                entry.update(object_frame=frame, box=objects.box(frame, size), attributes=objects.scores(frame),
                             reason=objects.reason(frame))
        out.append(entry)
    return out


def scores_csv(scores: np.ndarray, smoothed: np.ndarray, threshold: float, fps: float) -> bytes:
    """``frame,time_s,score,smoothed,abnormal`` (abnormal: ``smoothed >= threshold``; empty cells for no score)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "time_s", "score", "smoothed", "abnormal"])
    for i, (s, m) in enumerate(zip(scores.tolist(), smoothed.tolist())):
        writer.writerow([i, f"{i / fps:.4f}", f"{s:.6g}" if math.isfinite(s) else "",
                         f"{m:.6g}" if math.isfinite(m) else "", int(math.isfinite(m) and m >= threshold)])
    return buffer.getvalue().encode()


def events_csv(events: list[dict]) -> bytes:
    """``event,start_frame,end_frame,start_s,end_s,peak_frame,peak_score,reason`` (frames inclusive, 0-based)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "peak_score"]
    writer.writerow(["event", *columns, "reason"])
    for i, e in enumerate(events):
        writer.writerow([i, *(f"{e[c]:.6g}" if isinstance(e[c], float) else e[c] for c in columns),
                         e.get("reason", "")])
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
            write_annotated: bool, progress=None, objects: FrameObjects | None = None,
            explained: list[dict] | None = None) -> dict[str, bytes]:
    """Second streaming pass: the annotated mp4 (optional) and the event thumbnails (at the peak frame, or, for an
    event explained by an object, at that object's frame with its box drawn). Returns the thumbnails."""
    from vadkit.io import write_video
    from vadkit.report.annotate import FrameAnnotator, draw_object

    explained = explained or [{} for _ in events]
    peaks = {x.get("object_frame", e.peak_frame): (e.thumbnail, x) for e, x in zip(events, explained)}

    def thumbnail(frame: np.ndarray, index: int) -> None:
        path, entry = peaks[index]
        if entry.get("box"):
            frame = draw_object(frame.copy(), entry["box"], objects.label(index))
        thumbs[path] = jpeg(frame)

    thumbs: dict[str, bytes] = {}
    if not write_annotated:
        if peaks:  # one pass up to the last peak (a seek per event would decode the video's start every time)
            for index, frame in enumerate(video.frames(0, max(peaks) + 1)):
                if index in peaks:
                    thumbnail(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB) if frame.ndim == 2 else frame, index)
        return thumbs
    abnormal = event_mask(events, video.num_frames)
    annotator = FrameAnnotator(smoothed, threshold, abnormal, video.fps, video.width, video.height,
                               objects=objects)
    task = progress.add_task(f"writing {name}/annotated.mp4", total=video.num_frames, info="") if progress is not None else None

    def frames():
        for index, frame in enumerate(video.frames()):
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            if index in peaks:
                thumbnail(frame, index)
            yield annotator(index, frame)
            if progress is not None:
                progress.advance(task)

    write_video(out_dir / "annotated.mp4", frames(), fps=video.fps)
    return thumbs


def score_video(path: str | Path, model: LoadedModel | Detector, out_dir: str | Path, *, name: str | None = None,
                smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA, min_event_frames: int = 8, merge_gap: int = 5,
                threshold: float | None = None, write_annotated: bool = True, progress=None,
                batch_size: int = 4, fps: float | None = None) -> dict:
    """Score one video and write its scored-video folder ``out_dir`` (see the module docstring).

    Args:
        path: a video file or a folder of frames.
        model: a :class:`LoadedModel` (from :func:`resolve_model`) or a fitted detector.
        out_dir: the video's own output folder (created; a previous ``result.json`` there is removed first; a
            failed score removes what it wrote, and the folder when it created it).
        name: the video's name in the report (default: the folder name of ``out_dir``).
        smoothing_sigma: Gaussian sigma in frames applied before thresholding (0: none).
        min_event_frames: shortest event kept; merge_gap: gaps shorter than this are bridged.
        threshold: overrides the threshold the detector fitted on its training data.
        write_annotated: write ``annotated.mp4`` (the second decode pass).
        progress: a rich ``Progress`` from :func:`make_progress`, or ``None`` for none.
        fps: a frame folder's frame rate (default: its benchmark layout's, e.g. UCSD 10 fps, else 25); a video
            file keeps its own. ``result.json`` says which rate was used and why (``fps``, ``fps_source``).

    Returns:
        the ``result.json`` content.
    """
    if isinstance(model, Detector):
        model = LoadedModel(detector=model, source=type(model).__name__)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    _prepare_folder(out_dir)
    try:
        return _score_video(path, model, out_dir, name or out_dir.name, smoothing_sigma, min_event_frames, merge_gap,
                            threshold, write_annotated, progress, batch_size, fps)
    except BaseException:
        _remove_partial(out_dir, created)  # a failed score never leaves a folder that looks like a result
        raise


def scoring_size(width: int, height: int, max_side: int = MAX_SCORING_SIDE) -> tuple[int, int] | None:
    """``(width, height)`` frames are resized to before scoring (longest side ``max_side``, aspect kept, even
    sides), or ``None`` when they are small enough (`vadkit score` and `vadkit watch` share the rule)."""
    longest = max(width, height)
    if longest <= max_side:
        return None
    scale = max_side / longest
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def open_for_scoring(path: str | Path, max_side: int = MAX_SCORING_SIDE, fps: float | None = None) -> tuple:
    """Open a video; frames larger than ``max_side`` on their longest side are resized at decoding (aspect kept);
    ``fps``: a frame folder's rate (see :func:`vadkit.datasets.layouts.frame_rate`). Returns ``(video, warnings)``."""
    video = open_video(path, fps=fps)
    notes = list(video.warnings)
    size = scoring_size(video.width, video.height, max_side)
    if size is not None:
        notes.append(f"frames of {video.width}x{video.height} were resized to {size[0]}x{size[1]} at decoding "
                     f"(largest side {max_side}; the feature network sees 224x224 anyway)")
        video.close()
        video = open_video(path, size=size, fps=fps)
    return video, notes


def _length_warnings(video, detector: Detector) -> list[str]:
    if video.num_frames == 1:
        return ["one frame only (a still image?): a detector of motion or change has nothing to compare it with, "
                "so its score says little"]
    snippet = detector.geometry.snippet_len if detector.inputs == "features" else 0
    if video.num_frames < snippet:
        return [f"{video.num_frames} frames, shorter than one snippet ({snippet} frames): scored as one padded "
                f"snippet, so every frame gets the same score"]
    return []


def _score_video(path, model: LoadedModel, out_dir: Path, name: str, smoothing_sigma: float, min_event_frames: int,
                 merge_gap: int, threshold: float | None, write_annotated: bool, progress, batch_size: int,
                 fps: float | None) -> dict:
    from vadkit.datasets.layouts import frame_rate

    start = time.perf_counter()
    name = printable(name)
    rate, rate_source = frame_rate(path, fps)
    video, warnings_ = open_for_scoring(path, fps=rate)
    warnings_ += _length_warnings(video, model.detector)
    try:
        try:
            scores, objects = frame_scores(model, video, name, progress, batch_size)
        except VideoReadError as err:
            if not err.frames_read:
                raise
            # a file that breaks part-way: score what could be decoded, and say so
            warnings_.append(f"{err}; scored the first {err.frames_read} of {video.num_frames} frames")
            video = video.truncated(err.frames_read)
            scores, objects = frame_scores(model, video, name, progress, batch_size)
        thr = float(threshold) if threshold is not None else scores.threshold
        scores = scores.values
        smoothed = gaussian_smooth(scores, smoothing_sigma)
        events = find_events(smoothed, thr, video.fps, min_frames=min_event_frames, merge_gap=merge_gap)
        for i, e in enumerate(events):
            e.thumbnail = f"thumbs/event-{i}.jpg"
        event_dicts = explain_events(events, objects, scores, (video.width, video.height))
        atomic_write_bytes(out_dir / "scores.csv", scores_csv(scores, smoothed, thr, video.fps))
        from vadkit.report.plots import plot_scores

        plot_scores(scores, smoothed, thr, events, video.fps, out_dir / "plot.png",
                    title=f"{name}: {model.detector.name} ({len(events)} event{'s' if len(events) != 1 else ''})")
        thumbs = _render(video, out_dir, smoothed, thr, events, name, write_annotated, progress,
                         objects=objects, explained=event_dicts)
    finally:
        video.close()
    for rel, data in thumbs.items():
        atomic_write_bytes(out_dir / rel, data)
    atomic_write_bytes(out_dir / "events.csv", events_csv(event_dicts))
    files = {"csv": "scores.csv", "events": "events.csv", "plot": "plot.png", "report": "report.html"}
    if write_annotated:
        files["video"] = "annotated.mp4"
    result = {
        "format": FORMAT_VERSION, "video": printable(str(Path(path).resolve())), "name": printable(name),
        "num_frames": video.num_frames, "fps": float(video.fps), "fps_source": rate_source, "width": video.width,
        "height": video.height, "duration_s": video.num_frames / video.fps, "model": model.info(), "device": model.device,
        "threshold": thr,
        "smoothing_sigma": smoothing_sigma, "min_event_frames": min_event_frames, "merge_gap": merge_gap,
        "scores": _clean(scores), "smoothed": _clean(smoothed), "events": event_dicts,
        "files": files, "protocol": model.protocol, "warnings": warnings_,
    }
    if objects is not None:  # per frame: the most abnormal object's box and attribute scores
        result["objects"] = objects.to_json((video.width, video.height))
    from vadkit.report.html import render_report

    seconds = time.perf_counter() - start  # the report shows it: measured before the report itself (milliseconds)
    result.update(seconds=round(seconds, 3), frames_per_s=round(video.num_frames / max(seconds, 1e-9), 2))
    report = render_report(result, (out_dir / "plot.png").read_bytes(), thumbs)
    atomic_write_bytes(out_dir / "report.html", report.encode())
    atomic_write_json(out_dir / "result.json", result)  # last: its presence marks the folder finished
    return result


OUTPUTS = ("scores.csv", "events.csv", "plot.png", "annotated.mp4", "report.html")
_TEMPORARY_PREFIXES = tuple(f".{n}." for n in (*OUTPUTS, "result.json")) + (".annotated.",)


def _prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir``; remove a previous result (``result.json`` first, so the folder reads as unfinished) and
    the temporary files of an interrupted write (``.<name>.XXXX``, and ``.<stem>.XXXX.<suffix>`` as videos were
    written before)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").unlink(missing_ok=True)
    for stale in OUTPUTS:
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "thumbs", ignore_errors=True)
    for temporary in out_dir.glob(".*"):
        if temporary.is_file() and temporary.name.startswith(_TEMPORARY_PREFIXES):
            temporary.unlink(missing_ok=True)


def _remove_partial(out_dir: Path, created: bool) -> None:
    """Undo a failed score: its files go, and the folder too when this run created it and nothing else is in it."""
    _prepare_folder(out_dir)
    if created:
        try:
            out_dir.rmdir()
        except OSError:
            pass


def score_videos(inputs: Iterable[str | Path], model: LoadedModel | str | Path, out_root: str | Path,
                 progress: bool = True, errors: list | None = None, backend: str = "auto", device: str = "cpu",
                 skipped: list | None = None, **options) -> list[dict]:
    """Score every video of ``inputs`` (files, frame folders, folders of videos) into ``out_root/<name>/``.

    Args:
        errors: when a list is given, a video that cannot be read or scored is recorded there as
            ``(path, message)`` and the others go on; otherwise the first failure is raised.
        backend, device: the runtime and device when ``model`` is a name or path (see :meth:`LoadedModel.ready`).
        skipped: when a list is given, each entry of an input folder that is not a video (an image beside videos,
            a text file, a FIFO, ...) is recorded there as ``(path, reason)``.
        options: passed to :func:`score_video`.

    Returns:
        the ``result.json`` of each video scored, in input order.
    """
    videos = find_videos(inputs, skipped)
    if not isinstance(model, LoadedModel):
        model = resolve_model(model, backend=backend, device=device)
    out_root = Path(out_root)
    results = []
    with make_progress(progress) as bar:
        for path, name in zip(videos, unique_names(videos)):
            try:
                results.append(score_video(path, model, out_root / name, name=name,
                                           progress=bar if progress else None, **options))
            except Exception as err:  # noqa: BLE001 - one bad video never stops the batch; each is reported
                if errors is None:
                    raise
                errors.append((path, str(err) or type(err).__name__))
    return results
