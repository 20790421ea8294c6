"""``vadkit fit-normal``: a training like any other on a one-class split of a user's own footage.

Two methods: ``knn`` (the default: a 1-NN on I3D snippet features) and ``objects`` (the object-attribute detector
on vadkit's motion boxes: velocity and appearance densities, boxes and reasons for every event; no precomputed
boxes, no training beyond fitting densities).

Every given video is normal training footage. The run folder is the same as ``vadkit train`` writes
(``config.yaml`` with ``data.split: fit-normal``, ``split.json``, ``protocol.json``, ``model.pt`` holding the
detector, its calibrated threshold, extraction settings and card), plus ``calibration.json`` / ``calibration.png``.

``vadkit evaluate RUN`` accepts it: without test videos it reports the calibration on held-out normal footage;
with ``--videos`` it scores them (into an evaluation folder of its own, ``--out``, never the run folder; results of
``vadkit score`` with this model are reused with ``--scored``) and reports what needs no labels (the share of frames at or above the threshold,
events per video); with ``--labels FILE`` (CSV ``video,start,end`` rows or JSON ``{"video": [[start, end], ...]}``,
0-based, end exclusive, as the ``folder`` dataset reads; videos not listed are normal) every frame-level number.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from vadkit.detectors import Detector
from vadkit.engine.config import DataConfig, RunConfig
from vadkit.engine.run import RunDir
from vadkit.engine.items import protocol_card, save_model, store_item
from vadkit.io.inputs import common_root, find_videos, unique_names
from vadkit.scoring import DEFAULT_SMOOTHING_SIGMA

SELECTION = "none (fixed arguments); threshold: {rule}"


def fit_normal(inputs, out_dir, *, method: str = "objects", detector_args: dict | None = None,
               false_alarm_rate: float = 0.01, seed: int = 0, settings=None, features_dir=None, batch_size: int = 4,
               progress: bool = True, dataset: str = "user footage", fps: float | None = None,
               device: str = "cpu") -> RunDir:
    """Fit a one-class detector of the registry on normal videos and write a run folder that `vadkit score
    --model`, `evaluate` and the viewer take: ``method="objects"`` (the default: the object-attribute detector in the
    configuration declared on Ped2's training clips, YOLOX-Nano boxes; boxes, flow and attributes cached in the run
    folder; it names a box and a reason for every event) or ``"knn"`` (1-NN on I3D snippet features).

    Args:
        inputs: video files, frame folders or folders of them (see :func:`vadkit.io.inputs.find_videos`).
        out_dir: the run folder (created).
        method: the detector (its name in the registry); its ``fit_normal_args`` come before ``detector_args``.
        detector_args: the detector's own arguments (``k``, ``metric``, ``holdout`` for knn; ``boxes``,
            ``thresholds`` for objects, ...); an argument the detector does not take is refused.
        false_alarm_rate, seed: the threshold's false-alarm rate on held-out normal data, and the seed.
        settings: :class:`~vadkit.features.extract.ExtractionSettings` of a feature detector (default: vadkit's).
        features_dir: the feature store to extract into (default ``<out_dir>/features``); videos already in it
            are not extracted again.
        dataset: what the footage is, for the protocol card.
        fps: the frame rate of frame folders (default: their benchmark layout's, else 25; files keep their own).
        device: where the networks run (I3D features; the k-NN bank and the object densities stay on the CPU).

    ``calibration.json`` holds the detector's :meth:`~vadkit.detectors.Detector.calibration_report`, the frame
    rates used (``fps``) and, when the held-out footage is too short for the false-alarm rate asked, a
    ``warnings`` line saying how much footage it would need and what the threshold is.
    """
    from vadkit.detectors import build_detector

    if method not in fit_normal_methods():
        raise ValueError(f"unknown fit-normal method {method!r}; expected one of {', '.join(fit_normal_methods())}")
    run = RunDir(out_dir)
    args = {**_detector_class(method).fit_normal_args, **(detector_args or {}), "false_alarm_rate": false_alarm_rate}
    if "cache_dir" in _accepted_args(method) and not args.get("cache_dir"):
        args["cache_dir"] = str(Path(run.path).resolve() / f"{method}-cache")
    _refuse_unknown_args(method, args)
    detector = build_detector(method, **args, seed=seed)  # the arguments are checked before minutes of work
    detector.to_device(device)
    videos = [p.resolve() for p in find_videos(inputs)]
    names = unique_names(videos)
    run.path.mkdir(parents=True, exist_ok=True)
    run.clear()
    items, store, stride = _training_items(detector, names, videos, run, settings, features_dir, batch_size,
                                           progress, fps, device)
    trained_on = describe_footage(names, items)
    config = RunConfig(detector=method, detector_args=args,
                       data=DataConfig(dataset="folder", root=str(common_root(videos)),
                                       features=str(store.root) if store is not None else None, split="fit-normal"),
                       seed=seed, output=str(run.path.parent), name=run.path.name)
    split = write_one_class_split(run, config, names, videos, "held-out normal footage for calibration")
    detector.fit(items, progress=progress)
    card = protocol_card(config, detector, split, store, SELECTION.format(rule=detector.threshold_rule)).replace(
        dataset=dataset, method=detector.describe())
    save_model(detector, run, card, config.data.crops, trained_on)
    report = detector.calibration_report()
    warnings = short_footage_warnings(report, detector.threshold_, false_alarm_rate, detector.args.get("holdout"),
                                      stride, float(np.mean([item.fps for item in items])))
    run.write_json("calibration.json", {**{k: v for k, v in report.items() if k != "held_out_scores"},
                                        "threshold": detector.threshold_, "false_alarm_rate": false_alarm_rate,
                                        "fps": frame_rates(videos, fps), "warnings": warnings})
    if report.get("held_out_scores") is not None:
        from vadkit.report.plots import plot_calibration

        plot_calibration(report["held_out_scores"], detector.threshold_, false_alarm_rate,
                         run.path / "calibration.png", title=f"{detector.name} calibration: {trained_on}"[:120])
    return run


def _detector_class(method: str) -> type:
    from vadkit.detectors.base import DETECTORS, _import_detectors

    _import_detectors()
    return DETECTORS.get(method)


def fit_normal_methods() -> list[str]:
    """The registered detectors `vadkit fit-normal` offers (their ``fit_normal_args`` is not None)."""
    from vadkit.detectors import list_detectors

    return [name for name in list_detectors() if _detector_class(name).fit_normal_args is not None]


def _accepted_args(method: str) -> set[str]:
    import inspect

    return set(inspect.signature(_detector_class(method).__init__).parameters) - {"self"}


def _refuse_unknown_args(method: str, args: dict) -> None:
    """An option that the chosen method does not take is an error, never silently dropped."""
    unknown = sorted(set(args) - _accepted_args(method))
    if unknown:
        others = [m for m in fit_normal_methods() if m != method]
        raise ValueError(f"--method {method} does not take {', '.join(unknown)} (options of "
                         f"{', '.join(others) or 'another method'})")


def _training_items(detector: Detector, names: Sequence[str], videos: Sequence[Path], run: RunDir, settings,
                    features_dir, batch_size: int, progress: bool, fps: float | None, device: str):
    """The normal videos as detector inputs: snippet features extracted into a store for a feature detector,
    decoded frames otherwise. Returns ``(items, store or None, frames per held-out unit)``."""
    from vadkit.datasets.layouts import frame_rate
    from vadkit.io import open_video

    if detector.inputs != "features":
        items = []
        for name, path in zip(names, videos):
            with open_video(path, fps=frame_rate(path, fps)[0]) as video:
                items.append(store_item(name, video.num_frames, path, video.fps, label=0))
        return items, None, 1
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore

    store_root = Path(features_dir) if features_dir else run.path / "features"
    _refuse_name_clashes(store_root, names, videos)
    extractor = SnippetExtractor(settings or ExtractionSettings(), batch_size=batch_size, device=device)
    extract_videos([(n, p, fps) for n, p in zip(names, videos)], store_root, extractor, progress=progress)
    store = FeatureStore(store_root)
    items = [store_item(n, store.videos[n]["num_frames"], p, store.videos[n]["fps"], store, label=0)
             for n, p in zip(names, videos)]
    return items, store, extractor.settings.stride


def frame_rates(videos: Sequence[Path], fps: float | None) -> dict[str, str]:
    """``{"10 fps": "the ucsd_ped2 layout's rate", …}``: each rate the videos were read at and why."""
    from vadkit.datasets.layouts import frame_rate
    from vadkit.io import open_video

    rates: dict[str, str] = {}
    for path in videos:
        rate, why = frame_rate(path, fps)
        if rate is None:
            with open_video(path) as video:
                rate = video.fps
        rates.setdefault(f"{rate:g} fps", why)
    return rates


#: Held-out frame scores (object detectors) are counted in blocks of this many frames: neighbouring frames share
#: their objects and are smoothed together, so one frame is far from one independent score (a snippet, the unit of
#: the feature detectors, is 16 frames as well)
FRAME_BLOCK = 16


def short_footage_warnings(report: dict, threshold: float, far: float, holdout: float | None, stride: int,
                           fps: float) -> list[str]:
    """The warning a user needs when the held-out scores (``report["held_out"]`` of them, each ``stride`` frames
    of footage; frame scores counted in blocks of :data:`FRAME_BLOCK`) are too few to measure the false-alarm rate
    ``far``: a (1 - far) quantile of n scores is only meaningful with n >= 1/far of them. ``holdout``: the share of
    the footage held out (``None``: all of it, each video in turn)."""
    import math

    if report.get("held_out") is None:
        return []
    held, unit = int(report["held_out"]), report.get("held_out_unit", "scores")
    needed = math.ceil(1.0 / far)
    per_score, counted = (FRAME_BLOCK, held // FRAME_BLOCK) if unit == "frames" else (stride, held)
    if counted >= needed:
        return []
    scores = np.sort(np.asarray(report.get("held_out_scores") or [], dtype=np.float64))[::-1]
    above = int((scores > threshold).sum()) if scores.size else round(float(report.get("achieved_far") or 0) * held)
    held_minutes = needed * per_score / fps / 60
    share = holdout or 1.0
    footage = (f"so roughly {held_minutes / share:.0f} min of normal footage with --holdout {share:g}" if holdout
               else "all of it normal footage (each video is held out in turn)")
    top = f" (the highest held-out score is {scores[0]:.4g})" if scores.size else ""
    what = (f"{held} held-out frames, {counted} blocks of {FRAME_BLOCK} (neighbouring frames share their objects and "
            f"are smoothed together, so a block counts as one score), and a false-alarm rate of {far:g} needs at least "
            f"{needed} blocks" if unit == "frames" else
            f"{held} held-out {unit}, and a false-alarm rate of {far:g} needs at least {needed} (1/far)")
    return [f"the held-out footage is too short for --far {far:g}: {what}, about {held_minutes:.1f} min of held-out "
            f"footage at {fps:g} fps, {footage}. The threshold was set to {threshold:.4g} instead, the {1 - far:g} "
            f"quantile of {held} scores{top}: {above} of {held} held-out {unit} {'lies' if above == 1 else 'lie'} "
            f"above it ({above / max(held, 1):.3f}), so expect more false alarms than asked, or, where the "
            f"threshold is high, missed events. Give more normal footage, or ask for --far "
            f"{1 / max(counted, 1):.2g} or more."]


def describe_footage(names: Sequence[str], items: Sequence) -> str:
    """The model file's line on its training data: "3 normal videos, 540 frames: cam0, cam1, cam2"."""
    frames = sum(item.num_frames for item in items)
    shown = ", ".join(names[:5]) + (f" … ({len(names)} videos)" if len(names) > 5 else "")
    return f"{len(names)} normal video{'s' if len(names) != 1 else ''}, {frames} frames: {shown}"


def write_one_class_split(run: RunDir, config: RunConfig, names: Sequence[str], videos: Sequence[Path],
                          calibration: str) -> dict:
    """Write the run's config and its one-class split (every given video is normal training footage)."""
    split = {"kind": f"one-class, fit-normal ({len(names)} normal videos; {calibration})",
             "rule": "every given video is normal training footage", "train": list(names),
             "paths": {n: str(p) for n, p in zip(names, videos)}, "test": []}
    run.write_config(config.to_dict())
    run.write_json("split.json", split)
    return split


def _refuse_name_clashes(store_root: Path, names: Sequence[str], videos: Sequence[Path]) -> None:
    """A reused store: a name must mean the same video."""
    from vadkit.features.store import FeatureStore

    if not (store_root / "manifest.json").is_file():
        return
    known = FeatureStore(store_root).videos
    clash = [f"{n} (store: {known[n].get('source')}, now: {p})" for n, p in zip(names, videos)
             if n in known and known[n].get("source") not in (None, str(p))]
    if clash:
        raise ValueError(f"the feature store {store_root} holds other videos under the same names: "
                         f"{'; '.join(clash[:3])}; use another --features folder")


# ---------------------------------------------------------------------------------------------------------------
# Evaluating a fit-normal run
# ---------------------------------------------------------------------------------------------------------------
def evaluate_fit_normal(run: RunDir, config: RunConfig, detector: Detector, videos: Sequence | None,
                        labels: str | Path | None, progress: bool = True, out: str | Path | None = None,
                        scored: Sequence[str | Path] | None = None, fps: float | None = None, device: str = "cpu",
                        smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA) -> dict:
    """The numbers a fit-normal run supports (see the module docstring), written to ``<out>/metrics.json`` with
    each video's scores (``out`` defaults to ``<run>-eval``; nothing is written into the run folder). Videos that
    a `vadkit score` folder in ``scored`` already scored with this model are not scored again."""
    from vadkit.metrics import evaluate_frames
    from vadkit.report.events import find_events
    from vadkit.scoring import gaussian_smooth

    protocol = dict(detector.protocol_)
    if not videos:
        if labels:
            raise ValueError("--labels needs the videos they label: give them with --videos")
        calibration = run.read_json("calibration.json")
        metrics = {"evaluated_on": "held-out normal training footage (calibration)", "threshold": detector.threshold_,
                   "far_requested": calibration.get("false_alarm_rate"), "far_held_out": calibration.get("achieved_far"),
                   "held_out": calibration.get("held_out"), "held_out_unit": calibration.get("held_out_unit"),
                   "protocol": protocol}
        if out:
            RunDir(out).path.mkdir(parents=True, exist_ok=True)
            RunDir(out).write_json("metrics.json", metrics)
        return {**metrics, **({"out": str(out)} if out else {})}
    target = RunDir(out or run.path.parent / f"{run.path.name}-eval")
    if target.path.resolve() == run.path.resolve():
        raise ValueError(f"--out {target.path} is the model's own folder: give an evaluation folder of its own")
    target.path.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target.path / "scores", ignore_errors=True)  # no scores of an earlier evaluation beside new ones
    paths = [p.resolve() for p in find_videos(videos)]
    names = unique_names(paths)
    reused = reuse_scored(run, names, paths, scored or [])
    todo = [(n, p) for n, p in zip(names, paths) if n not in reused]
    items = {item.id: item for item in _evaluation_items(target, detector, todo, progress, fps, device)}
    frame_labels = _read_labels(labels, names, paths, reused, items) if labels else None
    scores, alarms, events = {}, {}, {}
    for name in names:
        if name in reused:
            values, rate = reused[name]["scores"], reused[name]["fps"]
        else:
            values, rate = detector.score(items[name]).values, items[name].fps
        scored_frames = np.isfinite(values)
        scores[name] = values
        alarms[name] = float((values[scored_frames] >= detector.threshold_).mean()) if scored_frames.any() else float("nan")
        events[name] = len(find_events(gaussian_smooth(values, smoothing_sigma), detector.threshold_, rate))
        target.write_scores(name, values)
    pooled = np.concatenate([s[np.isfinite(s)] for s in scores.values()])
    metrics: dict = {"evaluated_on": f"{len(names)} given videos" + (f", labels {labels}" if labels else ", no labels"),
                     "model": str(run.path), "threshold": detector.threshold_, "num_videos": len(names),
                     "events_smoothing_sigma": smoothing_sigma,
                     "num_frames": int(pooled.size),
                     "frames_at_or_above_threshold": float((pooled >= detector.threshold_).mean()),
                     "reused_scores": {n: reused[n]["folder"] for n in names if n in reused},
                     "per_video": {v: {"frames_at_or_above_threshold": alarms[v], "events": events[v]} for v in scores}}
    if frame_labels is not None:
        metrics.update(evaluate_frames(scores, frame_labels, threshold=detector.threshold_))
        protocol["split"] = f"{protocol.get('split', '')}; evaluated on given videos with labels {labels}"
        from vadkit.report.plots import plot_roc

        plot_roc(scores, frame_labels, target.path / "roc.png", title=f"{run.path.name} on {len(names)} videos")
    metrics["protocol"] = protocol
    target.write_json("metrics.json", metrics)
    return {**metrics, "out": str(target.path)}


def reuse_scored(run: RunDir, names: Sequence[str], paths: Sequence[Path], folders: Sequence) -> dict[str, dict]:
    """``{name: {"scores", "fps", "folder"}}`` for the videos a `vadkit score` output folder in ``folders`` scored
    with this run's model (its ``result.json`` names this run and this video, and is newer than ``model.pt``)."""
    import json

    from vadkit.io.inputs import printable

    model_time = (run.path / "model.pt").stat().st_mtime
    found: dict[str, dict] = {}
    for name, path in zip(names, paths):
        for folder in folders:
            file = Path(folder) / name / "result.json"
            try:
                result = json.loads(file.read_text())
                fresh = file.stat().st_mtime >= model_time
            except (OSError, ValueError):
                continue
            if (fresh and result.get("video") == printable(str(path))
                    and (result.get("model") or {}).get("source") == str(run.path.resolve())
                    and len(result.get("scores") or []) == result.get("num_frames")):
                values = np.array([np.nan if v is None else v for v in result["scores"]], dtype=np.float64)
                found[name] = {"scores": values, "fps": float(result["fps"]), "folder": str(file.parent)}
                break
    return found


def _evaluation_items(target: RunDir, detector: Detector, videos: Sequence[tuple[str, Path]], progress: bool,
                      fps: float | None, device: str = "cpu") -> list:
    """Detector inputs for the evaluation videos (features extracted with the detector's own settings into the
    evaluation folder's store, reused by a later evaluation into the same folder)."""
    from vadkit.datasets.layouts import frame_rate
    from vadkit.io import open_video

    if detector.inputs != "features":
        items = []
        for name, path in videos:
            with open_video(path, fps=frame_rate(path, fps)[0]) as source:
                items.append(store_item(name, source.num_frames, path, source.fps))
        return items
    if not videos:
        return []
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore

    settings = ExtractionSettings(**{k: v for k, v in (detector.extraction_ or {}).items()
                                     if k in ExtractionSettings.__dataclass_fields__})
    root = target.path / "features"
    names, paths = [n for n, _ in videos], [p for _, p in videos]
    _refuse_name_clashes(root, names, paths)
    extract_videos([(n, p, fps) for n, p in videos], root, SnippetExtractor(settings, device=device),
                   progress=progress)
    store = FeatureStore(root)
    return [store_item(n, store.videos[n]["num_frames"], p, store.videos[n]["fps"], store, detector.crops_)
            for n, p in videos]


def _read_labels(path: str | Path, names: Sequence[str], paths: Sequence[Path], reused: dict,
                 items: dict) -> dict[str, np.ndarray]:
    """``{video name: (num_frames,) 0/1}`` from a range table; a video not in the table is all normal."""
    from vadkit.datasets.groundtruth import read_range_table

    table = read_range_table(path)
    out = {}
    for name, video in zip(names, paths):
        num_frames = len(reused[name]["scores"]) if name in reused else items[name].num_frames
        ranges = table.get(name, table.get(video.name, []))
        labels = np.zeros(num_frames, dtype=np.int64)
        for start, end in ranges:
            if not 0 <= start < end <= num_frames:
                raise ValueError(f"{path}: range [{start}, {end}) of video {name} lies outside its {num_frames} "
                                 f"frames")
            labels[start:end] = 1
        out[name] = labels
    unknown = sorted(set(table) - set(names) - {p.name for p in paths})
    if unknown:
        raise ValueError(f"{path} labels videos that were not given: {unknown[:5]}")
    return out
