"""Choosing a training schedule by cross-validation inside the training split.

The test split is never read here. The training videos are dealt into ``folds`` groups, stratified by video label
(abnormal and normal videos shuffled separately with the run's seed, then dealt in turn); for each fold a detector
is trained on the other folds once, up to the largest candidate step count, keeping a snapshot of the weights at
every candidate (``snapshot_run``); each snapshot scores the held-out videos. A candidate's criterion is the
frame-level micro AUC over all held-out frames pooled (every video scored by a model that did not see it). The best
candidate wins; ties go to the fewer steps.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vadkit.detectors import Detector, VideoItem, build_detector
from vadkit.metrics import roc_auc
from vadkit.scoring import valid_frames


def stratified_folds(items: Sequence[VideoItem], folds: int, seed: int) -> list[list[VideoItem]]:
    """Deal ``items`` into ``folds`` groups with the abnormal and the normal videos spread evenly."""
    by_label: dict[int, list[VideoItem]] = {}
    for item in items:
        by_label.setdefault(int(item.label), []).append(item)
    smallest = min(len(group) for group in by_label.values())
    if folds < 2 or smallest < folds:
        raise ValueError(f"cross-validation with {folds} folds needs at least {folds} training videos of each label; "
                         f"found {', '.join(f'{len(g)} with label {k}' for k, g in sorted(by_label.items()))}")
    rng = np.random.default_rng(seed)
    groups: list[list[VideoItem]] = [[] for _ in range(folds)]
    turn = 0
    for label in sorted(by_label):
        group = by_label[label]
        for index in rng.permutation(len(group)):
            groups[turn % folds].append(group[index])
            turn += 1
    return groups


def _held_out_scores(detector: Detector, held_out: Sequence[VideoItem], postprocess) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = [], []
    for item in held_out:
        if item.frame_labels is None:
            raise ValueError(f"schedule selection scores held-out training videos against their frame labels, "
                             f"but training video {item.id} has none")
        s = np.asarray(postprocess(detector.score(item).values), dtype=np.float64)
        keep = valid_frames(s)
        scores.append(s[keep])
        labels.append(np.asarray(item.frame_labels)[keep])
    return np.concatenate(scores), np.concatenate(labels)


def select_steps(detector_name: str, detector_args: dict, train: Sequence[VideoItem], candidates: Sequence[int],
                 folds: int = 3, seed: int = 0, postprocess=lambda s: s, progress: bool = True,
                 device: str = "cpu", precision: str = "fp32") -> dict:
    """Cross-validate the number of training steps of a trainable detector on ``train`` only (each snapshot is
    calibrated on its fold's training videos, as ``fit`` would).

    Returns ``{"chosen": steps, "candidates": [...], "micro_auc": {steps: pooled AUC}, "fold_auc": {steps: [per
    fold]}, "folds": [[video ids] per fold], "seed": seed}``.
    """
    candidates = sorted({int(c) for c in candidates})
    groups = stratified_folds(train, folds, seed)
    pooled: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in candidates}
    fold_auc: dict[int, list[float]] = {c: [] for c in candidates}
    for k, held_out in enumerate(groups):
        rest = [item for j, group in enumerate(groups) if j != k for item in group]
        detector = build_detector(detector_name, **{**detector_args, "seed": seed + 1000 * (k + 1)})
        detector.to_device(device, precision)
        if not detector.trainable:
            raise ValueError(f"detector {detector_name!r} trains no network; schedule selection needs a trainable one")
        with detector.snapshot_run(rest, candidates, progress=progress) as snapshots:
            missing = [steps for steps in candidates if steps not in snapshots]
            if missing:
                raise ValueError(f"training stopped after {detector.schedule_['steps']} steps (its epochs or time "
                                 f"budget), before the candidate step counts {missing}")
            for steps in candidates:
                detector.use_snapshot(snapshots[steps])
                scores, labels = _held_out_scores(detector, held_out, postprocess)
                pooled[steps].append((scores, labels))
                both = labels.min() != labels.max()
                fold_auc[steps].append(float(roc_auc(scores, labels)) if both else float("nan"))
    micro = {steps: float(roc_auc(np.concatenate([s for s, _ in parts]), np.concatenate([l for _, l in parts])))
             for steps, parts in pooled.items()}
    best = max(micro.values())
    chosen = min(steps for steps, value in micro.items() if value == best)
    return {"chosen": chosen, "candidates": candidates, "criterion": "pooled held-out frame micro AUC",
            "micro_auc": {str(k): v for k, v in micro.items()}, "fold_auc": {str(k): v for k, v in fold_auc.items()},
            "folds": [[item.id for item in group] for group in groups], "seed": seed}
