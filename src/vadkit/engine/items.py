"""Dataset records as detector inputs, and what a run folder records of a fitted detector: the parts both
``vadkit train`` (:mod:`vadkit.engine.train`) and ``vadkit fit-normal`` (:mod:`vadkit.engine.oneclass`) use, kept
below both so that neither imports the other's module at load time (no import cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vadkit.detectors import Detector, VideoItem, collapse_crops
from vadkit.engine.config import RunConfig
from vadkit.engine.run import RunDir
from vadkit.metrics import ProtocolCard


def record_key(record) -> str:
    """The key of a dataset record in feature stores and run folders: ``<split>/<id>`` of the official split."""
    return f"{record.split}/{record.id}"


def class_index(record, class_names: Sequence[str] | None) -> int:
    if not class_names:
        return int(record.label == 1)
    return class_names.index(record.class_name) if record.class_name in class_names else int(record.label == 1)


def make_items(records: Sequence, store=None, crops: str = "mean", class_names: Sequence[str] | None = None) -> list[VideoItem]:
    """Dataset records → detector inputs (features attached from ``store`` when given)."""
    items = []
    for r in records:
        key = record_key(r)
        if store is not None:
            stored = store.videos.get(key, {}).get("num_frames")
            if stored is not None and stored != r.num_frames:
                raise ValueError(f"video {key}: the feature store at {store.root} was extracted from {stored} frames, "
                                 f"but the dataset's video and labels have {r.num_frames}")
        items.append(store_item(key, r.num_frames, Path(r.path), r.fps, store, crops, label=r.label,
                                class_index=class_index(r, class_names), frame_labels=r.frame_labels))
    return items


def store_item(key: str, num_frames: int, path: Path, fps: float, store=None, crops: str = "mean",
               **fields) -> VideoItem:
    """One video as a detector input; its features (when ``store`` is given) load lazily from the store."""
    if store is None:
        return VideoItem(id=key, num_frames=num_frames, path=path, fps=fps, **fields)
    return VideoItem(id=key, num_frames=num_frames, path=path, fps=fps, extraction=dict(store.settings),
                     load_features=lambda: collapse_crops(store.load(key), crops), **fields)


FIXED_SCHEDULE = "fixed schedule, last weights (no test-set selection)"


def protocol_card(config: RunConfig, detector: Detector, split_info: dict, store=None,
                  model_selection: str = FIXED_SCHEDULE, notes: Sequence[str] = ()) -> ProtocolCard:
    features = "raw frames"
    if store is not None:
        s = store.settings
        features = (f"I3D {s.get('modality', 'rgb')} {s.get('input_range')} range, {s.get('resize')} resize, "
                    f"{s.get('crops')} crop(s) ({config.data.crops}), snippet {s.get('snippet_len')}/{s.get('stride')}, "
                    f"weights sha256 {str(s.get('weights_sha256'))[:12]}")
    split = split_info["kind"] + (f" (seed {split_info['seed']})" if "seed" in split_info else "")
    return ProtocolCard(dataset=config.data.dataset, split=split,
                        method=detector.name + (f": {detector.args['model']}" if detector.args.get("model") else ""),
                        features=features,
                        tail_policy=detector.args.get("tail", "extend"), smoothing=config.eval.smoothing,
                        normalisation=(config.eval.normalisation if config.eval.normalisation != "none"
                                       else detector.args.get("normalisation", "none")), seed=config.seed,
                        model_selection=model_selection, device=detector.device_, precision=detector.precision_,
                        notes=[f"threshold {detector.threshold_:.6g}: {detector.threshold_rule}", *notes])


def save_model(detector: Detector, run: RunDir, card: ProtocolCard, crops: str, trained_on: str) -> None:
    """The run's model file (weights, threshold, extraction settings, card: one file), protocol card, curves."""
    detector.protocol_, detector.crops_, detector.trained_on_ = card.to_dict(), crops, trained_on
    detector.save(run.path / "model.pt")
    run.write_json("protocol.json", card.to_dict())
    run.write_curve(detector.history)
