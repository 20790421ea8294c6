"""``vadkit fit-normal``: a training like any other on a one-class split of a user's own footage.

Two methods: ``knn`` (the default: a 1-NN on I3D snippet features) and ``objects`` (the object-attribute detector
on vadkit's motion boxes: velocity and appearance densities, boxes and reasons for every event; no precomputed
boxes, no training beyond fitting densities).

Every given video is normal training footage. The run folder is the same as ``vadkit train`` writes
(``config.yaml`` with ``data.split: fit-normal``, ``split.json``, ``protocol.json``, ``model.pt`` holding the
detector, its calibrated threshold, extraction settings and card), plus ``calibration.json`` / ``calibration.png``.

``vadkit evaluate RUN`` accepts it: without test videos it reports the calibration on held-out normal footage;
with ``--videos`` it scores them and reports what needs no labels (the share of frames at or above the threshold,
events per video); with ``--labels FILE`` (CSV ``video,start,end`` rows or JSON ``{"video": [[start, end], ...]}``,
0-based, end exclusive, as the ``folder`` dataset reads; videos not listed are normal) every frame-level number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vadkit.detectors import Detector
from vadkit.detectors.knn import KNNDetector
from vadkit.engine.config import DataConfig, RunConfig
from vadkit.engine.run import RunDir
from vadkit.engine.train import protocol_card, save_model, store_item
from vadkit.io.inputs import common_root, find_videos, unique_names

FIT_NORMAL_SELECTION = "none (fixed k); threshold = the (1 - FAR) quantile of held-out normal snippet scores"
OBJECTS_SELECTION = ("none (fixed arguments); attributes calibrated and threshold = the (1 - FAR) quantile of frame "
                     "scores, both leaving one training video out")
METHODS = ("knn", "objects")


def fit_normal(inputs, out_dir, *, k: int = 1, false_alarm_rate: float = 0.01, metric: str = "cosine",
               center: bool = False, holdout: float = 0.2, seed: int = 0, settings=None,
               features_dir=None, batch_size: int = 4, progress: bool = True, dataset: str = "user footage",
               method: str = "knn", box_thresholds: str = "ped2", box_detector: str | Path | None = None) -> RunDir:
    """Fit a one-class detector on normal videos and write a run folder: ``method="knn"`` a
    :class:`~vadkit.detectors.knn.KNNDetector` (the arguments below), ``method="objects"`` the object-attribute
    detector on motion boxes (``box_thresholds``: the motion-box thresholds, by dataset name; ``false_alarm_rate``,
    ``seed`` and ``dataset`` apply too; ``box_detector``: an ONNX object detector, or ``"hog"`` for OpenCV's built-in
    people detector, whose boxes come first).

    Args:
        inputs: video files, frame folders or folders of them (see :func:`vadkit.io.inputs.find_videos`).
        out_dir: the run folder (created).
        k, false_alarm_rate, metric, center, holdout, seed: the detector's arguments.
        settings: :class:`~vadkit.features.extract.ExtractionSettings` (default: vadkit's defaults).
        features_dir: the feature store to extract into (default ``<out_dir>/features``); videos already in it
            are not extracted again.
        dataset: what the footage is, for the protocol card.
    """
    if method not in METHODS:
        raise ValueError(f"unknown fit-normal method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "objects":
        return fit_normal_objects(inputs, out_dir, false_alarm_rate=false_alarm_rate, seed=seed,
                                  box_thresholds=box_thresholds, box_detector=box_detector, progress=progress,
                                  dataset=dataset)
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore
    from vadkit.report.plots import plot_calibration

    args = dict(k=k, metric=metric, center=center, holdout=holdout, false_alarm_rate=false_alarm_rate)
    detector = KNNDetector(**args, seed=seed)  # the arguments are checked before minutes of feature extraction
    videos = [p.resolve() for p in find_videos(inputs)]
    names = unique_names(videos)
    run = RunDir(out_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.clear()
    store_root = Path(features_dir) if features_dir else run.path / "features"
    _refuse_name_clashes(store_root, names, videos)
    extractor = SnippetExtractor(settings or ExtractionSettings(), batch_size=batch_size)
    extract_videos(list(zip(names, videos)), store_root, extractor, progress=progress)
    store = FeatureStore(store_root)
    items = [store_item(n, store.videos[n]["num_frames"], p, store.videos[n]["fps"], store, label=0)
             for n, p in zip(names, videos)]
    trained_on = describe_footage(names, items)
    config = RunConfig(detector="knn", detector_args=args,
                       data=DataConfig(dataset="folder", root=str(common_root(videos)), features=str(store_root),
                                       split="fit-normal"), seed=seed, output=str(run.path.parent), name=run.path.name)
    split = write_one_class_split(run, config, names, videos, f"holdout {holdout} for calibration")
    detector.fit(items, progress=progress)
    card = protocol_card(config, detector, split, store, FIT_NORMAL_SELECTION).replace(
        dataset=dataset, method=f"knn: k={k}, {metric}{', centred' if center else ''}")
    save_model(detector, run, card, config.data.crops, trained_on)
    calibration = {key: v for key, v in detector.calibration_.items() if key != "held_out_scores"}
    run.write_json("calibration.json", {**calibration, "threshold": detector.threshold_,
                                        "false_alarm_rate": false_alarm_rate})
    plot_calibration(detector.calibration_["held_out_scores"], detector.threshold_, false_alarm_rate,
                     run.path / "calibration.png", title=f"k-NN calibration: {trained_on}"[:120])
    return run


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


BOX_DETECTOR_NAMES = {"onnx": "ONNX detector + ", "hog": "OpenCV HOG people detector + ",
                      "yolox": "YOLOX-Nano (shipped) + "}


def fit_normal_objects(inputs, out_dir, *, false_alarm_rate: float = 0.01, seed: int = 0,
                       box_thresholds: str = "ped2", box_detector: str | Path | None = None, progress: bool = True,
                       dataset: str = "user footage") -> RunDir:
    """Fit the object-attribute detector on normal videos (motion boxes, after the boxes of ``box_detector``, an ONNX
    detector, ``"hog"`` for OpenCV's built-in people detector or ``"yolox"`` for the YOLOX-Nano shipped with vadkit,
    when given; boxes, flow and attributes cached in the run folder) and write a run folder that `vadkit score
    --model` takes."""
    from vadkit.detectors import build_detector
    from vadkit.io import open_video

    run = RunDir(out_dir)
    boxes = dict(boxes="motion")
    if box_detector and str(box_detector) in ("hog", "yolox") and not Path(box_detector).is_file():
        boxes = dict(boxes=str(box_detector))  # OpenCV's built-in HOG people detector, or the shipped YOLOX-Nano
    elif box_detector:
        boxes = dict(boxes="onnx", detector_file=str(Path(box_detector).resolve()))
    args = dict(**boxes, thresholds=box_thresholds, false_alarm_rate=false_alarm_rate, calibration="balanced",
                appearance="hog", cache_dir=str(Path(run.path).resolve() / "objects-cache"))
    detector = build_detector("objects", **args, seed=seed)  # the arguments are checked before minutes of work
    videos = [p.resolve() for p in find_videos(inputs)]
    if len(videos) < 2:
        raise ValueError(f"the objects method needs at least two normal videos (it calibrates by leaving one video "
                         f"out); found {len(videos)} in {', '.join(map(str, inputs))}")
    names = unique_names(videos)
    run.path.mkdir(parents=True, exist_ok=True)
    run.clear()
    items = []
    for name, path in zip(names, videos):
        with open_video(path) as video:
            items.append(store_item(name, video.num_frames, path, video.fps, label=0))
    trained_on = describe_footage(names, items)
    config = RunConfig(detector="objects", detector_args=args,
                       data=DataConfig(dataset="folder", root=str(common_root(videos)), split="fit-normal"),
                       seed=seed, output=str(run.path.parent), name=run.path.name)
    split = write_one_class_split(run, config, names, videos, "each held out once for calibration")
    detector.fit(items, progress=progress)
    card = protocol_card(config, detector, split, None, OBJECTS_SELECTION).replace(
        dataset=dataset, method=f"objects: {BOX_DETECTOR_NAMES.get(boxes['boxes'], '')}motion boxes "
                                f"({box_thresholds} thresholds), velocity + HOG appearance")
    save_model(detector, run, card, config.data.crops, trained_on)
    c = detector.calibration_
    run.write_json("calibration.json", {"threshold": detector.threshold_, "false_alarm_rate": false_alarm_rate,
                                        "achieved_far": c["held_out_far"], "held_out_unit": "frames",
                                        "training_objects": c["training_objects"],
                                        "attributes": {n: c[n] for n in ("velocity", "appearance")}})
    return run


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
                        labels: str | Path | None, progress: bool = True) -> dict:
    """The numbers a fit-normal run supports (see the module docstring); written to ``metrics.json``."""
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
                   "held_out_snippets": calibration.get("held_out_snippets"), "protocol": protocol}
        run.write_json("metrics.json", metrics)
        return metrics
    items = _evaluation_items(run, config, detector, videos, progress)
    frame_labels = _read_labels(labels, items) if labels else None
    scores, alarms, events = {}, {}, {}
    for item in items:
        result = detector.score(item)
        scores[item.id] = result.values
        alarms[item.id] = float(result.abnormal()[result.scored].mean()) if result.scored.any() else float("nan")
        events[item.id] = len(find_events(gaussian_smooth(result.values, 3.0), result.threshold, item.fps))
        run.write_scores(f"eval/{item.id}", result.values)
    pooled = np.concatenate([s[np.isfinite(s)] for s in scores.values()])
    metrics: dict = {"evaluated_on": f"{len(items)} given videos" + (f", labels {labels}" if labels else ", no labels"),
                     "threshold": detector.threshold_, "num_videos": len(items), "num_frames": int(pooled.size),
                     "frames_at_or_above_threshold": float((pooled >= detector.threshold_).mean()),
                     "per_video": {v.split("/", 1)[-1]: {"frames_at_or_above_threshold": alarms[v], "events": events[v]}
                                   for v in scores}}
    if frame_labels is not None:
        metrics.update(evaluate_frames(scores, frame_labels, threshold=detector.threshold_))
        protocol["split"] = f"{protocol.get('split', '')}; evaluated on given videos with labels {labels}"
    metrics["protocol"] = protocol
    run.write_json("metrics.json", metrics)
    return metrics


def _evaluation_items(run: RunDir, config: RunConfig, detector: Detector, videos: Sequence, progress: bool) -> list:
    """Detector inputs for the evaluation videos (features extracted with the detector's own settings into the
    run's store, under ``eval/<name>``)."""
    from vadkit.io import open_video

    paths = [p.resolve() for p in find_videos(videos)]
    names = unique_names(paths)
    if detector.inputs != "features":
        items = []
        for name, path in zip(names, paths):
            with open_video(path) as source:
                items.append(store_item(name, source.num_frames, path, source.fps))
        return items
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore

    settings = ExtractionSettings(**{k: v for k, v in (detector.extraction_ or {}).items()
                                     if k in ExtractionSettings.__dataclass_fields__})
    root = Path(config.data.features or run.path / "features")
    keys = [f"eval/{n}" for n in names]
    _refuse_name_clashes(root, keys, paths)
    extract_videos(list(zip(keys, paths)), root, SnippetExtractor(settings), progress=progress)
    store = FeatureStore(root)
    return [store_item(key, store.videos[key]["num_frames"], path, store.videos[key]["fps"], store, detector.crops_)
            for key, path in zip(keys, paths)]


def _read_labels(path: str | Path, items: list) -> dict[str, np.ndarray]:
    """``{item id: (num_frames,) 0/1}`` from a range table; a video not in the table is all normal."""
    from vadkit.datasets.groundtruth import read_range_table

    table = read_range_table(path)
    out = {}
    for item in items:
        name = item.id.split("/", 1)[-1]
        path_name = Path(item.path).name if item.path is not None else name
        ranges = table.get(name, table.get(path_name, []))
        labels = np.zeros(item.num_frames, dtype=np.int64)
        for start, end in ranges:
            if not 0 <= start < end <= item.num_frames:
                raise ValueError(f"{path}: range [{start}, {end}) of video {name} lies outside its {item.num_frames} "
                                 f"frames")
            labels[start:end] = 1
        out[item.id] = labels
    unknown = sorted(set(table) - {i.id.split("/", 1)[-1] for i in items}
                     - {Path(i.path).name for i in items if i.path is not None})
    if unknown:
        raise ValueError(f"{path} labels videos that were not given: {unknown[:5]}")
    return out
