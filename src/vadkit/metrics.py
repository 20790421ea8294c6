"""Every evaluation number of vadkit, one implementation for every method.

Frame level (scores: higher = more abnormal; labels: 1 = anomalous frame):
- ``micro_auc``: ROC-AUC over the frames of all videos pooled together (the usual benchmark number).
- ``macro_auc``: mean of per-video ROC-AUCs. A video whose frames are all of one class has no AUC; it is skipped
  (the count of videos used is reported beside the number). This is the policy named ``"skip"`` on the card.
- ``average_precision`` (anomaly = positive), ``equal_error_rate``, ``false_alarm_rate`` at a threshold.
Video level (classifier heads): ``accuracy``, ``confusion_matrix``.
Frames without a score (a dropped tail, see :func:`vadkit.features.geometry.snippets_to_frames`) hold NaN and are
left out of every metric.

Every result travels with a :class:`ProtocolCard` saying how it was obtained.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from vadkit.features.geometry import TAIL_POLICIES
from vadkit.scoring import valid_frames



# ----------------------------------------------------------------------------------------------------------------
# Protocol card
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ProtocolCard:
    """How a number was obtained. Stored beside every metrics file and printed with every table.

    Attributes:
        dataset: benchmark name (``ucsd_ped2``, ...).
        split: which split and how it was made (``official one-class``, ``LAD2000 re-split seed 0``, ...).
        method: model name and variant.
        features: input representation (``I3D RGB [-1,1] 1-crop``, ``RGB frames 240x320``, ...).
        tail_policy: ``extend`` or ``drop`` for frames after the last full snippet.
        smoothing: Gaussian sigma in frames applied to frame scores, or ``None``.
        normalisation: ``none``, ``train-zscore`` (causal) or ``per-video-minmax`` (uses test statistics).
        uses_test_statistics: True when any step looked at test-set scores beyond the frame being scored.
        macro_policy: how single-class videos enter the macro AUC.
        seed: the seed of training / splitting.
        model_selection: how the evaluated checkpoint was chosen (never on test labels).
        device: where the detector was trained (``cpu``, ``cuda:0``, ...).
        precision: the training precision (``fp32``, ``tf32``, ``bf16``).
        notes: anything else a reader must know.
    """

    dataset: str = ""
    split: str = ""
    method: str = ""
    features: str = ""
    tail_policy: str = "extend"
    smoothing: float | None = None
    normalisation: str = "none"
    uses_test_statistics: bool = False
    macro_policy: str = "skip single-class videos"
    seed: int | None = None
    model_selection: str = "fixed schedule (last checkpoint)"
    device: str = "cpu"
    precision: str = "fp32"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tail_policy not in TAIL_POLICIES:
            raise ValueError(f"tail_policy must be one of {TAIL_POLICIES}, got {self.tail_policy!r}")
        if self.normalisation == "per-video-minmax":
            self.uses_test_statistics = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "ProtocolCard":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "ProtocolCard":
        return dataclasses.replace(self, **changes)

    def to_markdown(self) -> str:
        rows = [(k, v) for k, v in self.to_dict().items() if k != "notes"]
        lines = ["| protocol | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in rows]
        lines += [f"| note | {n} |" for n in self.notes]
        return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None or value == "" else str(value)


# ----------------------------------------------------------------------------------------------------------------
# Binary ranking metrics
# ----------------------------------------------------------------------------------------------------------------
def _check_binary(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} scores, {labels.size} labels")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity; drop tail frames with `valid_frames` first")
    unique = np.unique(labels)
    if not np.isin(unique, (0, 1)).all():
        raise ValueError(f"labels must be 0/1, found values {unique[:10].tolist()}")
    return scores, labels.astype(bool)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counting one half).

    Returns NaN when the labels hold only one class (no AUC exists).
    """
    scores, labels = _check_binary(scores, labels)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``, one per distinct score, starting at (0, 0) with threshold +inf."""
    scores, labels = _check_binary(scores, labels)
    if scores.size == 0:
        raise ValueError("no frames to draw a ROC curve from")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # index of the last item of each tie run
    tp = np.cumsum(labels)[last_of_run]
    fp = (last_of_run + 1) - tp
    n_pos, n_neg = labels.sum(), labels.size - labels.sum()
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.full(tp.size + 1, np.nan)
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.full(fp.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, scores[last_of_run]]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision, ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds (anomaly = positive).

    Returns NaN when there is no positive frame.
    """
    scores, labels = _check_binary(scores, labels)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tp = np.cumsum(labels)[last_of_run].astype(np.float64)
    predicted = (last_of_run + 1).astype(np.float64)
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """The error rate where the false-positive rate equals the false-negative rate (linear interpolation on the ROC)."""
    if np.asarray(scores).size == 0:
        return float("nan")
    fpr, tpr, _ = roc_curve(scores, labels)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan")
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increases from -1 to +1 along the curve
    cross = int(np.flatnonzero(diff >= 0)[0])
    if cross == 0 or diff[cross] == 0:
        return float(fpr[cross])
    a, b = cross - 1, cross
    t = -diff[a] / (diff[b] - diff[a])
    return float(fpr[a] + t * (fpr[b] - fpr[a]))


def false_alarm_rate(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of normal frames with ``score >= threshold``: ``FP / (FP + TN)``. NaN when no normal frame."""
    scores, labels = _check_binary(scores, labels)
    normal = ~labels
    if not normal.any():
        return float("nan")
    return float((scores[normal] >= threshold).mean())


# ----------------------------------------------------------------------------------------------------------------
# Video-level classification
# ----------------------------------------------------------------------------------------------------------------
def accuracy(predicted: Sequence[int], true: Sequence[int]) -> float:
    predicted, true = np.asarray(predicted), np.asarray(true)
    if predicted.shape != true.shape:
        raise ValueError(f"{predicted.size} predictions for {true.size} true labels")
    return float((predicted == true).mean()) if true.size else float("nan")


def confusion_matrix(predicted: Sequence[int], true: Sequence[int], num_classes: int,
                     normalize: bool = False) -> np.ndarray:
    """Counts ``M[true, predicted]`` (rows: true class). ``normalize`` divides each non-empty row by its total."""
    predicted, true = np.asarray(predicted, dtype=int), np.asarray(true, dtype=int)
    if predicted.shape != true.shape:
        raise ValueError(f"{predicted.size} predictions for {true.size} true labels")
    for name, values in (("predicted", predicted), ("true", true)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} classes must lie in [0, {num_classes}), found {values.min()}..{values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.float64 if normalize else np.int64)
    np.add.at(matrix, (true, predicted), 1)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return matrix


# ----------------------------------------------------------------------------------------------------------------
# Whole evaluation
# ----------------------------------------------------------------------------------------------------------------
def evaluate_frames(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                    threshold: float = 0.5) -> dict:
    """All frame-level numbers for a set of test videos.

    Args:
        scores: video id -> ``(num_frames,)`` frame scores (NaN = no score, e.g. a dropped tail).
        labels: video id -> ``(num_frames,)`` 0/1 frame labels. Must hold the same ids as ``scores``.
        threshold: for the false-alarm rates (0.5 for the weakly-supervised models' sigmoid outputs).

    Returns:
        ``micro_auc``, ``macro_auc`` (and ``macro_videos``, the number of two-class videos it averages),
        ``ap``, ``eer``, ``auc_abnormal_videos`` (micro AUC over the frames of videos with an anomaly, the seeds'
        ``AUC_abnormal``), ``far_all``, ``far_normal_videos``, ``far_abnormal_videos`` at ``threshold``, the
        frame and video counts and ``frames_without_score``.
    """
    missing = sorted(set(scores) ^ set(labels))
    if missing:
        raise ValueError(f"scores and labels must name the same videos; differing: {missing[:5]}")
    if not scores:
        raise ValueError("no videos to evaluate")
    pooled_s, pooled_l, per_video_auc = [], [], []
    abnormal_s, abnormal_l, normal_s = [], [], []
    dropped = 0
    for vid in sorted(scores):
        s = np.asarray(scores[vid], dtype=np.float64).ravel()
        y = np.asarray(labels[vid]).ravel()
        if s.size != y.size:
            raise ValueError(f"video {vid}: {s.size} frame scores but {y.size} frame labels")
        keep = valid_frames(s)
        dropped += int((~keep).sum())
        s, y = s[keep], y[keep].astype(np.int64)
        pooled_s.append(s)
        pooled_l.append(y)
        auc = roc_auc(s, y) if s.size else float("nan")
        if not math.isnan(auc):
            per_video_auc.append(auc)
        if y.any():
            abnormal_s.append(s)
            abnormal_l.append(y)
        else:
            normal_s.append(s)
    all_s, all_l = np.concatenate(pooled_s), np.concatenate(pooled_l)
    result = {
        "micro_auc": roc_auc(all_s, all_l),
        "macro_auc": float(np.mean(per_video_auc)) if per_video_auc else float("nan"),
        "macro_videos": len(per_video_auc),
        "ap": average_precision(all_s, all_l),
        "eer": equal_error_rate(all_s, all_l),
        "auc_abnormal_videos": roc_auc(np.concatenate(abnormal_s), np.concatenate(abnormal_l)) if abnormal_s else float("nan"),
        "far_all": false_alarm_rate(all_s, all_l, threshold),
        "far_normal_videos": float((np.concatenate(normal_s) >= threshold).mean()) if normal_s else float("nan"),
        "far_abnormal_videos": false_alarm_rate(np.concatenate(abnormal_s), np.concatenate(abnormal_l), threshold) if abnormal_s else float("nan"),
        "threshold": threshold,
        "num_videos": len(scores),
        "num_frames": int(all_s.size),
        "num_anomalous_frames": int(all_l.sum()),
        "frames_without_score": dropped,
    }
    return result


def evaluate_classification(predicted: Mapping[str, int], true: Mapping[str, int], class_names: Sequence[str]) -> dict:
    """Video-level accuracy and confusion matrix (rows: true class, columns: predicted)."""
    ids = sorted(true)
    missing = [v for v in ids if v not in predicted]
    if missing:
        raise ValueError(f"no prediction for videos {missing[:5]}")
    p = [int(predicted[v]) for v in ids]
    t = [int(true[v]) for v in ids]
    return {
        "video_accuracy": accuracy(p, t),
        "confusion_matrix": confusion_matrix(p, t, len(class_names)).tolist(),
        "class_names": list(class_names),
    }
