"""Config in, run folder out: data and split, feature store, detector fit, test scoring, metrics, protocol card.

The test split is touched exactly once, after training, to score it. Nothing about training (schedule, checkpoint,
threshold) depends on test labels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vadkit.detectors import Detector, VideoItem, build_detector, load_detector
from vadkit.device import resolve_device
from vadkit.engine.config import RunConfig
from vadkit.engine.items import (FIXED_SCHEDULE, class_index, make_items, protocol_card, record_key,  # noqa: F401
                                 save_model, store_item)
from vadkit.engine.run import RunDir, seed_everything
from vadkit.metrics import ProtocolCard, evaluate_classification, evaluate_frames
from vadkit.scoring import gaussian_smooth, minmax_per_video


def select_records(records: Sequence, pick: str | None = None, limit: int | None = None) -> list:
    """Some of a dataset's records: ``pick`` names them, comma-separated, by id (``Test001``), key
    (``test/Test001``) or file / folder name (``01``, ``01.avi``), in the order given; ``limit`` keeps the first N.

    Raises:
        ValueError: a name matches no record (the message lists a few that exist).
    """
    records = list(records)
    if pick:
        chosen = []
        for name in (n.strip() for n in pick.split(",") if n.strip()):
            found = [r for r in records if name in (r.id, record_key(r), Path(r.path).name, Path(r.path).stem)]
            if not found:
                known = ", ".join(f"{r.id} ({Path(r.path).name})" for r in records[:4])
                raise ValueError(f"--videos: no video {name!r} in the dataset (expected an id or a file / folder "
                                 f"name, e.g. {known} …)")
            chosen += [r for r in found if r not in chosen]
        records = chosen
    return records[:limit] if limit else records


def input_keys(paths: Sequence[Path]) -> list[str]:
    """Feature-store keys for videos given by path: the key ``vadkit train`` reads (``train/Train001``) for a video
    of a benchmark layout, its name (``clip``, ``clip-2`` …) for any other."""
    from vadkit.datasets.layouts import find_layout
    from vadkit.io.inputs import unique_names

    keys = []
    for path, name in zip(paths, unique_names(list(paths))):
        match = find_layout(path)
        keys.append(match.key if match is not None and match.key not in keys else name)
    return keys


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------
def split_records(config: RunConfig) -> tuple[list, list, dict]:
    """The training and test records of a config, and a description of the split for ``split.json``."""
    from vadkit.datasets import get_dataset

    dataset = get_dataset(config.data.dataset, config.data.root)
    kind = config.data.split
    if kind == "official":
        train, test = dataset.videos("train"), dataset.videos("test")
        info = {"kind": "official", "rule": "the benchmark's own train/test split"}
    elif kind == "lad2000":
        from vadkit.datasets.splits import lad2000_resplit

        split = lad2000_resplit(dataset, seed=config.data.split_seed)
        by_id = {r.id: r for r in dataset.videos()}  # records keep their official split: store keys stay stable
        train, test = [by_id[i] for i in split.train], [by_id[i] for i in split.test]
        info = {"kind": "lad2000", "seed": config.data.split_seed, "rule": split.rule}
    else:
        raise ValueError(f"data.split must be 'official' or 'lad2000', got {kind!r}")
    if not train or not test:
        raise ValueError(f"{config.data.dataset}: split {kind!r} gave {len(train)} training and {len(test)} test videos")
    info.update(train=[record_key(r) for r in train], test=[record_key(r) for r in test])
    return train, test, info


def ensure_features(records: Sequence, features_dir: str | Path, progress: bool = True, device: str = "cpu",
                    say: Callable[[str], None] | None = None):
    """Open the feature store, extracting (with the store's settings, or the defaults, on ``device``) any video it
    lacks; ``say`` hears, before, how many videos and frames that is and roughly how long it will take."""
    from vadkit.features.store import FeatureStore

    root = Path(features_dir)
    store = FeatureStore(root) if (root / "manifest.json").exists() else None
    missing = [r for r in records if store is None or not store.has(record_key(r))]
    if missing:
        from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos

        settings = ExtractionSettings(**{k: v for k, v in store.settings.items()
                                          if k in ExtractionSettings.__dataclass_fields__}) if store else ExtractionSettings()
        extractor = SnippetExtractor(settings, device=device)
        if say is not None:
            say(extraction_note(missing, len(records), root, extractor))
        extract_videos([(record_key(r), r.path, r.fps) for r in missing], root, extractor, progress=progress)
        store = FeatureStore(root)
    return store


def extraction_note(missing: Sequence, total: int, root: Path, extractor) -> str:
    """"extracting I3D features of 28 of 28 videos (4,600 frames) into features/ped2 first: roughly 3 min here …"."""
    from vadkit.features.extract import count_snippets

    frames = sum(r.num_frames for r in missing)
    line = (f"extracting I3D features of {len(missing)} of {total} videos ({frames:,} frames) into {root} first "
            f"(`vadkit extract` fills it beforehand; keys like {record_key(missing[0])})")
    row = (extractor.backend_measurement or {}).get(extractor.backend)
    if row and row.get("seconds"):
        per_snippet = row["seconds"] / max(extractor.batch_size, 1)  # the network alone, measured once here
        seconds = per_snippet * sum(count_snippets(r.num_frames, extractor.settings) for r in missing)
        # decoding and resizing come on top: all of Ped2 took 2m45s where the network alone predicts 65 s
        line += f": roughly {_duration(seconds * DECODE_FACTOR)} on this machine when it is otherwise idle"
    return line


DECODE_FACTOR = 2.5  # whole extraction time / the network's time (UCSD Ped2 on a 2-core machine)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# ---------------------------------------------------------------------------------------------------------------
# Scoring and metrics
# ---------------------------------------------------------------------------------------------------------------
def postprocess(scores: np.ndarray, config: RunConfig) -> np.ndarray:
    """Normalisation then smoothing, as the config's eval section says."""
    norm = config.eval.normalisation
    if norm == "per-video-minmax":
        scores = minmax_per_video(scores)
    elif norm not in ("none", "train-zscore"):  # train-zscore is applied by the detector itself
        raise ValueError(f"eval.normalisation must be none, train-zscore or per-video-minmax, got {norm!r}")
    return gaussian_smooth(scores, config.eval.smoothing)


def evaluation_threshold(detector: Detector, config: RunConfig) -> float:
    """The threshold false-alarm rates are measured at: the detector's fitted one, except after per-video min-max
    normalisation (which moves every score into [0, 1]), where the config's stated ``eval.threshold`` applies."""
    if config.eval.normalisation == "per-video-minmax":
        return float(config.eval.threshold)
    return float(detector.threshold_)


def score_test(detector: Detector, test: list[VideoItem], config: RunConfig, run: RunDir | None,
               progress: bool = True) -> tuple[dict, dict]:
    from vadkit.progress import progress_bar

    scores, labels = {}, {}
    with progress_bar("scoring test videos", progress) as bar:
        task = bar.add_task("score", total=len(test), info="")
        for item in test:
            if item.frame_labels is None:
                raise ValueError(f"test video {item.id} has no frame labels")
            s = postprocess(detector.score(item).values, config)
            scores[item.id], labels[item.id] = s, np.asarray(item.frame_labels)
            if run is not None:
                run.write_scores(item.id, s)
            bar.advance(task)
    return scores, labels


def evaluate_detector(detector: Detector, test: list[VideoItem], config: RunConfig, card: ProtocolCard,
                      run: RunDir | None, class_names: Sequence[str] | None = None, progress: bool = True) -> dict:
    scores, labels = score_test(detector, test, config, run, progress)
    metrics = evaluate_frames(scores, labels, threshold=evaluation_threshold(detector, config))
    if detector.classifier:
        names = list(class_names) if class_names else ["normal", "abnormal"]
        predicted = {v.id: detector.predict_class(v) for v in test}
        metrics.update(evaluate_classification(predicted, {v.id: v.class_index for v in test}, names))
        if run is not None:
            from vadkit.report.plots import plot_confusion

            plot_confusion(metrics["confusion_matrix"], names, run.path / "confusion.png")
    metrics["protocol"] = card.to_dict()
    if run is not None:
        from vadkit.report.plots import plot_roc

        run.write_json("metrics.json", metrics)
        plot_roc(scores, labels, run.path / "roc.png", title=f"{card.method} on {card.dataset}")
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------
def train(config: RunConfig, progress: bool = True, run_dir: str | Path | None = None,
          device: str | None = None, say: Callable[[str], None] | None = None) -> RunDir:
    """Train the config's detector, score the test split once, write the run folder. Returns it.

    ``device`` (default: the config's ``device``, ``auto``) is where features are extracted and the detector trains
    and scores, at the config's ``precision``; both are written on the protocol card. ``say`` hears when features
    are extracted first, and roughly for how long."""
    device = str(resolve_device(device or config.device))
    seed_everything(config.seed)
    detector = build_detector(config.detector, **{"seed": config.seed, **config.detector_args})  # bad args fail here
    detector.to_device(device, config.precision)
    train_records, test_records, split_info = split_records(config)
    if detector.inputs == "features" and not config.data.features:
        raise ValueError(f"detector {config.detector!r} reads snippet features: set data.features to a store folder")
    run = RunDir(run_dir) if run_dir else RunDir.create(config.output, config.name or f"{config.detector}-{config.data.dataset}")
    run.path.mkdir(parents=True, exist_ok=True)
    run.clear()  # a reused folder never shows old numbers beside a new config
    run.write_config(config.to_dict())
    run.write_json("split.json", split_info)
    store = None
    if detector.inputs == "features":
        store = ensure_features(train_records + test_records, config.data.features, progress, device, say)
    class_names = _class_names(config)
    train_items = make_items(train_records, store, config.data.crops, class_names)
    test_items = make_items(test_records, store, config.data.crops, class_names)
    selection, model_selection = None, FIXED_SCHEDULE
    if config.select.steps:
        start = time.perf_counter()
        selection = _select_schedule(config, train_items, progress, device)
        selection["seconds"] = round(time.perf_counter() - start, 2)
        run.write_json("selection.json", selection)
        detector = build_detector(config.detector, **{"seed": config.seed, **config.detector_args,
                                                      "steps": selection["chosen"]}).to_device(device, config.precision)
        model_selection = selection_text(selection)
    start = time.perf_counter()
    detector.fit(train_items, progress=progress)  # takes the extraction settings from the items
    train_seconds = time.perf_counter() - start
    card = protocol_card(config, detector, split_info, store, model_selection)
    save_model(detector, run, card, config.data.crops, trained_on=f"{config.data.dataset} {split_info['kind']} "
                                                                  f"training split ({len(train_items)} videos)")
    metrics = evaluate_detector(detector, test_items, config, card, run, class_names, progress)
    metrics["train_seconds"] = round(train_seconds, 2)
    if selection is not None:
        metrics["selected_steps"] = selection["chosen"]
        metrics["selection_seconds"] = selection["seconds"]
    run.write_json("metrics.json", metrics)
    return run


def selection_text(selection: dict) -> str:
    """The protocol card's ``model_selection`` for a run whose steps were cross-validated."""
    return (f"steps {selection['chosen']} chosen from {selection['candidates']} by {len(selection['folds'])}-fold "
            f"cross-validation inside the training split (pooled held-out frame micro AUC; no test-set selection), "
            f"then trained on the whole training split, last weights")


def _select_schedule(config: RunConfig, train_items: list[VideoItem], progress: bool, device: str = "cpu") -> dict:
    from vadkit.engine.select import select_steps

    return select_steps(config.detector, dict(config.detector_args), train_items, config.select.steps,
                        folds=config.select.folds, seed=config.seed,
                        postprocess=lambda s: postprocess(s, config), progress=progress,
                        device=device, precision=config.precision)


def _class_names(config: RunConfig) -> list[str] | None:
    num_classes = config.detector_args.get("model_args", {}).get("num_classes")
    if num_classes in (None, 2):
        return None
    from vadkit.datasets import get_dataset

    names = getattr(get_dataset(config.data.dataset, config.data.root), "class_names", None)
    return list(names) if names else None


def evaluate_run(run_dir: str | Path, progress: bool = True, videos: Sequence[str | Path] | None = None,
                 labels: str | Path | None = None, out: str | Path | None = None,
                 scored: Sequence[str | Path] | None = None, fps: float | None = None,
                 device: str | None = None) -> dict:
    """Re-score a finished run's test split with its saved detector and recompute every number.

    A ``fit-normal`` run has no test split of its own: it is evaluated on ``videos`` (with ``labels``, a CSV / JSON
    range table as the ``folder`` dataset reads, for the label-based numbers), or, without videos, reports its
    calibration on held-out normal footage. That evaluation never writes into the model's folder: it goes to
    ``out`` (default ``<run>-eval`` beside it; ``metrics["out"]`` says where); ``scored`` folders of `vadkit score`
    results are reused for the videos they scored with this model; ``fps`` is the rate of frame folders.
    A training run's evaluation goes to ``out`` when given, else into the run folder (its own test split).
    """
    from vadkit.engine.config import config_from_dict

    run = RunDir(run_dir)
    config = config_from_dict(run.read_config(), where=str(run.path / "config.yaml"))
    device = str(resolve_device(device or config.device))
    detector = load_detector(run.path / "model.pt")
    trained = (detector.protocol_.get("device", "cpu"), detector.protocol_.get("precision", "fp32"))
    detector.to_device(device, config.precision)
    if config.data.split == "fit-normal":
        from vadkit.engine.oneclass import evaluate_fit_normal

        return evaluate_fit_normal(run, config, detector, videos, labels, progress, out=out, scored=scored, fps=fps,
                                   device=device)
    if scored or fps:
        raise ValueError(f"--scored / --fps apply to fit-normal runs evaluated on --videos; {run.path} is evaluated "
                         f"on its own test split")
    if videos or labels:
        raise ValueError(f"--videos / --labels apply to fit-normal runs; {run.path} is a {config.data.split!r} run "
                         f"evaluated on its own test split")
    _, test_records, split_info = split_records(config)
    store = (ensure_features(test_records, config.data.features, progress, device) if detector.inputs == "features"
             else None)
    class_names = _class_names(config)
    test_items = make_items(test_records, store, config.data.crops, class_names)
    selection = run.path / "selection.json"
    card = protocol_card(config, detector, split_info, store,
                         selection_text(run.read_json("selection.json")) if selection.is_file() else FIXED_SCHEDULE)
    card = card.replace(device=trained[0], precision=trained[1])  # where it was trained, as the run's own card says
    target = RunDir(out) if out else run
    target.path.mkdir(parents=True, exist_ok=True)
    metrics = evaluate_detector(detector, test_items, config, card, target, class_names, progress)
    previous = run.read_json("metrics.json") if (run.path / "metrics.json").exists() else {}
    for key in ("train_seconds", "selected_steps", "selection_seconds"):
        if key in previous:
            metrics[key] = previous[key]
    target.write_json("metrics.json", metrics)
    return {**metrics, "out": str(target.path)}
